"""Talking to remote repositories with dulwich clients, and what failures mean.

Blocking: call from a worker thread.
"""

from __future__ import annotations

import re
import socket
import ssl
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import urllib3
from dulwich.client import (
    GitClient,
    HTTPUnauthorized,
    default_urllib3_manager,
    get_transport_and_path,
)
from dulwich.errors import (
    ApplyDeltaError,
    ChecksumMismatch,
    FileFormatException,
    GitProtocolError,
    MissingCommitError,
    NotGitRepository,
    ObjectMissing,
)

from upstreams.credentials import Credentials
from upstreams.errors import (
    HostFailed,
    PackageNotFound,
    RemoteFailed,
    Unreachable,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from upstreams.locations import redact, scrub

# Statuses that speak about the service rather than one repository: a
# gateway that got no answer or gave up waiting, overload or maintenance
# (RFC 9110 15.6.3-15.6.5), and "too many requests" (RFC 6585 4).
_SERVICE_STATUSES = frozenset({429, 502, 503, 504})
# Enough of a remote's message for a problem `detail`.
_DETAIL_LIMIT = 300
_OBJECT_ID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
# What dulwich raises once the host has answered: an ERR line, a fatal
# sideband message, a hang-up or a response cut short (GitProtocolError), and
# what a damaged repository or pack raises while it is read, on the far side
# of a local-path fetch or while indexing a pack a remote sent.
_REMOTE_FAILURES = (
    GitProtocolError,
    urllib3.exceptions.HTTPError,
    ApplyDeltaError,
    ChecksumMismatch,
    FileFormatException,
    MissingCommitError,
    ObjectMissing,
    zlib.error,
)


def _chain(exc: BaseException) -> list[BaseException]:
    """`exc` and everything behind it, outermost first, once each.

    Causes and contexts, urllib3's `reason`, and exceptions carried as
    arguments (urllib3's `ProtocolError("Connection aborted.", error)`).
    """
    seen: set[int] = set()
    found: list[BaseException] = []
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        found.append(current)
        behind = (current.__cause__, current.__context__, getattr(current, "reason", None))
        pending.extend(e for e in (*behind, *current.args) if isinstance(e, BaseException))
    return found


def _clean_message(text: str) -> str:
    """A remote's own words fit for a problem detail: one line, no credentials.

    Sideband text arrives with the NUL that terminates git's message and
    control bytes turned into `?` (dulwich hides them from terminals), and
    stderr as several lines; a detail ends without punctuation of its own.
    """
    printable = "".join(char if char.isprintable() else " " for char in scrub(text))
    single = " ".join(printable.split()).rstrip(" .?!:;,")
    return single if len(single) <= _DETAIL_LIMIT else single[: _DETAIL_LIMIT - 3] + "..."


def _peer(exc: BaseException, url: str) -> tuple[str, int | None]:
    """Host and port of the connection that failed: a redirect's target or a proxy's, maybe."""
    for current in _chain(exc):
        # `conn` on connection errors; `pool` only on MaxRetryError, where it
        # is no deprecated alias.
        where: object
        if isinstance(current, urllib3.exceptions.NewConnectionError):
            where = current.conn
        elif isinstance(current, urllib3.exceptions.MaxRetryError):
            where = current.pool
        else:
            continue
        host, port = getattr(where, "host", None), getattr(where, "port", None)
        if host:
            return str(host), port if isinstance(port, int) else None
    try:
        parsed = urllib3.util.parse_url(url)
    except urllib3.exceptions.LocationParseError:
        return redact(url), None
    return parsed.host or redact(url), parsed.port


def _endpoint(exc: BaseException, url: str) -> str:
    host, port = _peer(exc, url)
    return f"{host}:{port}" if port else host


def _cause(exc: BaseException) -> str:
    """The innermost OS-level cause in its own words: `Connection refused`, ..."""
    for current in reversed(_chain(exc)):
        if isinstance(current, OSError):
            text = current.strerror or (str(current.args[0]) if current.args else "")
            if text:
                return _clean_message(text)
    return _clean_message(str(exc)) or type(exc).__name__


def _transport_failure(exc: BaseException, upstream: str, url: str) -> UpstreamError | None:
    """The failure to get any answer at all out of the host, if that is what `exc` is."""
    chain = _chain(exc)
    where = redact(url)
    # Before the timeout check: urllib3 derives its connection errors (refused,
    # unresolvable) from ConnectTimeoutError although nothing timed out.
    if any(isinstance(c, urllib3.exceptions.NameResolutionError | socket.gaierror) for c in chain):
        host = _peer(exc, url)[0]
        return Unreachable(
            upstream, f"{upstream}: name resolution failed for {host}: {_cause(exc)}", where
        )
    if any(isinstance(c, urllib3.exceptions.NewConnectionError) for c in chain):
        return Unreachable(
            upstream, f"{upstream}: cannot connect to {_endpoint(exc, url)}: {_cause(exc)}", where
        )
    if any(isinstance(c, TimeoutError | urllib3.exceptions.TimeoutError) for c in chain):
        return UpstreamTimeout(upstream, f"{upstream}: {where} did not answer in time", where)
    if any(isinstance(c, urllib3.exceptions.SSLError | ssl.SSLError) for c in chain):
        return Unreachable(
            upstream, f"{upstream}: TLS with {_endpoint(exc, url)} failed: {_cause(exc)}", where
        )
    if any(isinstance(c, urllib3.exceptions.MaxRetryError) for c in chain):
        # urllib3 gave up on the request itself: reset or closed before any answer.
        return Unreachable(
            upstream,
            f"{upstream}: connection to {_endpoint(exc, url)} failed: {_cause(exc)}",
            where,
        )
    return None


def _status_failure(
    statuses: Sequence[int | None], upstream: str, url: str
) -> UpstreamError | None:
    """What the status of the last, answered request means, if it is a failure."""
    if not statuses or statuses[-1] is None or statuses[-1] == 200:
        return None
    where, status = redact(url), statuses[-1]
    try:
        text = f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        text = f"HTTP {status}"
    if status == 407:
        # The HTTP proxy in between turned us away, whatever the repository.
        return Unreachable(upstream, f"{upstream}: the proxy to {where} answered {text}", where)
    if status >= 500 and status not in _SERVICE_STATUSES and 200 in statuses[:-1]:
        # The host advertised this repository's refs a moment ago and then
        # failed to produce its pack: it is up, but cannot serve this repository.
        return RemoteFailed(
            upstream, f"{upstream}: {where} failed while sending the repository ({text})", where
        )
    if status >= 500 or status in _SERVICE_STATUSES:
        return HostFailed(upstream, f"{upstream}: {where} answered {text}", where)
    return RemoteFailed(upstream, f"{upstream}: {where} refused the repository ({text})", where)


def _missing_object(exc: BaseException) -> str | None:
    """The object id a local object store could not find, if `exc` is that `KeyError`."""
    if not isinstance(exc, KeyError) or len(exc.args) != 1:
        return None
    key = exc.args[0]
    text = key.decode("ascii", "replace") if isinstance(key, bytes) else str(key)
    return text if _OBJECT_ID.fullmatch(text) else None


def translate(
    exc: BaseException, upstream: str, url: str, statuses: Sequence[int | None] = ()
) -> UpstreamError | None:
    """The upstream error a dulwich/network failure stands for, or None if it is a bug.

    `statuses` are the HTTP statuses of this conversation's requests so far,
    None for one that got no answer.
    """
    where = redact(url)
    if isinstance(exc, NotGitRepository):
        return PackageNotFound(upstream, f"{upstream}: no git repository at {where}", where)
    if isinstance(exc, HTTPUnauthorized):
        # GitHub and friends answer 401 for repositories that do not exist, so
        # that private ones are not revealed.
        return PackageNotFound(
            upstream, f"{upstream}: {where} requires authentication or does not exist", where
        )
    failure = _transport_failure(exc, upstream, url) or _status_failure(statuses, upstream, url)
    if failure is not None:
        return failure
    missing = _missing_object(exc)
    if missing is not None:
        reason = f"object {missing} is missing"
    elif isinstance(exc, _REMOTE_FAILURES):
        reason = _clean_message(str(exc)) or type(exc).__name__
    elif isinstance(exc, OSError):
        return Unreachable(upstream, f"{upstream}: cannot reach {where}: {_cause(exc)}", where)
    else:
        return None
    return RemoteFailed(
        upstream, f"{upstream}: {where} failed to serve the repository: {reason}", where
    )


class _ClosingPool:
    """A urllib3 pool manager that closes every response it handed out.

    dulwich leaves error responses (404, 401, 5xx) unread and unclosed, which
    would leak their sockets until garbage collection.
    """

    def __init__(self, pool: Any) -> None:
        self._pool = pool
        self._responses: list[Any] = []
        # Per request, in order: its status, or None while it has no answer.
        # dulwich names a failing status only inside its message text.
        self.statuses: list[int | None] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)

    def request(self, *args: Any, **kwargs: Any) -> Any:
        self.statuses.append(None)
        response = self._pool.request(*args, **kwargs)
        self._responses.append(response)
        self.statuses[-1] = int(response.status)
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
            statuses = pool.statuses if pool is not None else ()
            translated = translate(exc, upstream, url, statuses)
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
