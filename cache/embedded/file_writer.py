"""`FileWriter`: a blob on its way into the filesystem store.

Bytes are hashed as they arrive and written to a staging file created on the
first write, so a fill that fails before its first byte leaves nothing behind.
A whole local file is taken over by a hard link when it lives on the same file
system (no copy of a large archive), else copied while hashing.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, TypeVar

import structlog

from cache.atomic import storage_error
from cache.digests import CHUNK_SIZE, validate_digest
from cache.errors import BlobDigestMismatch

_T = TypeVar("_T")
# Chunks are gathered up to this size before a write: one worker-thread hop
# per MiB instead of one per network read.
_WRITE_BATCH = 1 << 20


class FileWriter:
    def __init__(self, new_file: Callable[[], Path], place: Callable[[Path, str], bool]) -> None:
        self._new_file = new_file
        self._place = place
        self._path: Path | None = None
        self._handle: BinaryIO | None = None
        self._hash = hashlib.sha256()
        self._size = 0
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._finished = False

    @property
    def digest(self) -> str:
        return self._hash.hexdigest()

    @property
    def size(self) -> int:
        return self._size

    async def write(self, chunk: bytes) -> None:
        self._check_open()
        self._hash.update(chunk)
        self._size += len(chunk)
        self._pending.append(chunk)
        self._pending_size += len(chunk)
        if self._pending_size >= _WRITE_BATCH:
            await self._flush()

    async def write_file(self, path: Path) -> None:
        self._check_open()
        await self._flush()
        await self._blocking(lambda: self._take_file(path))

    async def commit(self, expected: str | None = None) -> str:
        self._check_open()
        if expected is not None:
            validate_digest(expected)
        await self._flush()
        digest = self._hash.hexdigest()
        if expected is not None and digest != expected:
            structlog.get_logger().warning(
                "blob_digest_mismatch", expected=expected, actual=digest, size=self._size
            )
            await self.discard()
            raise BlobDigestMismatch(expected, digest)
        placed = await self._blocking(lambda: self._finish(digest))
        self._finished = True
        log = structlog.get_logger()
        if placed:
            log.info("blob_committed", digest=digest, size=self._size)
        else:
            log.debug("blob_already_present", digest=digest, size=self._size)
        return digest

    async def discard(self) -> None:
        """Drop whatever was written; safe to call more than once."""
        self._finished = True
        self._pending.clear()
        handle, path = self._handle, self._path
        self._handle = self._path = None
        if handle is not None or path is not None:
            await asyncio.to_thread(_close_and_remove, handle, path)

    # -- blocking parts ---------------------------------------------------------

    def _check_open(self) -> None:
        if self._finished:
            raise RuntimeError("this blob writer was already committed or discarded")

    async def _flush(self) -> None:
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        self._pending_size = 0
        await self._blocking(lambda: self._append(data))

    def _target(self) -> BinaryIO:
        if self._handle is None:
            if self._path is None:
                path = self._new_file()
                self._handle = path.open("xb")
                self._path = path
            else:
                self._handle = self._path.open("ab")
        return self._handle

    def _append(self, data: bytes) -> None:
        self._target().write(data)

    def _take_file(self, source: Path) -> None:
        if self._path is None:
            candidate = self._new_file()
            try:
                os.link(source, candidate)
            except OSError:
                pass  # another file system, or links not allowed: copy instead
            else:
                self._path = candidate
                self._hash_file(source)
                return
        with source.open("rb") as reader:
            target = self._target()
            while chunk := reader.read(CHUNK_SIZE):
                self._hash.update(chunk)
                self._size += len(chunk)
                target.write(chunk)

    def _hash_file(self, source: Path) -> None:
        with source.open("rb") as reader:
            while chunk := reader.read(CHUNK_SIZE):
                self._hash.update(chunk)
                self._size += len(chunk)

    def _finish(self, digest: str) -> bool:
        if self._handle is None and self._path is None:
            self._target()  # an empty blob is a real, empty file
        if self._handle is not None:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
            self._handle = None
        else:
            assert self._path is not None
            with self._path.open("rb") as linked:
                os.fsync(linked.fileno())
        assert self._path is not None
        staged, self._path = self._path, None
        try:
            return self._place(staged, digest)
        finally:
            staged.unlink(missing_ok=True)

    async def _blocking(self, work: Callable[[], _T]) -> _T:
        try:
            return await asyncio.to_thread(work)
        except OSError as error:
            raise storage_error(error, "cannot write a blob") from error


def _close_and_remove(handle: BinaryIO | None, path: Path | None) -> None:
    # Cleanup must never hide the failure that caused it: a partial file that
    # cannot be removed (the storage just went read-only) is left to `sweep`.
    try:
        if handle is not None:
            handle.close()
        if path is not None:
            path.unlink(missing_ok=True)
    except OSError as error:
        structlog.get_logger().warning(
            "partial_blob_left", path=str(path), reason=error.strerror or str(error)
        )
