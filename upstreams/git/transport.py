"""Talking to remote repositories with dulwich clients, and what failures mean.

Blocking: call from a worker thread.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import urllib3
from dulwich.client import (
    GitClient,
    HTTPUnauthorized,
    default_urllib3_manager,
    get_transport_and_path,
)
from dulwich.errors import GitProtocolError, NotGitRepository

from upstreams.credentials import Credentials
from upstreams.errors import (
    PackageNotFound,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from upstreams.locations import redact, scrub


def _is_timeout(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, TimeoutError | urllib3.exceptions.TimeoutError):
            return True
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException) and _is_timeout(reason):
            return True
        current = current.__cause__ or current.__context__
    return False


def translate(exc: BaseException, upstream: str, url: str) -> UpstreamError | None:
    """The upstream error a dulwich/network failure stands for, or None if it is a bug."""
    where = redact(url)
    if isinstance(exc, NotGitRepository):
        return PackageNotFound(upstream, f"{upstream}: no git repository at {where}", where)
    if isinstance(exc, HTTPUnauthorized):
        # GitHub and friends answer 401 for repositories that do not exist, so
        # that private ones are not revealed.
        return PackageNotFound(
            upstream, f"{upstream}: {where} requires authentication or does not exist", where
        )
    if _is_timeout(exc):
        return UpstreamTimeout(upstream, f"{upstream}: {where} did not answer in time", where)
    if isinstance(exc, GitProtocolError | urllib3.exceptions.HTTPError | OSError):
        reason = scrub(str(exc)) or type(exc).__name__
        return UpstreamUnavailable(upstream, f"{upstream}: cannot reach {where}: {reason}", where)
    return None


class _ClosingPool:
    """A urllib3 pool manager that closes every response it handed out.

    dulwich leaves error responses (404, 401, 5xx) unread and unclosed, which
    would leak their sockets until garbage collection.
    """

    def __init__(self, pool: Any) -> None:
        self._pool = pool
        self._responses: list[Any] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)

    def request(self, *args: Any, **kwargs: Any) -> Any:
        response = self._pool.request(*args, **kwargs)
        self._responses.append(response)
        return response

    def close(self) -> None:
        for response in self._responses:
            response.close()
        self._responses.clear()
        self._pool.clear()


@dataclass(frozen=True, slots=True)
class TransportOptions:
    """How to reach one upstream's repositories."""

    timeout: float
    credentials: Credentials | None = None


@contextmanager
def remote(url: str, upstream: str, options: TransportOptions) -> Iterator[tuple[GitClient, str]]:
    """A dulwich client for `url` whose failures surface as `UpstreamError`s."""
    pool: _ClosingPool | None = None
    kwargs: dict[str, Any] = {}
    if url.lower().startswith(("http://", "https://")):
        manager = default_urllib3_manager(None, base_url=url, timeout=options.timeout)
        if options.credentials is not None:
            # Without auth callbacks configured dulwich hands back a plain pool.
            assert isinstance(manager, urllib3.PoolManager)
            # Pool-level header: basic and bearer alike. urllib3 drops it on a
            # redirect to another host (Retry.remove_headers_on_redirect).
            manager.headers = {
                **manager.headers,
                "Authorization": options.credentials.authorization(),
            }
        # A dead upstream must fail within `timeout`, not after urllib3's
        # default retries multiply it; redirects are still followed.
        manager.connection_pool_kw["retries"] = urllib3.Retry(
            total=None, connect=0, read=0, status=0, other=0, redirect=5
        )
        pool = _ClosingPool(manager)
        kwargs["pool_manager"] = pool
    try:
        try:
            client, path = get_transport_and_path(url, quiet=True, **kwargs)
        except ValueError as exc:
            raise UpstreamUnavailable(
                upstream, f"{upstream}: unsupported repository URL {redact(url)}", redact(url)
            ) from exc
        try:
            yield client, path
        except UpstreamError:
            raise
        except Exception as exc:
            translated = translate(exc, upstream, url)
            if translated is None:
                raise
            raise translated from None
        finally:
            client.close()
    finally:
        if pool is not None:
            pool.close()


def ls_remote(url: str, upstream: str, options: TransportOptions) -> dict[bytes, bytes | None]:
    """The refs `url` advertises, without transferring any objects."""
    with remote(url, upstream, options) as (client, path):
        result = client.get_refs(path.encode("utf-8"))
        return {bytes(ref): None if sha is None else bytes(sha) for ref, sha in result.refs.items()}
