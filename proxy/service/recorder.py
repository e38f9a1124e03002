"""The one release write path: every release that enters the proxy is recorded here.

A fill from git, a fill from a registry, a bundle import (and a publish)
all hand a `Candidate` to `Recorder.record`, which works in this order:

1. Verify every resource against the ledger; a difference is a
   `ChecksumConflict` and nothing is committed.
2. Commit the blobs (create-only; the archive against the checksum the
   ledger or the source vouches for).
3. Record the ledger entries in one transaction; if another process recorded
   a different checksum meanwhile, that is a `ChecksumConflict`.
4. Write the release record (put-if-absent): the commit point that makes the
   release servable.

Why this order is crash-safe: blobs first, so the ledger and the record
only ever name bytes that exist (a crash leaves unreferenced blobs, which gc
collects); the ledger before the record, so nothing is served that the
ledger does not vouch for; the record last, like a blob's rename. Every
step is idempotent, so a retry after a crash finishes the job.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from cache.blobs import BlobStore, BlobWriter
from cache.digests import sha256_bytes
from cache.errors import BlobDigestMismatch
from cache.index import ManifestRecord, ReleaseRecord, Releases
from cache.ledger import Ledger, LedgerEntry
from proxy.service.errors import ChecksumConflict
from upstreams.errors import ArchiveChecksumMismatch
from upstreams.model import (
    SOURCE_ARCHIVE,
    FetchedRelease,
    Manifest,
    PackageId,
    Provenance,
    Version,
    utc_timestamp,
)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A release on its way in: the archive written but not committed, the rest in hand."""

    package: PackageId
    version: Version
    archive: BlobWriter
    manifests: tuple[Manifest, ...]
    metadata: dict[str, Any]
    # The name recorded in the release record: the upstream it came from.
    upstream: str
    # Where the bytes came from, for new ledger entries.
    provenance: Provenance
    # The checksum the source vouches for (a registry's metadata), if any.
    vouched: str | None = None
    signing: dict[str, str] | None = None
    published_at: str | None = None
    # Entries carried in from elsewhere (a bundle's ledger), recorded as they are.
    entries: Mapping[str, LedgerEntry] = field(default_factory=dict)

    @classmethod
    def fetched(cls, fetched: FetchedRelease, archive: BlobWriter, upstream: str) -> Candidate:
        return cls(
            package=fetched.package,
            version=fetched.version,
            archive=archive,
            manifests=fetched.manifests,
            metadata=fetched.metadata,
            upstream=upstream,
            provenance=fetched.provenance,
            vouched=fetched.upstream_checksum,
            signing=fetched.signing,
            published_at=fetched.published_at,
        )

    def offered(self) -> dict[str, str]:
        """resource -> checksum of everything this candidate would serve."""
        found = {SOURCE_ARCHIVE: self.archive.digest}
        found.update((m.filename, sha256_bytes(m.content)) for m in self.manifests)
        return found


class Recorder:
    def __init__(
        self,
        blobs: BlobStore,
        ledger: Ledger,
        releases: Releases,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._blobs = blobs
        self._ledger = ledger
        self._releases = releases
        self._clock = clock
        self._log = structlog.get_logger()

    async def check(self, candidate: Candidate) -> dict[str, LedgerEntry]:
        """Step 1 alone: raise `ChecksumConflict` unless the ledger agrees (an import
        checks every release before recording any)."""
        recorded = await self._ledger.lookup(candidate.package, candidate.version)
        offered = candidate.offered()
        for resource, entry in sorted(recorded.items()):
            actual = offered.get(resource, "absent")
            if actual != entry.checksum:
                raise self.conflict(candidate, resource, entry.checksum, actual)
        return recorded

    async def record(self, candidate: Candidate) -> ReleaseRecord:
        recorded = await self.check(candidate)
        archive = await self._commit_archive(candidate, recorded)
        for manifest in candidate.manifests:
            await self._blobs.put(manifest.content, sha256_bytes(manifest.content))
        winners = await self._record_ledger(candidate)
        record = ReleaseRecord(
            package=candidate.package,
            version=candidate.version,
            archive_checksum=archive,
            manifests=tuple(
                ManifestRecord(m.filename, sha256_bytes(m.content), m.tools_version)
                for m in candidate.manifests
            ),
            metadata=candidate.metadata,
            # An upstream registry's own publication time, else when this
            # release's bytes were first recorded (stable across rebuilds).
            published_at=candidate.published_at
            or utc_timestamp(winners[SOURCE_ARCHIVE].recorded_at),
            upstream=candidate.upstream,
            signing=candidate.signing,
        )
        stored = await self._store_record(record)
        self._log.info(
            "release_stored",
            package=str(candidate.package),
            version=str(candidate.version),
            upstream=candidate.upstream,
            checksum=archive,
            commit=candidate.provenance.commit,
        )
        return stored

    async def _commit_archive(self, candidate: Candidate, recorded: Mapping[str, Any]) -> str:
        ledgered = recorded.get(SOURCE_ARCHIVE)
        expected = ledgered.checksum if ledgered is not None else candidate.vouched
        try:
            return await candidate.archive.commit(expected)
        except BlobDigestMismatch as exc:
            if ledgered is not None:
                raise self.conflict(candidate, SOURCE_ARCHIVE, exc.expected, exc.actual) from exc
            where = candidate.provenance.url
            raise ArchiveChecksumMismatch(
                candidate.provenance.upstream,
                f"{candidate.provenance.upstream}: archive from {where} has checksum "
                f"{exc.actual}, but the upstream announced {exc.expected}",
                where,
                expected=exc.expected,
                actual=exc.actual,
            ) from exc

    async def _record_ledger(self, candidate: Candidate) -> dict[str, LedgerEntry]:
        now = int(self._clock())
        entries = [
            candidate.entries.get(resource)
            or LedgerEntry(
                identity=candidate.package.key,
                version=str(candidate.version),
                resource=resource,
                checksum=checksum,
                upstream=candidate.provenance.upstream,
                url=candidate.provenance.url,
                commit=candidate.provenance.commit,
                recorded_at=now,
            )
            for resource, checksum in sorted(candidate.offered().items())
        ]
        winners = await self._ledger.record(entries)
        for entry, winner in zip(entries, winners, strict=True):
            # Another process may have recorded a different checksum meanwhile.
            if winner.checksum != entry.checksum:
                raise self.conflict(candidate, entry.resource, winner.checksum, entry.checksum)
        return {winner.resource: winner for winner in winners}

    async def _store_record(self, record: ReleaseRecord) -> ReleaseRecord:
        stored = await self._releases.add_release(record)
        if stored.resources() == record.resources():
            return stored
        # The stored record names other bytes than the ledger now vouches for:
        # it is corrupt (an index restored from another backup); ours replaces it.
        self._log.error(
            "release_record_replaced",
            package=str(record.package),
            version=str(record.version),
            stored=stored.resources(),
            ledger=record.resources(),
        )
        await self._releases.drop_release(record.package, record.version)
        return await self._releases.add_release(record)

    def conflict(
        self, candidate: Candidate, resource: str, recorded: str, actual: str
    ) -> ChecksumConflict:
        self._log.error(
            "checksum_mismatch",
            package=str(candidate.package),
            version=str(candidate.version),
            resource=resource,
            recorded=recorded,
            actual=actual,
            upstream=candidate.provenance.upstream,
            url=candidate.provenance.url,
            commit=candidate.provenance.commit,
        )
        return ChecksumConflict(
            package=str(candidate.package),
            version=str(candidate.version),
            resource=resource,
            recorded=recorded,
            actual=actual,
        )
