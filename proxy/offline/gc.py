"""`spm-proxy gc`: keep the data directory under a size by evicting what can be
rebuilt, in order of how cheap it is to rebuild: abandoned staging files,
quarantined blobs, upstream HTTP revalidation copies, git mirrors, and blobs no
ledger entry vouches for. Ledgered archives and manifests stay unless pruned
explicitly; the ledger itself is never touched, so a pruned release that is
fetched again must come back with its recorded bytes."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from proxy.offline.selection import PackageSpec
from proxy.records import RELEASE_PREFIX, StoredRelease, release_key
from proxy.services import Services
from upstreams.model import PackageId

STAGING_GRACE_SECONDS = 3600  # a fill may still be writing a younger staging file


@dataclass(frozen=True, slots=True)
class Eviction:
    category: str
    path: Path
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


def _tree_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file())


def _files_oldest_first(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    files = [path for path in directory.rglob("*") if path.is_file()]
    return sorted(files, key=lambda path: (path.stat().st_mtime, str(path)))


def _rebuildable(data_dir: Path, ledgered: set[str]) -> Iterator[tuple[str, Path, str]]:
    """Candidates in eviction order: (category, path, detail)."""
    now = time.time()
    for path in _files_oldest_first(data_dir / "blobs" / "staging"):
        if now - path.stat().st_mtime > STAGING_GRACE_SECONDS:
            yield "staging", path, "abandoned partial download"
    for path in _files_oldest_first(data_dir / "blobs" / "quarantine"):
        yield "quarantine", path, "corrupt blob kept for inspection"
    for path in _files_oldest_first(data_dir / "http-cache"):
        yield "http-cache", path, "upstream revalidation copy"
    mirrors = sorted(
        (path for path in (data_dir / "git").glob("*/mirrors/*") if path.is_dir()),
        key=lambda path: (path.stat().st_mtime, str(path)),
    )
    for path in mirrors:
        yield "git-mirror", path, "bare mirror, refetched on demand"
    for path in _files_oldest_first(data_dir / "blobs" / "sha256"):
        if path.name not in ledgered:
            yield "unledgered-blob", path, "no ledger entry vouches for it"


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


async def _prune(services: Services, specs: Sequence[PackageSpec], report: GcReport) -> None:
    for key in await services.index.keys(RELEASE_PREFIX):
        data = await services.index.get(key)
        if not data:
            continue
        stored = StoredRelease.from_json(data)
        package_key = stored.identity.lower()
        if not any(
            spec.package.key == package_key
            and (spec.versions.latest_only or spec.versions.contains(stored.version))
            for spec in specs
        ):
            continue
        digests = [stored.archive_checksum, *(m.checksum for m in stored.manifests)]
        for digest in digests:
            path = services.blobs.location(digest)
            if path.is_file():
                report.evictions.append(
                    Eviction(
                        "pruned", path, path.stat().st_size, f"{stored.identity} {stored.version}"
                    )
                )
                if not report.dry_run:
                    await services.blobs.delete(digest)
        if not report.dry_run:
            # Without its record the release is fetched (and verified) afresh.
            package = PackageId.parse(stored.identity)
            await services.index.delete(release_key(package, stored.version))


async def collect_garbage(
    services: Services,
    *,
    limit: int | None,
    prune: Sequence[PackageSpec] = (),
    dry_run: bool = False,
) -> GcReport:
    data_dir = services.settings.server.data_dir
    usage = await asyncio.to_thread(_tree_size, data_dir)
    report = GcReport(usage_before=usage, limit=limit, dry_run=dry_run)
    if not dry_run:
        # Expired "not found" entries are dead weight in the index.
        report.expired_index_entries = await services.index.purge_expired()
    if prune:
        await _prune(services, prune, report)
    if report.within_limit:
        return report
    ledgered = {entry.checksum for entry in await services.ledger.entries()}
    candidates = await asyncio.to_thread(lambda: list(_rebuildable(data_dir, ledgered)))
    for category, path, detail in candidates:
        if report.within_limit:
            break
        size = await asyncio.to_thread(_tree_size, path)
        report.evictions.append(Eviction(category, path, size, detail))
        if not dry_run:
            await asyncio.to_thread(_remove, path)
    return report
