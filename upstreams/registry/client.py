"""HTTP to one upstream registry: sessions, credentials, redirects, validation, errors.

Every answer is checked the way SwiftPM's RegistryClient.swift checks it
(status, `Content-Version`, `Content-Type`: SE-0292 3.5) before anything else
looks at it, and every failure becomes an `UpstreamError` that names the
upstream and a redacted URL, never a credential.
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import structlog
from aiohttp_client_cache.session import CachedSession
from multidict import CIMultiDictProxy
from yarl import URL

from upstreams.base import DocumentStore
from upstreams.credentials import Credentials
from upstreams.errors import (
    HostFailed,
    InvalidUpstreamResponse,
    RedirectRefused,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from upstreams.registry.documents import problem_detail
from upstreams.registry.failures import classify
from upstreams.registry.http_cache import cache_backend
from upstreams.registry.media import Expectation, violation
from upstreams.registry.origins import Origins, target_text

# Redirects are followed here, not by aiohttp, so that `Authorization` never
# reaches another origin (a CDN), only permitted origins are reached at all,
# and loops end (SE-0292 4.4.2: no downgrade, a limited number of redirects).
MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# Enough of an error body for a problem `detail` (RFC 9457).
_PROBLEM_LIMIT = 64 * 1024
_DETAIL_LIMIT = 300
NOT_FOUND = frozenset({404})


@dataclass(frozen=True, slots=True)
class Answer:
    """A fully read response: 200 (validated) or one of the pass-through statuses."""

    status: int
    url: URL
    headers: CIMultiDictProxy[str]
    body: bytes


class RegistryClient:
    def __init__(
        self,
        *,
        upstream: str,
        base_url: URL,
        credentials: Credentials | None,
        connect_timeout: float,
        read_timeout: float,
        documents: DocumentStore,
        download_hosts: Iterable[str] = (),
    ) -> None:
        self._upstream = upstream
        self._base = base_url
        self._origins = Origins(base_url, download_hosts)
        self._credentials = credentials
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout, sock_read=read_timeout
        )
        self._documents = documents
        self._connector: aiohttp.TCPConnector | None = None
        self._plain: aiohttp.ClientSession | None = None
        self._cached: CachedSession | None = None
        self._log = structlog.get_logger().bind(upstream=upstream)

    def __repr__(self) -> str:
        return f"RegistryClient(upstream={self._upstream!r}, base_url={self.display(self._base)!r})"

    # -- presentation -----------------------------------------------------

    def display(self, url: URL) -> str:
        """`url` fit for logs and problem details.

        No userinfo ever; for other origins (CDNs) no query either, since
        signed URLs carry their token there.
        """
        clean = url.with_user(None)
        if not self._origins.is_own(clean):
            clean = clean.with_query(None).with_fragment(None)
        return str(clean)

    def scrub(self, text: str) -> str:
        """`text` from an upstream with our secret removed, should it be echoed back."""
        if self._credentials is not None and self._credentials.secret:
            text = text.replace(self._credentials.authorization(), "***")
            text = text.replace(self._credentials.secret, "***")
        # One line: an upstream's text must not forge lines in logs.
        return " ".join(text.split())[:_DETAIL_LIMIT]

    # -- sessions ---------------------------------------------------------

    def _sessions(self) -> tuple[aiohttp.ClientSession, CachedSession]:
        # Created on first use, inside the running loop; one connection pool
        # shared by the revalidating session and the streaming one.
        if self._plain is None or self._cached is None:
            self._connector = aiohttp.TCPConnector()
            self._plain = aiohttp.ClientSession(
                connector=self._connector, connector_owner=False, timeout=self._timeout
            )
            with warnings.catch_warnings():
                # aiohttp in dev mode warns that CachedSession sets its own
                # `cache` attribute; that is how the library works, not our bug.
                warnings.filterwarnings(
                    "ignore", "Setting custom ClientSession", DeprecationWarning
                )
                self._cached = CachedSession(
                    cache=cache_backend(self._documents),
                    connector=self._connector,
                    connector_owner=False,
                    timeout=self._timeout,
                )
        return self._plain, self._cached

    async def close(self) -> None:
        plain, cached, connector = self._plain, self._cached, self._connector
        self._plain = self._cached = self._connector = None
        if plain is not None:
            await plain.close()
        if cached is not None:
            await cached.close()  # type: ignore[no-untyped-call]  # untyped in the library
        if connector is not None:
            await connector.close()

    # -- requests ---------------------------------------------------------

    def _authorizes(self, url: URL) -> bool:
        # Credentials belong to the configured registry's origin only.
        return self._credentials is not None and self._origins.is_own(url)

    async def _request(self, url: URL, accept: str, *, cached: bool) -> Any:
        plain, revalidating = self._sessions()
        headers = {"Accept": accept}
        if self._credentials is not None and self._authorizes(url):
            headers["Authorization"] = self._credentials.authorization()
        if cached:
            # `refresh=True`: a stored response is revalidated with
            # If-None-Match / If-Modified-Since; a 304 returns it.
            return await revalidating.get(url, headers=headers, allow_redirects=False, refresh=True)
        if accept.endswith("+zip"):
            # Byte-exact: the checksum and Content-Length are about these bytes.
            headers["Accept-Encoding"] = "identity"
        return await plain.get(url, headers=headers, allow_redirects=False)

    def invalid(self, url: URL, reason: str) -> InvalidUpstreamResponse:
        where = self.display(url)
        self._log.warning("upstream_response_invalid", url=where, reason=reason)
        return InvalidUpstreamResponse(
            self._upstream, f"{self._upstream}: {reason} ({where})", where
        )

    async def _send(self, url: URL, accept: str, *, cached: bool) -> Any:
        """The first non-redirect response, following at most MAX_REDIRECTS."""
        seen = {url}
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            response = await self._request(current, accept, cached=cached)
            if response.status not in _REDIRECTS:
                return response
            location = response.headers.get("Location")
            response.release()
            if not location:
                raise self.invalid(current, f"HTTP {response.status} without a Location")
            target = self.follow(current, location, "redirect")
            if target in seen:
                raise self.invalid(current, "redirect loop")
            seen.add(target)
            current = target
        raise self.invalid(url, f"more than {MAX_REDIRECTS} redirects")

    def follow(self, source: URL, reference: str, what: str) -> URL:
        """`reference` (a `Location` or a link, maybe relative) resolved against
        `source`, if it may be fetched: raises RedirectRefused, before any
        connection is opened, for anything outside the registry's own origin
        and its download hosts."""
        try:
            target = source.join(URL(reference))
            if target.is_absolute():
                # Credentials are ours to send, never the registry's to inject.
                target = target.with_user(None)
        except ValueError:
            raise self.invalid(source, f"{what} to an invalid URL") from None
        if not self._origins.admits(target):
            reason = "it is neither the registry's own origin nor one of its download_hosts"
        elif source.scheme == "https" and target.scheme != "https":
            reason = "it would downgrade https to http"
        else:
            return target
        refused, where = target_text(target), self.display(source)
        event = "redirect_refused" if what == "redirect" else "link_refused"
        self._log.warning(event, url=where, target=refused, reason=reason)
        raise RedirectRefused(
            self._upstream,
            f"{self._upstream}: {what} from {where} to {refused} refused, as {reason}",
            refused,
        )

    @contextmanager
    def _translated(self, url: URL) -> Iterator[None]:
        """Network failures as UpstreamErrors; the aiohttp error is not chained,
        as some (ClientResponseError) carry our request headers."""
        where = self.display(url)
        try:
            yield
        except UpstreamError:
            raise
        except TimeoutError:
            self._log.warning("upstream_request_failed", url=where, reason="timeout")
            raise UpstreamTimeout(
                self._upstream,
                f"{self._upstream}: {where} did not answer within the connect/read timeout",
                where,
            ) from None
        except aiohttp.ClientPayloadError as error:
            if not isinstance(error.__cause__, TimeoutError):
                raise self._request_failed(error, url) from None
            self._log.warning("upstream_request_failed", url=where, reason="timeout")
            raise UpstreamTimeout(
                self._upstream, f"{self._upstream}: {where} stalled mid-response", where
            ) from None
        except aiohttp.ClientError as error:
            raise self._request_failed(error, url) from None

    def _request_failed(self, error: aiohttp.ClientError, url: URL) -> UpstreamError:
        where = self.display(url)
        kind, reason = classify(error, url, where)
        reason = self.scrub(reason)
        self._log.warning("upstream_request_failed", url=where, reason=reason)
        return kind(self._upstream, f"{self._upstream}: {reason}", where)

    async def _failure(self, response: Any, url: URL) -> UpstreamUnavailable:
        """The error for a status nobody expected (problem details: SE-0292 3.3)."""
        status: int = response.status
        where = self.display(url)
        try:
            body = await response.content.read(_PROBLEM_LIMIT)
        except (aiohttp.ClientError, TimeoutError):
            body = b""
        detail = problem_detail(body)
        suffix = f": {self.scrub(detail)}" if detail else ""
        self._log.warning("upstream_request_failed", url=where, status=status)
        if status in (401, 403):
            reason = (
                "upstream rejected our credentials"
                if self._authorizes(url)
                else "upstream requires credentials and none are configured for this host"
            )
            text = f"{self._upstream}: {reason} (HTTP {status} from {where})"
            return UpstreamUnavailable(self._upstream, text, where)
        if status == 429 or status >= 500:
            text = f"{self._upstream}: HTTP {status} from {where}{suffix}"
            return HostFailed(self._upstream, text, where)
        text = f"{self._upstream}: unexpected HTTP {status} from {where}{suffix}"
        return InvalidUpstreamResponse(self._upstream, text, where)

    async def get(
        self,
        url: URL,
        *,
        accept: str,
        expect: Expectation,
        cached: bool = False,
        passthrough: frozenset[int] = NOT_FOUND,
    ) -> Answer:
        """GET a small document, read whole.

        200 is validated; statuses in `passthrough` are returned for the
        caller to interpret; anything else raises. `cached` documents go
        through the revalidating HTTP cache.
        """
        with self._translated(url):
            response = await self._send(url, accept, cached=cached)
            try:
                final: URL = response.url
                if response.status in passthrough:
                    # Read the (small) problem body so the connection can be reused.
                    body = await response.content.read(_PROBLEM_LIMIT)
                    return Answer(response.status, final, response.headers, body)
                if response.status != 200:
                    raise await self._failure(response, final)
                reason = violation(response.headers, expect)
                if reason is not None:
                    if cached:
                        # Never revalidate into a response we refuse.
                        await self.forget(final)
                    raise self.invalid(final, reason)
                body = await response.read()
                if getattr(response, "from_cache", False):
                    self._log.debug("upstream_document_not_modified", url=self.display(final))
                return Answer(200, final, response.headers, body)
            finally:
                response.release()

    async def forget(self, url: URL) -> None:
        """Drop a stored document that turned out to be unusable."""
        await self._sessions()[1].delete_url(url)

    @asynccontextmanager
    async def stream(
        self,
        url: URL,
        *,
        accept: str,
        expect: Expectation,
        passthrough: frozenset[int] = NOT_FOUND,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """GET a large body (an archive) to be read by the caller in chunks.

        Yields a validated 200 response, or one whose status is in
        `passthrough`. Network failures while the caller reads are
        translated too.
        """
        with self._translated(url):
            response: aiohttp.ClientResponse = await self._send(url, accept, cached=False)
            completed = False
            try:
                if response.status not in passthrough:
                    if response.status != 200:
                        raise await self._failure(response, response.url)
                    reason = violation(response.headers, expect)
                    if reason is not None:
                        raise self.invalid(response.url, reason)
                yield response
                completed = True
            finally:
                if completed:
                    response.release()
                else:
                    # Unread bytes must not go back to the pool with the connection.
                    response.close()
