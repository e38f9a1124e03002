"""The registry facade: one method per endpoint, each returning what the handler renders.

Handlers parse, make one call here, and render; every decision (cache or
upstream, which manifest, which neighbours) is made below this line.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from cache.blobs import BlobReader, BlobStore
from cache.index import ManifestRecord, ReleaseList, ReleaseRecord
from proxy import protocol
from proxy.service.errors import ContentUnavailable, NotFound
from proxy.service.identifiers import Identified, IdentifierResolver
from proxy.service.lists import Listed, ReleaseLists
from proxy.service.releases import CacheStatus, Found, ReleaseLookup
from upstreams.model import MANIFEST_NAME, PackageId, Version


@dataclass(frozen=True, slots=True)
class Neighbours:
    latest: Version
    predecessor: Version | None
    successor: Version | None


@dataclass(frozen=True, slots=True)
class MetadataAnswer:
    record: ReleaseRecord
    status: CacheStatus
    # From the cached list only: metadata never waits on a list refresh.
    neighbours: Neighbours | None


@dataclass(frozen=True, slots=True)
class ManifestAnswer:
    record: ReleaseRecord
    status: CacheStatus
    filename: str
    content: bytes

    @property
    def alternates(self) -> list[ManifestRecord]:
        """Version-specific manifests, advertised on the unqualified one (SE-0292 4.3)."""
        return [m for m in self.record.manifests if m.filename != MANIFEST_NAME and m.tools_version]


@dataclass(frozen=True, slots=True)
class UseUnqualifiedManifest:
    """No manifest for the requested Swift version: the unqualified one answers (a 303)."""

    record: ReleaseRecord


@dataclass(frozen=True, slots=True)
class ArchiveAnswer:
    record: ReleaseRecord
    status: CacheStatus
    blob: BlobReader


class Registry:
    def __init__(
        self,
        *,
        lists: ReleaseLists,
        releases: ReleaseLookup,
        blobs: BlobStore,
        identifiers: IdentifierResolver,
    ) -> None:
        self._lists = lists
        self._releases = releases
        self._blobs = blobs
        self._identifiers = identifiers
        self._log = structlog.get_logger()

    async def release_list(self, package: PackageId) -> Listed:
        return await self._lists.get(package)

    async def release(self, package: PackageId, version: Version) -> Found:
        return await self._releases.get(package, version)

    async def metadata(self, package: PackageId, version: Version) -> MetadataAnswer:
        found = await self._releases.get(package, version)
        cached = await self._lists.cached(package)
        status = found.status
        if cached is not None and str(version) in cached.vanished:
            # Served from what the proxy holds; the upstream no longer has it.
            status = CacheStatus.HELD
        return MetadataAnswer(found.record, status, _neighbours(cached, version))

    async def manifest(
        self, package: PackageId, version: Version, swift_version: str | None
    ) -> ManifestAnswer | UseUnqualifiedManifest:
        found = await self._releases.get(package, version)
        filename = MANIFEST_NAME
        if swift_version is not None:
            choices = [
                protocol.ManifestChoice(m.filename, m.tools_version) for m in found.record.manifests
            ]
            chosen = protocol.select_manifest(choices, swift_version)
            if chosen is None:
                return UseUnqualifiedManifest(found.record)
            filename = chosen
        entry = found.record.manifest(filename)
        if entry is None:
            raise NotFound(f"{package} {version} has no {filename}")
        content = await self._blobs.read(entry.checksum)
        if content is None:
            found = await self._lost(found, entry.checksum)
            content = await self._blobs.read(entry.checksum)
            if content is None:
                raise ContentUnavailable(f"{filename} of {package} {version} could not be stored")
        return ManifestAnswer(found.record, found.status, filename, content)

    async def archive(self, package: PackageId, version: Version) -> ArchiveAnswer:
        found = await self._releases.get(package, version)
        blob = await self._blobs.open(found.record.archive_checksum)
        if blob is None:
            found = await self._lost(found, found.record.archive_checksum)
            blob = await self._blobs.open(found.record.archive_checksum)
            if blob is None:
                raise ContentUnavailable(f"the archive of {package} {version} could not be stored")
        return ArchiveAnswer(found.record, found.status, blob)

    async def identifiers(self, url: str) -> Identified:
        return await self._identifiers.resolve(url)

    async def _lost(self, found: Found, checksum: str) -> Found:
        record = found.record
        self._log.warning(
            "blob_missing",
            package=str(record.package),
            version=str(record.version),
            checksum=checksum,
        )
        return await self._releases.refill(record.package, record.version)


def _neighbours(release_list: ReleaseList | None, version: Version) -> Neighbours | None:
    if release_list is None or not release_list.versions:
        return None
    latest, predecessor, successor = protocol.neighbours(release_list.versions, version)
    return Neighbours(latest, predecessor, successor)
