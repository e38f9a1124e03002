"""`spm-proxy warm`: fill the cache with releases named by Package.resolved pins
or package specs, through the same pull-through service the server uses, so
everything warmed is verified against the ledger exactly as if a client had
asked for it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from cache.errors import StorageError
from proxy.offline.selection import (
    PackageSpec,
    Pin,
    RegistryPin,
    SkippedPin,
    SourceControlPin,
)
from proxy.protocol import swift_version_of
from proxy.service.errors import ServiceError
from proxy.service.registry import ManifestAnswer, Registry
from proxy.service.releases import CacheStatus
from upstreams.errors import UpstreamError
from upstreams.model import MANIFEST_NAME, PackageId, Version

# What a warm run reports per release: the domain's own failures, never HTTP classes.
FAILURES = (ServiceError, UpstreamError, StorageError)
Failure = ServiceError | UpstreamError | StorageError


class Outcome(StrEnum):
    FETCHED = "fetched"
    PRESENT = "present"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class WarmResult:
    subject: str
    outcome: Outcome
    reason: str = ""


@dataclass(slots=True)
class WarmReport:
    results: list[WarmResult] = field(default_factory=list)

    def count(self, outcome: Outcome) -> int:
        return sum(1 for result in self.results if result.outcome is outcome)

    @property
    def ok(self) -> bool:
        return self.count(Outcome.FAILED) == 0

    def summary(self) -> str:
        return (
            f"warm: {self.count(Outcome.FETCHED)} fetched, "
            f"{self.count(Outcome.PRESENT)} already present, "
            f"{self.count(Outcome.FAILED)} failed, {self.count(Outcome.SKIPPED)} skipped"
        )


Target = tuple[PackageId, Version]


def _reason(error: Failure) -> str:
    return error.detail if isinstance(error, ServiceError | UpstreamError) else str(error)


class Warmer:
    def __init__(
        self, service: Registry, *, jobs: int, on_done: Callable[[WarmResult], None]
    ) -> None:
        self._service = service
        self._jobs = asyncio.Semaphore(jobs)
        self._on_done = on_done
        self._report = WarmReport()

    def _record(self, result: WarmResult) -> None:
        self._report.results.append(result)
        self._on_done(result)

    async def targets(self, pins: Sequence[Pin], specs: Sequence[PackageSpec]) -> list[Target]:
        """Releases to warm, in a stable order; unusable inputs are reported."""
        targets: dict[str, Target] = {}
        for pin in pins:
            if isinstance(pin, SkippedPin):
                self._record(WarmResult(pin.name, Outcome.SKIPPED, pin.reason))
            elif isinstance(pin, RegistryPin):
                targets.setdefault(f"{pin.package.key}@{pin.version}", (pin.package, pin.version))
            else:
                target = await self._identity_of(pin)
                if target is not None:
                    targets.setdefault(f"{target[0].key}@{target[1]}", target)
        for spec in specs:
            for version in await self._versions_of(spec):
                targets.setdefault(f"{spec.package.key}@{version}", (spec.package, version))
        return list(targets.values())

    async def _identity_of(self, pin: SourceControlPin) -> Target | None:
        # The mapping `/identifiers` gives SwiftPM for --replace-scm-with-registry;
        # SwiftPM picks the lexicographically smallest identity.
        found = (await self._service.identifiers(pin.url)).identities
        if not found:
            self._record(
                WarmResult(
                    pin.url, Outcome.FAILED, "no upstream maps this URL to a registry identity"
                )
            )
            return None
        return (found[0], pin.version)

    async def _versions_of(self, spec: PackageSpec) -> list[Version]:
        try:
            listing = (await self._service.release_list(spec.package)).release_list
        except FAILURES as exc:
            self._record(WarmResult(str(spec.package), Outcome.FAILED, _reason(exc)))
            return []
        available = [v for v in listing.versions if str(v) not in listing.problems]
        chosen = [v for v in available if spec.versions.contains(v)]
        if spec.versions.latest_only:
            chosen = [max(available)] if available else []
        if not chosen:
            self._record(
                WarmResult(
                    str(spec.package), Outcome.FAILED, "no release matches the requested versions"
                )
            )
        return sorted(chosen)

    async def warm(self, targets: Sequence[Target]) -> WarmReport:
        packages = {package.key: package for package, _ in targets}
        await asyncio.gather(
            *(self._warm_list(package) for package in packages.values()),
            *(self._warm_release(package, version) for package, version in targets),
        )
        return self._report

    async def _warm_list(self, package: PackageId) -> None:
        # An offline proxy answers resolution from the cached list.
        async with self._jobs:
            try:
                await self._service.release_list(package)
            except FAILURES as exc:
                self._record(WarmResult(f"{package} (release list)", Outcome.FAILED, _reason(exc)))

    async def _warm_release(self, package: PackageId, version: Version) -> None:
        subject = f"{package} {version}"
        async with self._jobs:
            try:
                released = await self._service.release(package, version)
                archived = await self._service.archive(package, version)
                statuses = {released.status, archived.status}
                for manifest in archived.record.manifests:
                    wanted = None
                    if manifest.filename != MANIFEST_NAME:
                        wanted = swift_version_of(manifest.filename)
                    answer = await self._service.manifest(package, version, wanted)
                    if isinstance(answer, ManifestAnswer):
                        statuses.add(answer.status)
            except FAILURES as exc:
                self._record(WarmResult(subject, Outcome.FAILED, _reason(exc)))
                return
        outcome = Outcome.PRESENT if statuses == {CacheStatus.HIT} else Outcome.FETCHED
        self._record(WarmResult(subject, outcome))
