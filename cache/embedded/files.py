"""Blobs as files under `root/sha256/ab/cd/<hex>`, written through `root/staging`.

Staging lives inside `root` so that committing is a same-filesystem rename:
a reader sees either no file or the complete one, never a partial write.
Several processes may share one root; two commits of the same content race
harmlessly because both renames carry identical bytes. Nothing is created
until something is written, so a read-only root still serves what it holds.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

import structlog

from cache.atomic import TEMPORARY_SUFFIX, fsync_dir, publish, storage_error
from cache.blobs import BlobInfo
from cache.digests import CHUNK_SIZE, sha256_bytes, sha256_file, validate_digest
from cache.embedded.file_writer import FileWriter

_T = TypeVar("_T")
_Signature = tuple[int, int, int, int]


def _signature(path: Path) -> _Signature:
    """Changes whenever the file is rewritten, replaced or modified in place."""
    status = path.stat()
    return (status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns)


class FileReader:
    def __init__(self, digest: str, size: int, path: Path) -> None:
        self._digest = digest
        self._size = size
        self._path = path

    @property
    def digest(self) -> str:
        return self._digest

    @property
    def size(self) -> int:
        return self._size

    @property
    def local_path(self) -> Path | None:
        return self._path

    async def chunks(self, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        stop = self._size if end is None else min(end, self._size)
        handle = await asyncio.to_thread(self._path.open, "rb")
        try:
            await asyncio.to_thread(handle.seek, start)
            position = start
            while position < stop:
                chunk = await asyncio.to_thread(handle.read, min(CHUNK_SIZE, stop - position))
                if not chunk:
                    return
                position += len(chunk)
                yield chunk
        finally:
            await asyncio.to_thread(handle.close)


class FilesystemBlobStore:
    def __init__(self, root: Path) -> None:
        self._root = root
        self._blobs = root / "sha256"
        self._staging = root / "staging"
        self._quarantine = root / "quarantine"
        self._log = structlog.get_logger().bind(blob_root=str(root))
        # digest -> stat signature of the file when its content last hashed
        # correctly. Serving checks one stat; only a changed file is re-hashed.
        self._verified: dict[str, _Signature] = {}
        # One verification per digest at a time: a burst of requests for a
        # just-filled release shares a single hash of the file.
        self._verifying: dict[str, asyncio.Task[bool]] = {}

    # -- writing --------------------------------------------------------------

    @asynccontextmanager
    async def writer(self) -> AsyncIterator[FileWriter]:
        writer = FileWriter(self._new_staging_file, self._move_into_place)
        try:
            yield writer
        finally:
            await writer.discard()

    async def put(self, data: bytes, expected: str | None = None) -> str:
        async with self.writer() as writer:
            await writer.write(data)
            return await writer.commit(expected)

    def _new_staging_file(self) -> Path:
        try:
            self._staging.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise storage_error(error, f"cannot write blobs under {self._root}") from error
        return self._staging / f"{uuid.uuid4().hex}{TEMPORARY_SUFFIX}"

    def _move_into_place(self, staged: Path, digest: str) -> bool:
        """Publish a complete, fsynced staged file as `digest`; False if already stored."""
        final = self._path_for(digest)
        if final.is_file():
            staged.unlink(missing_ok=True)
            return False
        self._ensure_shard(final.parent)
        publish(staged, final)
        # The content was hashed a moment ago: serving it needs no second pass.
        self._verified[digest] = _signature(final)
        return True

    def _ensure_shard(self, shard: Path) -> None:
        # Directories created here must be fsynced in their parents, or a crash can
        # lose the whole shard and with it a blob already reported as committed.
        for directory in (shard.parent.parent, shard.parent, shard):
            try:
                directory.mkdir()
            except FileExistsError:
                continue
            fsync_dir(directory.parent)

    # -- reading --------------------------------------------------------------

    async def open(self, digest: str, *, verify: bool = True) -> FileReader | None:
        path = self._path_for(digest)
        try:
            signature = await asyncio.to_thread(_signature, path)
        except FileNotFoundError:
            return None
        if verify and self._verified.get(digest) != signature:
            if not await self._shared_verification(digest):
                await self._quarantine_corrupt(digest)
                return None
            self._verified[digest] = signature
        return FileReader(digest, signature[1], path)

    async def _shared_verification(self, digest: str) -> bool:
        task = self._verifying.get(digest)
        if task is None:
            task = asyncio.ensure_future(self.verify(digest))
            self._verifying[digest] = task
            task.add_done_callback(lambda _: self._verifying.pop(digest, None))
        return await asyncio.shield(task)

    async def read(self, digest: str) -> bytes | None:
        path = self._path_for(digest)
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            return None
        if sha256_bytes(data) != digest:
            await self._quarantine_corrupt(digest)
            return None
        return data

    async def stat(self, digest: str) -> BlobInfo | None:
        path = self._path_for(digest)
        try:
            status = await asyncio.to_thread(path.stat)
        except FileNotFoundError:
            return None
        return BlobInfo(digest, status.st_size, status.st_mtime)

    def url_for(self, digest: str, expires: int) -> str | None:
        validate_digest(digest)
        return None  # local files are served by the proxy itself (sendfile)

    async def digests(self) -> AsyncIterator[BlobInfo]:
        for info in await asyncio.to_thread(self._list_blobs):
            yield info

    def _list_blobs(self) -> list[BlobInfo]:
        found = []
        for path in self._blobs.glob("*/*/*"):
            name = path.name
            if len(name) != 64 or path.parent.parent.parent != self._blobs:
                continue
            try:
                validate_digest(name)
                status = path.stat()
            except (ValueError, FileNotFoundError):
                continue
            found.append(BlobInfo(name, status.st_size, status.st_mtime))
        return found

    async def verify(self, digest: str) -> bool:
        path = self._path_for(digest)
        try:
            actual = await asyncio.to_thread(sha256_file, path)
        except FileNotFoundError:
            return False
        if actual != digest:
            self._log.warning("blob_corrupt", digest=digest, actual=actual)
            return False
        return True

    # -- removing -------------------------------------------------------------

    async def quarantine(self, digest: str) -> bool:
        source = self._path_for(digest)
        target = self._quarantine / f"{digest}.{uuid.uuid4().hex[:8]}"
        self._verified.pop(digest, None)
        try:
            await asyncio.to_thread(self._move_to_quarantine, source, target)
        except FileNotFoundError:
            return False
        self._log.warning("blob_quarantined", digest=digest, path=str(target))
        return True

    async def _quarantine_corrupt(self, digest: str) -> None:
        self._log.error("corrupt_blob_not_served", digest=digest)
        try:
            await self.quarantine(digest)
        except OSError as error:
            # A read-only store keeps the file; it is still never served.
            self._log.error("blob_quarantine_failed", digest=digest, reason=str(error))

    def _move_to_quarantine(self, source: Path, target: Path) -> None:
        self._quarantine.mkdir(exist_ok=True)
        source.replace(target)
        fsync_dir(source.parent)

    async def delete(self, digest: str) -> bool:
        path = self._path_for(digest)
        self._verified.pop(digest, None)
        deleted = await self._blocking(lambda: _unlink_durably(path), f"cannot delete {digest}")
        if deleted:
            self._log.info("blob_deleted", digest=digest)
        return deleted

    async def sweep(self, older_than: float, *, dry_run: bool = False) -> int:
        cutoff = time.time() - older_than
        return await self._blocking(
            lambda: _remove_older(self._staging, cutoff, dry_run=dry_run),
            f"cannot sweep {self._staging}",
        )

    async def purge_quarantine(self, *, dry_run: bool = False) -> int:
        return await self._blocking(
            lambda: _remove_older(self._quarantine, float("inf"), dry_run=dry_run),
            f"cannot purge {self._quarantine}",
        )

    # -- helpers --------------------------------------------------------------

    def _path_for(self, digest: str) -> Path:
        validate_digest(digest)
        return self._blobs / digest[:2] / digest[2:4] / digest

    @staticmethod
    async def _blocking(work: Callable[[], _T], what: str) -> _T:
        try:
            return await asyncio.to_thread(work)
        except OSError as error:
            raise storage_error(error, what) from error


def _unlink_durably(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    fsync_dir(path.parent)
    return True


def _remove_older(directory: Path, cutoff: float, *, dry_run: bool) -> int:
    freed = 0
    if not directory.is_dir():
        return 0
    for path in directory.iterdir():
        try:
            status = path.stat()
            if status.st_mtime < cutoff and path.is_file():
                if not dry_run:
                    path.unlink()
                freed += status.st_size
        except FileNotFoundError:
            continue
    return freed
