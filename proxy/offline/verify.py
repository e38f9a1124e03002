"""`spm-proxy verify`: re-hash every ledgered blob, and check every record against the ledger.

Corrupt blobs are quarantined (never served) and, where an upstream is
reachable, filled again; the refill goes through the recorder, so a release can
only come back with its recorded bytes. A release record that contradicts the
ledger is reported, and with refetching dropped and filled again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from cache.blobs import BlobStore
from cache.errors import StorageError
from cache.index import ReleaseRecord, Releases
from cache.ledger import Ledger, LedgerEntry
from proxy.service.errors import ServiceError
from proxy.service.fills import Filler
from upstreams.errors import UpstreamError
from upstreams.model import InvalidIdentity, InvalidVersion, PackageId, Version


class Finding(StrEnum):
    CORRUPT = "corrupt"
    MISSING = "missing"
    INCONSISTENT = "inconsistent"


@dataclass(frozen=True, slots=True)
class Problematic:
    finding: Finding
    identity: str
    version: str
    resource: str
    checksum: str
    detail: str


@dataclass(slots=True)
class VerifyReport:
    checked: int = 0
    problems: list[Problematic] = field(default_factory=list)
    refetched: list[str] = field(default_factory=list)
    refetch_failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        return (
            f"verify: {self.checked} blobs checked, {len(self.problems)} problems, "
            f"{len(self.refetched)} refetched, {len(self.refetch_failures)} could not be refetched"
        )


Release = tuple[PackageId, Version]


@dataclass(slots=True)
class Verifier:
    ledger: Ledger
    blobs: BlobStore
    releases: Releases
    filler: Filler
    on_checked: Callable[[], object] | None = None
    _verdicts: dict[str, tuple[Finding | None, str]] = field(default_factory=dict)

    async def verify(self, *, refetch: bool) -> VerifyReport:
        report = VerifyReport()
        damaged: dict[tuple[str, str], Release] = {}
        async for entry in self.ledger.entries():
            release = _release(entry)
            record = None if release is None else await self.releases.release(*release)
            problem = await self._judge(entry, record, report)
            if problem is None:
                continue
            report.problems.append(problem)
            if record is not None:
                damaged[(entry.identity, entry.version)] = (record.package, record.version)
        if refetch:
            for package, version in damaged.values():
                await self._refill(package, version, report)
        return report

    async def _judge(
        self, entry: LedgerEntry, record: ReleaseRecord | None, report: VerifyReport
    ) -> Problematic | None:
        # Identical manifests of different versions share one blob: judge it once.
        if entry.checksum not in self._verdicts:
            self._verdicts[entry.checksum] = await self._blob_verdict(entry.checksum)
            report.checked += 1
            if self.on_checked:
                self.on_checked()
        finding, detail = self._verdicts[entry.checksum]
        if finding is None:
            claimed = None if record is None else record.resources().get(entry.resource)
            if record is not None and claimed != entry.checksum:
                what = f"says {claimed}" if claimed else "lacks it"
                return _problem(
                    entry,
                    Finding.INCONSISTENT,
                    f"the release record {what}, the ledger says {entry.checksum}",
                )
            return None
        if record is None and finding is Finding.MISSING:
            return None  # pruned on purpose: no record claims it any more
        return _problem(entry, finding, detail)

    async def _blob_verdict(self, digest: str) -> tuple[Finding | None, str]:
        """What is wrong with one blob, if anything; a corrupt blob is quarantined on the spot."""
        if await self.blobs.verify(digest):
            return None, ""
        if await self.blobs.quarantine(digest):
            return Finding.CORRUPT, "content does not hash to its name; quarantined"
        return Finding.MISSING, "blob is missing"

    async def _refill(self, package: PackageId, version: Version, report: VerifyReport) -> None:
        subject = f"{package} {version}"
        record = await self.releases.release(package, version)
        entries = await self.ledger.lookup(package, version)
        if record is not None and record.resources() != {
            resource: entry.checksum for resource, entry in entries.items()
        }:
            # A record that contradicts the ledger is never served: replace it.
            await self.releases.drop_release(package, version)
        try:
            await self.filler.fill(package, version)
        except (ServiceError, UpstreamError, StorageError) as exc:
            report.refetch_failures.append(f"{subject}: {getattr(exc, 'detail', None) or exc}")
            return
        report.refetched.append(subject)


def _release(entry: LedgerEntry) -> Release | None:
    try:
        return PackageId.parse(entry.identity), Version.parse(entry.version)
    except (InvalidIdentity, InvalidVersion):
        return None


def _problem(entry: LedgerEntry, finding: Finding, detail: str) -> Problematic:
    return Problematic(
        finding, entry.identity, entry.version, entry.resource, entry.checksum, detail
    )
