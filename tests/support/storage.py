"""Real storage for tests: the embedded index in tmp_path, and archive sinks that are files."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

from cache.embedded.index import DiskcacheIndex
from cache.embedded.kv import JsonStore
from upstreams.base import Upstream
from upstreams.model import FetchedRelease, PackageId, Version


class FileSink:
    """An `ArchiveSink` that is a plain file, for reading archives back in tests."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._hash = hashlib.sha256()
        self._size = 0

    async def write(self, chunk: bytes) -> None:
        self._hash.update(chunk)
        self._size += len(chunk)
        await asyncio.to_thread(self._append, chunk)

    def _append(self, chunk: bytes) -> None:
        with self.path.open("ab") as handle:
            handle.write(chunk)

    async def write_file(self, path: Path) -> None:
        data = await asyncio.to_thread(path.read_bytes)
        await self.write(data)

    @property
    def digest(self) -> str:
        return self._hash.hexdigest()

    @property
    def size(self) -> int:
        return self._size


class Fetched:
    """A fetched release with the file its archive was written to."""

    def __init__(self, release: FetchedRelease, archive: Path) -> None:
        self.release = release
        self.archive = archive
        self.package = release.package
        self.version = release.version
        self.manifests = release.manifests
        self.metadata = release.metadata
        self.provenance = release.provenance
        self.upstream_checksum = release.upstream_checksum
        self.signing = release.signing
        self.published_at = release.published_at


async def fetch_to(
    upstream: Upstream, package: PackageId, version: Version, archive: Path
) -> Fetched:
    await asyncio.to_thread(archive.unlink, missing_ok=True)
    release = await upstream.fetch_release(package, version, FileSink(archive))
    return Fetched(release, archive)


@contextmanager
def embedded_index(directory: Path) -> Iterator[DiskcacheIndex]:
    store = JsonStore(directory)
    try:
        yield DiskcacheIndex(store)
    finally:
        store.close()


@asynccontextmanager
async def copied(source: Path, target: Path) -> AsyncIterator[Path]:
    await asyncio.to_thread(shutil.copytree, source, target)
    yield target
