"""`spm-proxy verify`: re-hash every stored blob against the ledger.

Corrupt blobs are quarantined (never served) and, where an upstream is
reachable, refetched; the refetch is itself checked against the ledger, so a
release can only come back with its recorded bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from cache.ledger import LedgerEntry
from proxy.problems import Problem
from proxy.pullthrough import SOURCE_ARCHIVE
from proxy.records import StoredRelease, release_key
from proxy.services import Services
from upstreams.model import PackageId, Version


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


async def _stored_release(services: Services, entry: LedgerEntry) -> StoredRelease | None:
    try:
        package = PackageId.parse(entry.identity)
        version = Version.parse(entry.version)
    except ValueError:
        return None
    data = await services.index.get(release_key(package, version))
    return StoredRelease.from_json(data) if data else None


async def _blob_verdict(services: Services, digest: str) -> tuple[Finding | None, str]:
    """What is wrong with one blob, if anything; a corrupt blob is quarantined on the spot."""
    if await services.blobs.verify(digest):
        return None, ""
    quarantined = await services.blobs.quarantine(digest)
    if quarantined is None:
        return Finding.MISSING, "blob file is missing"
    return Finding.CORRUPT, f"content does not hash to its name; quarantined to {quarantined}"


async def verify_cache(
    services: Services, *, refetch: bool, on_checked: Callable[[], object] | None = None
) -> VerifyReport:
    report = VerifyReport()
    verdicts: dict[str, tuple[Finding | None, str]] = {}
    damaged: dict[tuple[str, str], StoredRelease] = {}
    for entry in await services.ledger.entries():
        # Identical manifests of different versions share one blob: judge it once.
        if entry.checksum not in verdicts:
            verdicts[entry.checksum] = await _blob_verdict(services, entry.checksum)
            report.checked += 1
            if on_checked:
                on_checked()
        finding, detail = verdicts[entry.checksum]
        stored = await _stored_release(services, entry)
        if finding is None:
            expected = _record_checksum(stored, entry.resource)
            if expected not in (None, entry.checksum):
                report.problems.append(
                    _problem(
                        entry,
                        Finding.INCONSISTENT,
                        f"index record says {expected}, ledger says {entry.checksum}",
                    )
                )
            continue
        if stored is None and finding is Finding.MISSING:
            continue  # pruned on purpose: no index record claims it any more
        report.problems.append(_problem(entry, finding, detail))
        if stored is not None:
            damaged[(entry.identity, entry.version)] = stored
    if refetch:
        for stored in damaged.values():
            await _refetch(services, stored, report)
    return report


def _record_checksum(stored: StoredRelease | None, resource: str) -> str | None:
    if stored is None:
        return None
    if resource == SOURCE_ARCHIVE:
        return stored.archive_checksum
    manifest = stored.manifest(resource)
    return manifest.checksum if manifest else None


def _problem(entry: LedgerEntry, finding: Finding, detail: str) -> Problematic:
    return Problematic(
        finding, entry.identity, entry.version, entry.resource, entry.checksum, detail
    )


async def _refetch(services: Services, stored: StoredRelease, report: VerifyReport) -> None:
    subject = f"{stored.identity} {stored.version}"
    package = PackageId.parse(stored.identity)
    try:
        # Both re-fill from the upstream when the blob is gone, and check the
        # new bytes against the ledger before storing them.
        await services.pull_through.archive(package, stored.version)
        for manifest in stored.manifests:
            await services.pull_through.manifest(package, stored.version, manifest.filename)
    except Problem as exc:
        report.refetch_failures.append(f"{subject}: {exc.detail}")
        return
    report.refetched.append(subject)
