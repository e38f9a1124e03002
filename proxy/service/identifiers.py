"""`/identifiers`: which identities a repository URL has, asking only upstreams routing allows.

An upstream that can tell without I/O which identity a URL would get (a git
upstream, from its URL template) is asked only when routing sends that
identity to it; a registry upstream is asked, and only identities routing
sends to it are kept. An identity is answered only when the upstream that
would serve it (the first in its route that knows it) is one that answered
for the URL: with several public hosts in one route, `gitlab.com/foo/bar`
must not become `foo.bar` while `foo.bar` is served from `github.com/foo/bar`.
Answers are kept per canonical location, so `/identifiers` keeps working for
known URLs while upstreams are offline, and for the packages the proxy holds
once their repository is gone upstream.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog

from cache.index import Identifiers
from proxy.service.candidates import Candidates
from proxy.service.held import Holdings
from proxy.service.releases import CacheStatus
from upstreams.errors import PackageNotFound, UpstreamOffline, UpstreamUnavailable
from upstreams.guard import GuardedUpstream
from upstreams.locations import canonical_location, redact
from upstreams.model import PackageId


@dataclass(frozen=True, slots=True)
class Identified:
    identities: list[PackageId]
    status: CacheStatus


class IdentifierResolver:
    def __init__(
        self,
        *,
        identifiers: Identifiers,
        candidates: Candidates,
        ttl: float,
        holdings: Holdings | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._identifiers = identifiers
        self._candidates = candidates
        self._holdings = holdings
        self._ttl = ttl
        self._clock = clock
        self._log = structlog.get_logger()

    async def resolve(self, url: str) -> Identified:
        location = canonical_location(url)
        cached = await self._identifiers.identities(location)
        if cached is not None and self._clock() - cached.fetched_at < self._ttl:
            return Identified(self._routed(list(cached.identities)), CacheStatus.HIT)
        answered: dict[str, tuple[PackageId, set[str]]] = {}
        asked = failed = False
        for upstream in self._candidates.upstreams:
            if not self._may_ask(upstream, url):
                continue
            asked = True
            try:
                answer = await upstream.identities_for(url)
            except UpstreamUnavailable as exc:
                failed = True
                self._report(exc, upstream.name, url)
                continue
            for package in answer:
                if self._candidates.allows(upstream.name, package):
                    answered.setdefault(package.key, (package, set()))[1].add(upstream.name)
        found: list[PackageId] = []
        for package, upstreams in answered.values():
            try:
                if await self._served_by(package, upstreams, url):
                    found.append(package)
            except UpstreamUnavailable as exc:
                failed = True
                self._report(exc, exc.upstream, url)
        if failed and not found and cached is not None:
            return Identified(self._routed(list(cached.identities)), CacheStatus.STALE)
        if not found and cached is not None and (held := await self._held(cached.identities)):
            # The repository is gone upstream, but its releases are held here.
            return Identified(held, CacheStatus.HELD)
        identities = sorted(found, key=lambda package: package.key)
        if identities:
            await self._identifiers.put_identities(location, identities, self._clock())
        return Identified(identities, CacheStatus.MISS if asked else CacheStatus.HIT)

    async def _served_by(self, package: PackageId, answered: set[str], url: str) -> bool:
        """Whether `package` is served by one of the upstreams that `answered` for `url`:
        each upstream before them in its route must not know it."""
        for upstream in self._candidates.upstreams_for(package):
            if upstream.name in answered:
                return True
            try:
                await upstream.list_releases(package)
            except PackageNotFound:
                continue
            self._log.warning(
                "identity_shadowed",
                package=str(package),
                url=redact(url),
                served_by=upstream.name,
                answered_by=sorted(answered),
            )
            return False
        return False

    def _report(self, exc: UpstreamUnavailable, upstream: str, url: str) -> None:
        if not isinstance(exc, UpstreamOffline):
            self._log.warning(
                "identifiers_lookup_failed", upstream=upstream, url=redact(url), reason=exc.detail
            )

    def _may_ask(self, upstream: GuardedUpstream, url: str) -> bool:
        claimed = upstream.claims(url)
        if claimed is None:
            return True  # only asking can tell; answers are filtered by routing
        return any(self._candidates.allows(upstream.name, package) for package in claimed)

    async def _held(self, identities: Sequence[PackageId]) -> list[PackageId]:
        if self._holdings is None:
            return []
        return [
            package
            for package in self._routed(list(identities))
            if await self._holdings.versions(package)
        ]

    def _routed(self, identities: list[PackageId]) -> list[PackageId]:
        # Routing may have changed since the answer was kept.
        return [package for package in identities if self._candidates.routed(package)]
