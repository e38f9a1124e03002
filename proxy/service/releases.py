"""Finding a servable release: memo, index, a check against the ledger, else a fill.

The ledger is the authority. The first time this process sees a release
record it is compared with the ledger entries of that release; a record that
names other bytes, or has no entries at all, is never served. It is logged as
an error, dropped and filled again through the recorder (which checks the new
bytes against the ledger), or, when no upstream can be asked, rebuilt from the
ledger and the blobs it names. A release with no record at all that its
upstream no longer serves is rebuilt the same way: what the ledger vouches
for and the blobs hold is served, whatever happened upstream.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

import structlog

from cache.blobs import BlobStore
from cache.index import ManifestRecord, ReleaseRecord, Releases
from cache.ledger import Ledger, LedgerEntry
from proxy.service.candidates import Candidates
from proxy.service.errors import NotFound
from proxy.service.fills import Filler
from proxy.service.memo import Memo
from upstreams.errors import UpstreamUnavailable
from upstreams.model import (
    SOURCE_ARCHIVE,
    PackageId,
    Version,
    parse_tools_version,
    utc_timestamp,
)

MEMO_CAPACITY = 4096


class CacheStatus(StrEnum):
    """Reported in `X-Cache-Status` and the access log."""

    HIT = "hit"
    MISS = "miss"
    STALE = "stale"
    # Answered from what the proxy holds, which its upstream no longer has.
    HELD = "held"


@dataclass(frozen=True, slots=True)
class Found:
    record: ReleaseRecord
    status: CacheStatus


class ReleaseLookup:
    def __init__(
        self,
        *,
        releases: Releases,
        ledger: Ledger,
        blobs: BlobStore,
        filler: Filler,
        candidates: Candidates,
    ) -> None:
        self._releases = releases
        self._ledger = ledger
        self._blobs = blobs
        self._filler = filler
        self._candidates = candidates
        # Records the ledger has vouched for in this process; release records
        # never change once stored, so a verified one stays verified.
        self._trusted: Memo[tuple[str, Version], ReleaseRecord] = Memo(MEMO_CAPACITY)
        self._log = structlog.get_logger()

    async def get(self, package: PackageId, version: Version) -> Found:
        remembered = self._trusted.get((package.key, version))
        if remembered is not None:
            return Found(remembered, CacheStatus.HIT)
        record = await self._releases.release(package, version)
        if record is not None:
            entries = await self._ledger.lookup(package, version)
            if _agrees(record, entries):
                self._trusted.put((package.key, version), record)
                return Found(record, CacheStatus.HIT)
            return Found(await self._heal(record, entries), CacheStatus.MISS)
        missing = await self._candidates.missing(package, version)
        failure: Exception = NotFound(missing or "")
        try:
            if missing is None:
                return Found(await self._fill(package, version), CacheStatus.MISS)
        except (UpstreamUnavailable, NotFound) as exc:
            failure = exc
        rebuilt = await self._rebuild(package, version)
        if rebuilt is None:
            raise failure
        self._log.warning(
            "release_record_rebuilt",
            package=str(package),
            version=str(version),
            checksum=rebuilt.archive_checksum,
            reason=str(failure),
        )
        return Found(rebuilt, CacheStatus.HELD)

    async def refill(self, package: PackageId, version: Version) -> Found:
        """Fill again although a record exists (its blobs went missing)."""
        self._trusted.drop((package.key, version))
        return Found(await self._fill(package, version), CacheStatus.MISS)

    async def _fill(self, package: PackageId, version: Version) -> ReleaseRecord:
        await self._filler.fill(package, version)
        record = await self._releases.release(package, version)
        if record is None:
            raise NotFound(f"{package} {version} was fetched, but its record was not kept")
        entries = await self._ledger.lookup(package, version)
        if not _agrees(record, entries):
            return await self._heal(record, entries)
        self._trusted.put((package.key, version), record)
        return record

    async def _heal(self, record: ReleaseRecord, entries: dict[str, LedgerEntry]) -> ReleaseRecord:
        package, version = record.package, record.version
        self._log.error(
            "release_record_corrupt",
            package=str(package),
            version=str(version),
            record=record.resources(),
            ledger={resource: entry.checksum for resource, entry in entries.items()},
        )
        await self._releases.drop_release(package, version)
        try:
            return await self._fill(package, version)
        except (UpstreamUnavailable, NotFound) as failure:
            repaired = await self._repair(record, entries)
            if repaired is None:
                raise NotFound(
                    f"{package} {version} cannot be served: its record contradicts the "
                    f"checksum ledger and it could not be fetched again ({failure})"
                ) from failure
            self._log.error(
                "release_record_repaired",
                package=str(package),
                version=str(version),
                checksum=repaired.archive_checksum,
            )
            return repaired

    async def _rebuild(self, package: PackageId, version: Version) -> ReleaseRecord | None:
        """A record for a release the ledger and the blobs hold, but the index lost."""
        entries = await self._ledger.lookup(package, version)
        archive = entries.get(SOURCE_ARCHIVE)
        if archive is None:
            return None
        bare = ReleaseRecord(
            package=package,
            version=version,
            archive_checksum=archive.checksum,
            manifests=(),
            metadata={},
            published_at=utc_timestamp(archive.recorded_at),
            upstream=archive.upstream,
        )
        return await self._repair(bare, entries)

    async def _repair(
        self, record: ReleaseRecord, entries: dict[str, LedgerEntry]
    ) -> ReleaseRecord | None:
        """The record rebuilt from the ledger and the blobs it names, if they are all here."""
        archive = entries.get(SOURCE_ARCHIVE)
        if archive is None:
            return None
        manifests = []
        for resource, entry in sorted(entries.items()):
            if resource == SOURCE_ARCHIVE:
                continue
            content = await self._blobs.read(entry.checksum)
            if content is None:
                return None
            manifests.append(ManifestRecord(resource, entry.checksum, parse_tools_version(content)))
        if await self._blobs.stat(archive.checksum) is None:
            return None
        repaired = replace(
            record,
            archive_checksum=archive.checksum,
            manifests=tuple(manifests),
            # A signature is of the archive it came with: not of these bytes.
            signing=record.signing if record.archive_checksum == archive.checksum else None,
        )
        stored = await self._releases.add_release(repaired)
        if not _agrees(stored, entries):
            return None
        self._trusted.put((record.package.key, record.version), stored)
        return stored


def _agrees(record: ReleaseRecord, entries: dict[str, LedgerEntry]) -> bool:
    return bool(entries) and record.resources() == {
        resource: entry.checksum for resource, entry in entries.items()
    }
