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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog

from cache.blobs import BlobDigestMismatch, BlobStore
from cache.index import MetadataIndex
from cache.ledger import Ledger, LedgerEntry
from proxy.fills import FillGroup, FillTimeout
from proxy.problems import BadGateway, ChecksumMismatch, GatewayTimeout, NotFound, Problem
from proxy.protocol import format_timestamp
from proxy.records import (
    CacheStatus,
    StoredListing,
    StoredManifest,
    StoredRelease,
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
    UpstreamTimeout,
    UpstreamUnavailable,
)
from upstreams.model import FetchedRelease, PackageId, Version
from upstreams.routing import Router

SOURCE_ARCHIVE = "source-archive"


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
        blobs: BlobStore,
        index: MetadataIndex,
        ledger: Ledger,
        fills: FillGroup,
        list_ttl: float,
        negative_ttl: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._router = router
        self._blobs = blobs
        self._index = index
        self._ledger = ledger
        self._fills = fills
        self._list_ttl = list_ttl
        self._negative_ttl = negative_ttl
        self._clock = clock
        self._log = structlog.get_logger()

    # -- release lists -------------------------------------------------------

    async def release_list(self, package: PackageId) -> Listed:
        cached_json = await self._index.get(list_key(package))
        cached = StoredListing.from_json(cached_json) if cached_json else None
        if cached and self._clock() - cached.fetched_at < self._list_ttl:
            return Listed(cached, CacheStatus.HIT)
        missing = await self._index.get(missing_package_key(package))
        if missing and cached is None:
            raise NotFound(missing["detail"])
        try:
            fresh = await self._fills.run(list_key(package), lambda: self._refresh_list(package))
        except (UpstreamUnavailable, FillTimeout) as exc:
            if cached is None:
                raise self._problem_for(exc) from exc
            self._log.warning(
                "stale_list_served", package=str(package), reason=str(exc), age=self._age(cached)
            )
            return Listed(cached, CacheStatus.STALE)
        return Listed(fresh, CacheStatus.MISS)

    async def _refresh_list(self, package: PackageId) -> StoredListing:
        not_found: list[str] = []
        for upstream in self._router.candidates(package):
            try:
                listing = await upstream.list_releases(package)
            except PackageNotFound as exc:
                not_found.append(f"{upstream.name}: {exc.detail}")
                continue
            stored = StoredListing.from_listing(listing, upstream.name, self._clock())
            await self._index.set(list_key(package), stored.to_json())
            await self._index.delete(missing_package_key(package))
            self._log.info(
                "list_fetched",
                package=str(package),
                upstream=upstream.name,
                versions=len(stored.versions),
            )
            return stored
        detail = self._not_found_detail(package, not_found)
        await self._index.set(
            missing_package_key(package), {"detail": detail}, expire=self._negative_ttl
        )
        raise NotFound(detail)

    def _age(self, listing: StoredListing) -> int:
        return int(self._clock() - listing.fetched_at)

    # -- releases ------------------------------------------------------------

    async def release(self, package: PackageId, version: Version) -> Released:
        stored = await self._index.get(release_key(package, version))
        if stored:
            return Released(StoredRelease.from_json(stored), CacheStatus.HIT)
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
        not_found: list[str] = []
        for upstream in self._router.candidates(package):
            staged = self._blobs.staging_path()
            try:
                fetched = await upstream.fetch_release(package, version, staged)
            except (PackageNotFound, ReleaseNotFound) as exc:
                await self._blobs.discard(staged)
                not_found.append(f"{upstream.name}: {exc.detail}")
                continue
            except InvalidRelease as exc:
                await self._blobs.discard(staged)
                not_found.append(f"{upstream.name}: {exc.detail}")
                break
            except BaseException:
                await self._blobs.discard(staged)
                raise
            return await self._store(upstream, fetched)
        detail = self._not_found_detail(package, not_found, version)
        await self._index.set(
            missing_release_key(package, version), {"detail": detail}, expire=self._negative_ttl
        )
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
            # The registry's own publication time: when this release's bytes
            # were first recorded, stable across rebuilds.
            published_at=format_timestamp(first_archive_entry.recorded_at),
            upstream=upstream.name,
        )
        await self._index.set(release_key(fetched.package, fetched.version), release.to_json())
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
        found: dict[str, PackageId] = {}
        for upstream in self._router.upstreams:
            for package in await upstream.identities_for(url):
                found.setdefault(package.key, package)
        return sorted(found.values(), key=lambda package: package.key)

    # -- helpers -------------------------------------------------------------

    def _not_found_detail(
        self, package: PackageId, reasons: list[str], version: Version | None = None
    ) -> str:
        what = f"{package} {version}" if version else str(package)
        if not reasons:
            return f"no upstream is configured for the scope {package.scope!r} of {what}"
        return f"{what} was not found ({'; '.join(reasons)})"

    @staticmethod
    def _problem_for(error: UpstreamUnavailable | FillTimeout) -> Problem:
        if isinstance(error, FillTimeout):
            return GatewayTimeout(f"fetching from the upstream timed out: {error}")
        return _unavailable(error)
