"""Which upstreams may be asked for a package, with what cache policy, and what was not found.

Routing decides the candidates (`upstreams.routing`); each upstream's cache
policy says how long its lists stay fresh, how long "not found" is
remembered, whether a stale list may stand in when it fails, and how held
releases it no longer has are listed (a route may say otherwise for its
packages).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cache.index import Misses
from proxy.service.errors import NotFound
from proxy.service.held import VanishedPolicy
from upstreams.guard import GuardedUpstream
from upstreams.model import PackageId, Version
from upstreams.routing import Route, Router


@dataclass(frozen=True, slots=True)
class CachePolicy:
    list_ttl: float = 300.0
    negative_ttl: float = 60.0
    # fallback and offline upstreams let a stale list stand in when they fail.
    serves_stale: bool = True
    vanished: VanishedPolicy = VanishedPolicy.KEEP


class Candidates:
    def __init__(
        self,
        router: Router,
        guards: Sequence[GuardedUpstream],
        policies: Mapping[str, CachePolicy],
        misses: Misses,
        route_vanished: Sequence[tuple[Route, VanishedPolicy]] = (),
    ) -> None:
        self._router = router
        self._guards = {guard.name: guard for guard in guards}
        self._policies = policies
        self._misses = misses
        self._route_vanished = tuple(route_vanished)

    @property
    def upstreams(self) -> list[GuardedUpstream]:
        return [self._guards[upstream.name] for upstream in self._router.upstreams]

    def for_package(self, package: PackageId) -> list[GuardedUpstream]:
        """The upstreams to ask, in order; NotFound when routing allows none."""
        found = self.upstreams_for(package)
        if not found:
            raise self.nobody_to_ask(package)
        return found

    def upstreams_for(self, package: PackageId) -> list[GuardedUpstream]:
        return [self._guards[upstream.name] for upstream in self._router.candidates(package)]

    def allows(self, upstream: str, package: PackageId) -> bool:
        return any(candidate.name == upstream for candidate in self._router.candidates(package))

    def routed(self, package: PackageId) -> bool:
        return self._router.route_for(package) is not None

    def nobody_to_ask(self, package: PackageId) -> NotFound:
        route = self._router.route_for(package)
        if route is not None and route.private:
            return NotFound(
                f"{package} is not available: the scope {package.scope!r} is private to "
                "this proxy and is never fetched from an upstream"
            )
        return NotFound(f"no upstream is configured for the scope {package.scope!r}")

    def policy(self, upstream: str | None) -> CachePolicy:
        """An upstream's policy; lists recorded by a since-removed upstream get the first one's."""
        found = self._policies.get(upstream or "")
        return found if found is not None else next(iter(self._policies.values()), CachePolicy())

    def vanished_policy(self, package: PackageId, upstream: str | None) -> VanishedPolicy:
        """How held releases `upstream` lost are listed: the route's say, else the upstream's."""
        route = self._router.route_for(package)
        for candidate, policy in self._route_vanished:
            if candidate is route:
                return policy
        return self.policy(upstream).vanished

    async def missing(self, package: PackageId, version: Version | None = None) -> str | None:
        return await self._misses.missing(package, version)

    async def remember_missing(
        self,
        package: PackageId,
        version: Version | None,
        detail: str,
        asked: Sequence[GuardedUpstream],
    ) -> None:
        ttl = min((self.policy(upstream.name).negative_ttl for upstream in asked), default=0)
        await self._misses.remember_missing(package, version, detail, ttl)

    async def forget_missing(self, package: PackageId, version: Version | None = None) -> None:
        await self._misses.forget_missing(package, version)

    @staticmethod
    def not_found_detail(
        package: PackageId, reasons: Sequence[str], version: Version | None = None
    ) -> str:
        what = f"{package} {version}" if version else str(package)
        return f"{what} was not found ({'; '.join(reasons)})"
