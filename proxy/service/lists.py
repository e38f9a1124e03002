"""Release lists: fresh from the cache, else one coalesced refresh in the `lists` pool.

Refreshes run in their own pool, so they never queue behind archive builds.
When the upstream fails (or is offline, or slower than a client may wait),
the stale list stands in under a `fallback`/`offline` policy: a build that
resolved yesterday still resolves. Standing in is logged once per stale copy.

Every refresh also notes what the upstream lost of what the proxy holds: a
held release it no longer lists, or the whole package (`proxy.service.held`);
each is logged once, when first noticed. A package whose upstream is gone is
answered from what is held (`X-Cache-Status: held`). Releases a fill found
the upstream cannot serve (no `Package.swift`) are noted too, and listed
with a problem from then on, so SwiftPM never picks them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import structlog

from cache.index import Lists, ReleaseList
from proxy.service.candidates import Candidates
from proxy.service.errors import FillStillRunning, FillTimedOut, NotFound
from proxy.service.fills import Coalescer
from proxy.service.held import Holdings, gone_list, served, with_holdings
from proxy.service.memo import Memo
from proxy.service.releases import MEMO_CAPACITY, CacheStatus
from upstreams.errors import PackageNotFound, UpstreamOffline, UpstreamUnavailable
from upstreams.guard import GuardedUpstream
from upstreams.model import PackageId, Version


@dataclass(frozen=True, slots=True)
class Listed:
    release_list: ReleaseList
    status: CacheStatus


class ReleaseLists:
    def __init__(
        self,
        *,
        lists: Lists,
        candidates: Candidates,
        holdings: Holdings,
        refreshes: Coalescer[ReleaseList],
        pool: asyncio.Semaphore,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._lists = lists
        self._candidates = candidates
        self._holdings = holdings
        self._refreshes = refreshes
        self._pool = pool
        self._clock = clock
        # A copy is used only while fresh by its own fetched_at, so the
        # configured TTL still bounds staleness.
        self._memo: Memo[str, ReleaseList] = Memo(MEMO_CAPACITY)
        self._stale_logged: set[tuple[str, float]] = set()
        self._log = structlog.get_logger()

    async def cached(self, package: PackageId) -> ReleaseList | None:
        """The stored list of any age, without waiting for an upstream.

        With none stored, a refresh starts in the background, so the next
        answer has one.
        """
        found = self._memo.get(package.key) or await self._lists.release_list(package)
        if found is None and self._candidates.upstreams_for(package):
            self._refreshes.start(
                package.key, f"the release list of {package}", lambda: self._refresh(package)
            )
        return None if found is None else self._served(found)

    async def get(self, package: PackageId) -> Listed:
        remembered = self._memo.get(package.key)
        if remembered is not None and self._fresh(remembered):
            return self._listed(remembered, CacheStatus.HIT)
        cached = await self._lists.release_list(package)
        if cached is not None and self._fresh(cached):
            self._memo.put(package.key, cached)
            return self._listed(cached, CacheStatus.HIT)
        upstreams = self._candidates.upstreams_for(package)
        if not upstreams:
            # Nobody may be asked (a private scope, filled by `import`): the
            # proxy's own copy is the authority, however old.
            if cached is not None:
                return self._listed(cached, CacheStatus.HIT)
            raise self._candidates.nobody_to_ask(package)
        if cached is None and (missing := await self._candidates.missing(package)):
            raise NotFound(missing)
        try:
            _admitted(upstreams)
            fresh = await self._refreshes.run(
                package.key, f"the release list of {package}", lambda: self._refresh(package)
            )
        except (UpstreamUnavailable, FillStillRunning, FillTimedOut) as failure:
            return self._stand_in(package, cached, failure)
        return self._listed(fresh, CacheStatus.MISS)

    async def note_unservable(self, package: PackageId, version: Version, detail: str) -> None:
        """Remember that the upstream lists `version` but cannot serve it: from now on the
        list shows it with a problem, so clients never pick it."""
        stored = await self._previous(package)
        if stored is None or stored.unservable.get(str(version)) == detail:
            return
        await self._keep(replace(stored, unservable={**stored.unservable, str(version): detail}))
        self._log.warning(
            "release_unservable", package=str(package), version=str(version), reason=detail
        )

    def _listed(self, release_list: ReleaseList, status: CacheStatus) -> Listed:
        # A package its upstream lost is answered from what is held alone.
        return Listed(
            self._served(release_list),
            CacheStatus.HELD if release_list.gone is not None else status,
        )

    def _served(self, release_list: ReleaseList) -> ReleaseList:
        policy = self._candidates.vanished_policy(release_list.package, release_list.upstream)
        return served(release_list, policy)

    def _stand_in(
        self, package: PackageId, cached: ReleaseList | None, failure: Exception
    ) -> Listed:
        upstream = failure.upstream if isinstance(failure, UpstreamUnavailable) else None
        if cached is None or not self._candidates.policy(upstream or cached.upstream).serves_stale:
            raise failure
        if (package.key, cached.fetched_at) not in self._stale_logged:
            self._stale_logged.add((package.key, cached.fetched_at))
            self._log.warning(
                "stale_list_served",
                package=str(package),
                reason=str(failure),
                age=int(self._clock() - cached.fetched_at),
            )
        return Listed(self._served(cached), CacheStatus.STALE)

    async def _refresh(self, package: PackageId) -> ReleaseList:
        upstreams = self._candidates.for_package(package)
        reasons: list[str] = []
        async with self._pool:
            for upstream in upstreams:
                try:
                    listing = await upstream.list_releases(package)
                except PackageNotFound as exc:
                    reasons.append(exc.detail)
                    continue
                fresh = ReleaseList.from_listing(listing, upstream.name, self._clock())
                fresh = await self._with_holdings(fresh)
                await self._keep(fresh)
                await self._candidates.forget_missing(package)
                self._log.info(
                    "list_fetched",
                    package=str(package),
                    upstream=upstream.name,
                    versions=len(fresh.versions),
                )
                return fresh
        detail = Candidates.not_found_detail(package, reasons)
        held = await self._holdings.versions(package)
        if held:
            return await self._gone(package, held, upstreams[0].name, "; ".join(reasons))
        await self._candidates.remember_missing(package, None, detail, upstreams)
        raise NotFound(detail)

    async def _with_holdings(self, fresh: ReleaseList) -> ReleaseList:
        package = fresh.package
        previous = await self._previous(package)
        held = await self._holdings.versions(package)
        noted, noticed = with_holdings(fresh, previous, held, self._clock())
        for version in noticed:
            self._log.warning(
                "upstream_release_vanished",
                package=str(package),
                version=str(version),
                upstream=fresh.upstream,
            )
        if previous is not None and previous.gone is not None:
            self._log.info(
                "upstream_package_returned", package=str(package), upstream=fresh.upstream
            )
        return noted

    async def _gone(
        self, package: PackageId, held: set[Version], upstream: str, detail: str
    ) -> ReleaseList:
        previous = await self._previous(package)
        kept = gone_list(
            package, previous, held, upstream=upstream, detail=detail, now=self._clock()
        )
        if previous is None or previous.gone is None:
            self._log.warning(
                "upstream_package_vanished",
                package=str(package),
                upstream=kept.upstream,
                reason=detail,
                held=[str(version) for version in sorted(held, reverse=True)],
            )
        await self._keep(kept)
        return kept

    async def _previous(self, package: PackageId) -> ReleaseList | None:
        return self._memo.get(package.key) or await self._lists.release_list(package)

    async def _keep(self, release_list: ReleaseList) -> None:
        await self._lists.put_release_list(release_list)
        self._memo.put(release_list.package.key, release_list)

    def _fresh(self, release_list: ReleaseList) -> bool:
        age = self._clock() - release_list.fetched_at
        return age < self._candidates.policy(release_list.upstream).list_ttl


def _admitted(upstreams: list[GuardedUpstream]) -> None:
    """Raise `UpstreamOffline` when not one candidate may be called right now.

    Starting a refresh that can only fail would cost a task and a log line
    per request; the stale copy answers at once instead.
    """
    refusals: list[UpstreamOffline] = []
    for upstream in upstreams:
        try:
            upstream.admit()
        except UpstreamOffline as refusal:
            refusals.append(refusal)
            continue
        return
    raise refusals[0]
