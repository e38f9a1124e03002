"""The pull-through service: the one place that decides cache versus upstream.

Lists: fresh cache hit, else a coalesced refresh; on a transient upstream
failure the stale list is served rather than failing a build. Releases: cache
hit, else one coalesced fill that fetches from the first upstream that knows
the release, checks every resource against the ledger, stores the blobs and
only then records the release.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar

import structlog

from cache.blobs import BlobDigestMismatch, BlobStore
from cache.index import MetadataIndex
from cache.ledger import Ledger, LedgerEntry
from proxy.fills import FillGroup, FillTimeout
from proxy.memo import Memo
from proxy.policy import UpstreamGuard, UpstreamPolicy
from proxy.problems import (
    BadGateway,
    ChecksumMismatch,
    GatewayTimeout,
    NotFound,
    Problem,
    ServiceUnavailable,
)
from proxy.protocol import format_timestamp
from proxy.records import (
    CacheStatus,
    StoredListing,
    StoredManifest,
    StoredRelease,
    identifiers_key,
    list_key,
    missing_package_key,
    missing_release_key,
    release_key,
)
from upstreams.base import Upstream
from upstreams.errors import (
    InvalidRelease,
    PackageNotFound,
    ReleaseNotFound,
    UpstreamError,
    UpstreamOffline,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from upstreams.locations import canonical_location
from upstreams.model import FetchedRelease, PackageId, Version
from upstreams.routing import Router

SOURCE_ARCHIVE = "source-archive"
MEMO_CAPACITY = 4096
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Listed:
    listing: StoredListing
    status: CacheStatus


@dataclass(frozen=True, slots=True)
class Released:
    release: StoredRelease
    status: CacheStatus


def _unavailable(error: UpstreamError) -> Problem:
    detail = f"upstream {error.upstream!r} failed: {error.detail}"
    if isinstance(error, UpstreamTimeout):
        return GatewayTimeout(detail, upstream=error.upstream)
    return BadGateway(detail, upstream=error.upstream)


class PullThrough:
    def __init__(
        self,
        *,
        router: Router,
        guards: Mapping[str, UpstreamGuard],
        blobs: BlobStore,
        index: MetadataIndex,
        ledger: Ledger,
        fills: FillGroup,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._router = router
        self._guards = guards
        self._blobs = blobs
        self._index = index
        self._ledger = ledger
        self._fills = fills
        self._clock = clock
        self._log = structlog.get_logger()
        # Process-local copies that spare the index a read per request. Release
        # records never change once stored; a list copy is only used while it is
        # fresh by its own fetched_at, so the configured TTL still bounds staleness.
        self._releases: Memo[str, StoredRelease] = Memo(MEMO_CAPACITY)
        self._lists: Memo[str, StoredListing] = Memo(MEMO_CAPACITY)

    async def _call(self, upstream: Upstream, operation: Callable[[], Awaitable[T]]) -> T:
        """Run one upstream operation under its policy guard.

        "Not found" is an answer, so it counts as the upstream working.
        """
        guard = self._guards[upstream.name]
        guard.admit()
        try:
            result = await operation()
        except (PackageNotFound, ReleaseNotFound, InvalidRelease):
            guard.succeeded()
            raise
        except UpstreamUnavailable:
            guard.failed()
            raise
        guard.succeeded()
        return result

    def _policy(self, upstream: str | None) -> UpstreamPolicy:
        guard = self._guards.get(upstream or "")
        if guard is None:
            # Lists recorded by an upstream that is no longer configured.
            guard = next(iter(self._guards.values()))
        return guard.policy

    def _candidates(self, package: PackageId) -> list[Upstream]:
        candidates = self._router.candidates(package)
        if not candidates:
            raise self._nobody_to_ask(package)
        return candidates

    def _nobody_to_ask(self, package: PackageId) -> NotFound:
        route = self._router.route_for(package)
        if route is not None and route.private:
            return NotFound(
                f"{package} is not available: the scope {package.scope!r} is private to "
                "this proxy and is never fetched from an upstream"
            )
        return NotFound(f"no upstream is configured for the scope {package.scope!r}")

    # -- release lists -------------------------------------------------------

    def _fresh(self, listing: StoredListing) -> bool:
        return self._age(listing) < self._policy(listing.upstream).list_ttl

    async def release_list(self, package: PackageId) -> Listed:
        key = list_key(package)
        remembered = self._lists.get(key)
        if remembered and self._fresh(remembered):
            return Listed(remembered, CacheStatus.HIT)
        cached_json = await self._index.get(key)
        cached = StoredListing.from_json(cached_json) if cached_json else None
        if cached and self._fresh(cached):
            self._lists.put(key, cached)
            return Listed(cached, CacheStatus.HIT)
        candidates = self._router.candidates(package)
        if not candidates:
            # Nobody may be asked (a private scope, filled by `import`): the
            # proxy's own copy is the authority, however old.
            if cached:
                return Listed(cached, CacheStatus.HIT)
            raise self._nobody_to_ask(package)
        missing = await self._index.get(missing_package_key(package))
        if missing and cached is None:
            raise NotFound(missing["detail"])
        try:
            fresh = await self._fills.run(
                list_key(package), lambda: self._refresh_list(package, candidates)
            )
        except (UpstreamUnavailable, FillTimeout) as exc:
            failed = exc.upstream if isinstance(exc, UpstreamUnavailable) else None
            if cached is None or not self._policy(failed or cached.upstream).serves_stale:
                raise self._problem_for(exc) from exc
            self._log.warning(
                "stale_list_served", package=str(package), reason=str(exc), age=self._age(cached)
            )
            return Listed(cached, CacheStatus.STALE)
        return Listed(fresh, CacheStatus.MISS)

    async def _refresh_list(self, package: PackageId, candidates: list[Upstream]) -> StoredListing:
        not_found: list[str] = []
        for upstream in candidates:
            try:
                listing = await self._call(upstream, partial(upstream.list_releases, package))
            except PackageNotFound as exc:
                not_found.append(exc.detail)
                continue
            stored = StoredListing.from_listing(listing, upstream.name, self._clock())
            await self._index.set(list_key(package), stored.to_json())
            self._lists.put(list_key(package), stored)
            await self._index.delete(missing_package_key(package))
            self._log.info(
                "list_fetched",
                package=str(package),
                upstream=upstream.name,
                versions=len(stored.versions),
            )
            return stored
        detail = self._not_found_detail(package, not_found)
        await self._remember_missing(missing_package_key(package), detail, candidates)
        raise NotFound(detail)

    async def _remember_missing(self, key: str, detail: str, candidates: list[Upstream]) -> None:
        ttl = min((self._policy(u.name).negative_ttl for u in candidates), default=0)
        if ttl > 0:
            await self._index.set(key, {"detail": detail}, expire=ttl)

    def _age(self, listing: StoredListing) -> int:
        return int(self._clock() - listing.fetched_at)

    # -- releases ------------------------------------------------------------

    async def release(self, package: PackageId, version: Version) -> Released:
        key = release_key(package, version)
        remembered = self._releases.get(key)
        if remembered:
            return Released(remembered, CacheStatus.HIT)
        stored = await self._index.get(key)
        if stored:
            record = StoredRelease.from_json(stored)
            self._releases.put(key, record)
            return Released(record, CacheStatus.HIT)
        missing = await self._index.get(missing_release_key(package, version))
        if missing:
            raise NotFound(missing["detail"])
        return Released(await self._fill(package, version), CacheStatus.MISS)

    async def archive(self, package: PackageId, version: Version) -> tuple[Released, Path]:
        """The release and the local path of its archive, rebuilding a lost blob."""
        released = await self.release(package, version)
        path = await self._blobs.path_of(released.release.archive_checksum)
        if path is None:
            self._log.warning(
                "blob_missing",
                package=str(package),
                version=str(version),
                checksum=released.release.archive_checksum,
            )
            released = Released(await self._fill(package, version), CacheStatus.MISS)
            path = await self._blobs.path_of(released.release.archive_checksum)
            if path is None:
                raise BadGateway(f"the archive of {package} {version} could not be stored")
        return released, path

    async def manifest(
        self, package: PackageId, version: Version, filename: str
    ) -> tuple[Released, bytes]:
        released = await self.release(package, version)
        entry = released.release.manifest(filename)
        if entry is None:
            raise NotFound(f"{package} {version} has no {filename}")
        content = await self._blobs.read_bytes(entry.checksum)
        if content is None:
            released = Released(await self._fill(package, version), CacheStatus.MISS)
            content = await self._blobs.read_bytes(entry.checksum)
            if content is None:
                raise BadGateway(f"{filename} of {package} {version} could not be stored")
        return released, content

    async def _fill(self, package: PackageId, version: Version) -> StoredRelease:
        try:
            return await self._fills.run(
                release_key(package, version), lambda: self._fetch_release(package, version)
            )
        except (UpstreamUnavailable, FillTimeout) as exc:
            raise self._problem_for(exc) from exc

    async def _fetch_release(self, package: PackageId, version: Version) -> StoredRelease:
        candidates = self._candidates(package)
        not_found: list[str] = []
        for upstream in candidates:
            staged = self._blobs.staging_path()
            try:
                fetched = await self._call(
                    upstream, partial(upstream.fetch_release, package, version, staged)
                )
            except (PackageNotFound, ReleaseNotFound) as exc:
                await self._blobs.discard(staged)
                not_found.append(exc.detail)
                continue
            except InvalidRelease as exc:
                await self._blobs.discard(staged)
                not_found.append(exc.detail)
                break
            except BaseException:
                await self._blobs.discard(staged)
                raise
            return await self._store(upstream, fetched)
        detail = self._not_found_detail(package, not_found, version)
        await self._remember_missing(missing_release_key(package, version), detail, candidates)
        raise NotFound(detail)

    async def _store(self, upstream: Upstream, fetched: FetchedRelease) -> StoredRelease:
        """Verify every resource against the ledger, then store blobs and the record.

        Nothing that disagrees with the ledger is stored: the archive is
        committed with the recorded checksum as its expected digest, so a
        mismatching file is deleted before it becomes visible.
        """
        identity, version = fetched.package.key, str(fetched.version)
        recorded = await self._ledger.lookup(identity, version, SOURCE_ARCHIVE)
        expected = recorded.checksum if recorded else fetched.upstream_checksum
        if recorded and fetched.upstream_checksum not in (None, recorded.checksum):
            await self._blobs.discard(fetched.archive)
            raise self._mismatch(
                fetched, SOURCE_ARCHIVE, recorded.checksum, fetched.upstream_checksum or ""
            )
        try:
            archive_checksum = await self._blobs.commit(fetched.archive, expected)
        except BlobDigestMismatch as exc:
            if recorded:
                raise self._mismatch(fetched, SOURCE_ARCHIVE, exc.expected, exc.actual) from exc
            raise BadGateway(
                f"the archive of {fetched.package} {version} from upstream {upstream.name!r} "
                f"has checksum {exc.actual}, but the upstream announced {exc.expected}",
                upstream=upstream.name,
            ) from exc

        manifests: list[StoredManifest] = []
        for manifest in fetched.manifests:
            checksum = hashlib.sha256(manifest.content).hexdigest()
            prior = await self._ledger.lookup(identity, version, manifest.filename)
            if prior and prior.checksum != checksum:
                raise self._mismatch(fetched, manifest.filename, prior.checksum, checksum)
            await self._blobs.put_bytes(manifest.content)
            manifests.append(StoredManifest(manifest.filename, checksum, manifest.tools_version))

        now = int(self._clock())
        resources = [(SOURCE_ARCHIVE, archive_checksum)] + [
            (m.filename, m.checksum) for m in manifests
        ]
        first_archive_entry: LedgerEntry | None = None
        for resource, checksum in resources:
            entry = await self._ledger.record(
                LedgerEntry(
                    identity=identity,
                    version=version,
                    resource=resource,
                    checksum=checksum,
                    upstream=fetched.provenance.upstream,
                    url=fetched.provenance.url,
                    commit=fetched.provenance.commit,
                    recorded_at=now,
                )
            )
            # Another process may have recorded a different checksum meanwhile.
            if entry.checksum != checksum:
                raise self._mismatch(fetched, resource, entry.checksum, checksum)
            if resource == SOURCE_ARCHIVE:
                first_archive_entry = entry
        assert first_archive_entry is not None

        release = StoredRelease(
            identity=str(fetched.package),
            version=fetched.version,
            archive_checksum=archive_checksum,
            manifests=tuple(manifests),
            metadata=fetched.metadata,
            # An upstream registry's own publication time, else when this
            # release's bytes were first recorded (stable across rebuilds).
            published_at=fetched.published_at or format_timestamp(first_archive_entry.recorded_at),
            upstream=upstream.name,
            signing=fetched.signing,
        )
        key = release_key(fetched.package, fetched.version)
        await self._index.set(key, release.to_json())
        self._releases.put(key, release)
        self._log.info(
            "release_stored",
            package=str(fetched.package),
            version=version,
            upstream=upstream.name,
            checksum=archive_checksum,
            commit=fetched.provenance.commit,
        )
        return release

    def _mismatch(
        self, fetched: FetchedRelease, resource: str, recorded: str, actual: str
    ) -> ChecksumMismatch:
        self._log.error(
            "checksum_mismatch",
            package=str(fetched.package),
            version=str(fetched.version),
            resource=resource,
            recorded=recorded,
            actual=actual,
            upstream=fetched.provenance.upstream,
            url=fetched.provenance.url,
            commit=fetched.provenance.commit,
        )
        return ChecksumMismatch(
            package=str(fetched.package),
            version=str(fetched.version),
            resource=resource,
            recorded=recorded,
            actual=actual,
        )

    # -- identifiers ---------------------------------------------------------

    async def identities(self, url: str) -> list[PackageId]:
        """Identities for a repository URL from every upstream, git and registry.

        Answers are kept per canonical location, so `/identifiers` still works
        for known URLs while upstreams are offline or failing.
        """
        key = identifiers_key(canonical_location(url))
        found: dict[str, PackageId] = {}
        failed = False
        for upstream in self._router.upstreams:
            try:
                answer = await self._call(upstream, partial(upstream.identities_for, url))
            except UpstreamUnavailable as exc:
                failed = True
                if not isinstance(exc, UpstreamOffline):
                    self._log.warning(
                        "identifiers_lookup_failed", upstream=upstream.name, reason=exc.detail
                    )
                continue
            for package in answer:
                found.setdefault(package.key, package)
        if failed and not found:
            cached = await self._index.get(key)
            return [PackageId.parse(identity) for identity in cached or []]
        if found:
            await self._index.set(key, [str(package) for package in found.values()])
        return sorted(found.values(), key=lambda package: package.key)

    # -- helpers -------------------------------------------------------------

    def _not_found_detail(
        self, package: PackageId, reasons: list[str], version: Version | None = None
    ) -> str:
        what = f"{package} {version}" if version else str(package)
        return f"{what} was not found ({'; '.join(reasons)})"

    @staticmethod
    def _problem_for(error: UpstreamUnavailable | FillTimeout) -> Problem:
        if isinstance(error, FillTimeout):
            return GatewayTimeout(f"fetching from the upstream timed out: {error}")
        if isinstance(error, UpstreamOffline):
            return ServiceUnavailable(f"not cached, and {error.detail}", upstream=error.upstream)
        return _unavailable(error)
