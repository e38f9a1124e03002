"""Content-addressed blob storage: the bytes of archives and manifests, named by SHA-256.

Every implementation passes `tests/contracts/blob_store.py`.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import os
import uuid
from pathlib import Path
from typing import Protocol

import structlog

from cache.digests import sha256_file, sha256_stream, validate_digest


class BlobStoreError(Exception):
    """Base class for blob store failures."""


class BlobDigestMismatch(BlobStoreError):
    """The staged content does not hash to the digest the caller expected."""

    def __init__(self, expected: str, actual: str) -> None:
        super().__init__(f"expected sha256 {expected}, content hashes to {actual}")
        self.expected = expected
        self.actual = actual


class BlobStore(Protocol):
    def staging_path(self) -> Path:
        """A fresh, unique path where the caller may write a file to commit later.

        The directory exists and is on the store's filesystem, so committing is a rename.
        """
        ...

    async def commit(self, staged: Path, expected: str | None = None) -> str:
        """Move a fully written staged file into the store; return its sha256 hex.

        Raises `BlobDigestMismatch` when `expected` is given and differs, and
        `ValueError` when `expected` is not a lowercase hex sha256. The staged file is
        consumed either way.
        """
        ...

    async def put_bytes(self, data: bytes) -> str:
        """Store a small payload (a manifest); return its sha256 hex."""
        ...

    async def read_bytes(self, digest: str) -> bytes | None:
        """The whole blob, or None when it is not stored or is corrupt (then quarantined)."""
        ...

    async def path_of(self, digest: str) -> Path | None:
        """A local path to serve the blob from (sendfile), or None when it is not stored.

        Never the path of a corrupt blob: content whose file changed since it was
        last verified is re-hashed first, and a corrupt blob is quarantined.
        """
        ...

    async def contains(self, digest: str) -> bool: ...

    async def delete(self, digest: str) -> None:
        """Remove a blob (quarantine, tests); a missing blob is not an error."""
        ...

    async def discard(self, staged: Path) -> None:
        """Remove a staged file that will not be committed; a missing file is fine."""
        ...

    async def quarantine(self, digest: str) -> Path | None:
        """Move a (corrupt) blob out of the store, keeping it for inspection."""
        ...

    async def verify(self, digest: str) -> bool:
        """Re-hash a stored blob: True when it is present and matches its name."""
        ...


class _Outcome(enum.Enum):
    COMMITTED = "committed"
    ALREADY_PRESENT = "already_present"


class FilesystemBlobStore:
    """Blobs as files under `root/sha256/ab/cd/<hex>`, staged under `root/staging`.

    Staging lives inside `root` so that committing is a same-filesystem `os.replace`:
    atomic, so a reader sees either no file or the complete one, never a partial write.
    Several processes may share one root; two commits of the same content race
    harmlessly because both renames carry identical bytes.
    """

    def __init__(self, root: Path) -> None:
        self._root = root
        self._blobs = root / "sha256"
        self._staging = root / "staging"
        self._quarantine = root / "quarantine"
        self._blobs.mkdir(parents=True, exist_ok=True)
        self._staging.mkdir(parents=True, exist_ok=True)
        self._log = structlog.get_logger().bind(blob_root=str(root))
        # digest -> stat signature of the file when its content last hashed
        # correctly. Serving checks one stat; only a changed file is re-hashed.
        self._verified: dict[str, _Signature] = {}
        # One verification per digest at a time: a burst of requests for a
        # just-filled release shares a single hash of the file.
        self._verifying: dict[str, asyncio.Task[bool]] = {}

    def staging_path(self) -> Path:
        return self._staging / f"{uuid.uuid4().hex}.partial"

    async def commit(self, staged: Path, expected: str | None = None) -> str:
        if expected is not None:
            try:
                validate_digest(expected)
            except ValueError:
                # The staged file is consumed on every outcome, so callers never
                # need a second cleanup path.
                await self.discard(staged)
                raise
        try:
            digest, outcome, size = await asyncio.to_thread(self._commit_sync, staged, expected)
        except BlobDigestMismatch as mismatch:
            self._log.warning(
                "blob_digest_mismatch", expected=mismatch.expected, actual=mismatch.actual
            )
            raise
        if outcome is _Outcome.COMMITTED:
            self._log.info("blob_committed", digest=digest, size=size)
        else:
            self._log.debug("blob_already_present", digest=digest, size=size)
        return digest

    async def put_bytes(self, data: bytes) -> str:
        staged = self.staging_path()
        await asyncio.to_thread(self._write_staged, staged, data)
        return await self.commit(staged, hashlib.sha256(data).hexdigest())

    async def read_bytes(self, digest: str) -> bytes | None:
        path = self._path_for(digest)
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            return None
        if hashlib.sha256(data).hexdigest() != digest:
            await self._quarantine_corrupt(digest)
            return None
        return data

    async def path_of(self, digest: str) -> Path | None:
        path = self._path_for(digest)
        try:
            signature = await asyncio.to_thread(_signature, path)
        except FileNotFoundError:
            return None
        if self._verified.get(digest) == signature:
            return path
        task = self._verifying.get(digest)
        if task is None:
            task = asyncio.ensure_future(self.verify(digest))
            self._verifying[digest] = task
            task.add_done_callback(lambda _: self._verifying.pop(digest, None))
        if not await asyncio.shield(task):
            await self._quarantine_corrupt(digest)
            return None
        self._verified[digest] = signature
        return path

    def location(self, digest: str) -> Path:
        """Where the blob lives on disk, present or not, without verifying it."""
        return self._path_for(digest)

    async def quarantine(self, digest: str) -> Path | None:
        source = self._path_for(digest)
        target = self._quarantine / f"{digest}.{uuid.uuid4().hex[:8]}"
        self._verified.pop(digest, None)
        try:
            await asyncio.to_thread(self._move_to_quarantine, source, target)
        except FileNotFoundError:
            return None
        self._log.warning("blob_quarantined", digest=digest, path=str(target))
        return target

    async def _quarantine_corrupt(self, digest: str) -> None:
        self._log.error("corrupt_blob_not_served", digest=digest)
        await self.quarantine(digest)

    def _move_to_quarantine(self, source: Path, target: Path) -> None:
        self._quarantine.mkdir(exist_ok=True)
        source.replace(target)
        _fsync_dir(source.parent)

    async def contains(self, digest: str) -> bool:
        return await self.path_of(digest) is not None

    async def delete(self, digest: str) -> None:
        path = self._path_for(digest)
        if await asyncio.to_thread(self._unlink_durably, path):
            self._log.info("blob_deleted", digest=digest)

    async def discard(self, staged: Path) -> None:
        await asyncio.to_thread(staged.unlink, missing_ok=True)

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

    def _path_for(self, digest: str) -> Path:
        validate_digest(digest)
        return self._blobs / digest[:2] / digest[2:4] / digest

    def _commit_sync(self, staged: Path, expected: str | None) -> tuple[str, _Outcome, int]:
        try:
            return self._move_into_place(staged, expected)
        finally:
            # After a successful rename there is nothing left to remove; on any
            # failure (mismatch, disk full) the staged file must not linger.
            staged.unlink(missing_ok=True)

    def _move_into_place(self, staged: Path, expected: str | None) -> tuple[str, _Outcome, int]:
        with staged.open("rb") as handle:
            digest = sha256_stream(handle)
            # fsync before the rename: otherwise a crash could leave the final name
            # pointing at a file whose data never reached the disk.
            os.fsync(handle.fileno())
            size = os.fstat(handle.fileno()).st_size
        if expected is not None and digest != expected:
            raise BlobDigestMismatch(expected, digest)
        final = self._path_for(digest)
        if final.is_file():
            return digest, _Outcome.ALREADY_PRESENT, size
        self._ensure_shard(final.parent)
        staged.replace(final)
        # The rename is only durable once the directory entry itself is on disk.
        _fsync_dir(final.parent)
        # The content was hashed a moment ago: serving it needs no second pass.
        self._verified[digest] = _signature(final)
        return digest, _Outcome.COMMITTED, size

    def _ensure_shard(self, shard: Path) -> None:
        # Directories created here must be fsynced in their parents, or a crash can
        # lose the whole shard and with it a blob already reported as committed.
        for directory in (shard.parent, shard):
            try:
                directory.mkdir()
            except FileExistsError:
                continue
            _fsync_dir(directory.parent)

    @staticmethod
    def _write_staged(staged: Path, data: bytes) -> None:
        staged.write_bytes(data)

    @staticmethod
    def _unlink_durably(path: Path) -> bool:
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        _fsync_dir(path.parent)
        return True


_Signature = tuple[int, int, int, int]


def _signature(path: Path) -> _Signature:
    """Changes whenever the file is rewritten, replaced or modified in place."""
    status = path.stat()
    return (status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
