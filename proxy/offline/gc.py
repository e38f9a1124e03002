"""`spm-proxy gc`: keep the data directory under a size by removing what can be rebuilt.

In order of how cheap it is to rebuild: abandoned partial writes, quarantined
blobs, the upstreams' local caches (HTTP revalidation copies, git mirrors),
and blobs no ledger entry vouches for. Ledgered archives and manifests stay
unless pruned explicitly; the ledger itself is never touched, so a pruned
release that is fetched again must come back with its recorded bytes.
Everything goes through the seams; nothing here knows where bytes live.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from cache.blobs import BlobInfo, BlobStore
from cache.index import Misses, ReleaseRecord, Releases
from cache.ledger import Ledger
from proxy.offline.selection import PackageSpec
from upstreams.base import LocalCache

# A fill or import may still be writing a younger partial file.
ABANDONED_AFTER_SECONDS = 3600


@dataclass(frozen=True, slots=True)
class Eviction:
    category: str
    what: str
    size: int
    detail: str = ""


@dataclass(slots=True)
class GcReport:
    usage_before: int
    limit: int | None
    dry_run: bool
    evictions: list[Eviction] = field(default_factory=list)
    expired_index_entries: int = 0

    @property
    def freed(self) -> int:
        return sum(item.size for item in self.evictions)

    @property
    def usage_after(self) -> int:
        return self.usage_before - self.freed

    @property
    def within_limit(self) -> bool:
        return self.limit is None or self.usage_after <= self.limit

    @property
    def over_by(self) -> int:
        return 0 if self.limit is None else max(0, self.usage_after - self.limit)

    def summary(self) -> str:
        verb = "would free" if self.dry_run else "freed"
        limit = "no limit" if self.limit is None else f"limit {human(self.limit)}"
        return (
            f"gc: {verb} {human(self.freed)} in {len(self.evictions)} items; "
            f"{human(self.usage_before)} -> {human(self.usage_after)} ({limit})"
        )


def human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.1f} {unit}" if unit != "B" else f"{size} B"
        value /= 1024
    return f"{value:.1f} TiB"


@dataclass(frozen=True, slots=True)
class Collector:
    blobs: BlobStore
    ledger: Ledger
    releases: Releases
    misses: Misses
    caches: Sequence[LocalCache]
    usage: Callable[[], Awaitable[int]]

    async def collect(
        self, *, limit: int | None, prune: Sequence[PackageSpec] = (), dry_run: bool = False
    ) -> GcReport:
        report = GcReport(usage_before=await self.usage(), limit=limit, dry_run=dry_run)
        if not dry_run:
            # Expired "not found" entries are dead weight in the index.
            report.expired_index_entries = await self.misses.purge_expired()
        if prune:
            await self._prune(prune, report)
        steps = (self._abandoned, self._quarantined, self._local_caches, self._unledgered)
        for step in steps:
            if report.within_limit:
                break
            await step(report)
        return report

    async def _abandoned(self, report: GcReport) -> None:
        freed = await self.blobs.sweep(ABANDONED_AFTER_SECONDS, dry_run=report.dry_run)
        if freed:
            report.evictions.append(Eviction("staging", "partial writes", freed, "abandoned"))

    async def _quarantined(self, report: GcReport) -> None:
        freed = await self.blobs.purge_quarantine(dry_run=report.dry_run)
        if freed:
            report.evictions.append(
                Eviction("quarantine", "quarantined blobs", freed, "corrupt, kept for inspection")
            )

    async def _local_caches(self, report: GcReport) -> None:
        for cache in self.caches:
            if report.within_limit:
                return
            size = await cache.usage() if report.dry_run else await cache.trim(report.over_by)
            if size:
                report.evictions.append(Eviction("local-cache", cache.label, size, "rebuildable"))

    async def _unledgered(self, report: GcReport) -> None:
        ledgered = {entry.checksum async for entry in self.ledger.entries()}
        candidates: list[BlobInfo] = [
            info async for info in self.blobs.digests() if info.digest not in ledgered
        ]
        for info in sorted(candidates, key=lambda info: (info.modified, info.digest)):
            if report.within_limit:
                return
            if not report.dry_run:
                await self.blobs.delete(info.digest)
            report.evictions.append(
                Eviction(
                    "unledgered-blob", info.digest, info.size, "no ledger entry vouches for it"
                )
            )

    async def _prune(self, specs: Sequence[PackageSpec], report: GcReport) -> None:
        kept: set[str] = set()
        pruned: list[ReleaseRecord] = []
        async for record in self.releases.releases():
            if _selected(record, specs):
                pruned.append(record)
            else:
                kept.update(record.resources().values())
        for record in pruned:
            subject = f"{record.package} {record.version}"
            if not report.dry_run:
                # Without its record the release is fetched (and verified) afresh.
                await self.releases.drop_release(record.package, record.version)
            for digest in sorted(set(record.resources().values()) - kept):
                info = await self.blobs.stat(digest)
                if info is None:
                    continue
                kept.add(digest)  # shared by two pruned releases: counted once
                if not report.dry_run:
                    await self.blobs.delete(digest)
                report.evictions.append(Eviction("pruned", digest, info.size, subject))


def _selected(record: ReleaseRecord, specs: Sequence[PackageSpec]) -> bool:
    return any(
        spec.package.key == record.package.key
        and (spec.versions.latest_only or spec.versions.contains(record.version))
        for spec in specs
    )
