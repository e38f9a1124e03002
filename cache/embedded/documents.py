"""`FileDocuments`: small documents as files in one directory (HTTP revalidation copies).

Written through the one atomic writer, so a crash never leaves half a
document; a key that is not plain hex never becomes a file name.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

from cache.atomic import TEMPORARY_SUFFIX, storage_error, write_atomically

_HEX = frozenset("0123456789abcdef")


class FileDocuments:
    def __init__(self, directory: Path) -> None:
        self._directory = directory

    def _path(self, key: str) -> Path:
        if not key or len(key) > 128 or not set(key) <= _HEX:
            raise KeyError(key)
        return self._directory / f"{key}.json"

    async def get(self, key: str) -> bytes | None:
        try:
            return await asyncio.to_thread(self._path(key).read_bytes)
        except (OSError, KeyError):
            return None

    async def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        try:
            await asyncio.to_thread(self._write, path, data)
        except OSError as error:
            raise storage_error(error, f"cannot keep a document in {self._directory}") from error

    def _write(self, path: Path, data: bytes) -> None:
        self._directory.mkdir(parents=True, exist_ok=True)
        write_atomically(path, data)

    async def delete(self, key: str) -> None:
        with contextlib.suppress(KeyError):
            await asyncio.to_thread(self._path(key).unlink, missing_ok=True)

    async def keys(self) -> list[str]:
        return await asyncio.to_thread(self._keys)

    def _keys(self) -> list[str]:
        if not self._directory.is_dir():
            return []
        return sorted(path.stem for path in self._directory.glob("*.json"))

    async def size(self) -> int:
        return await asyncio.to_thread(self._size)

    def _size(self) -> int:
        total = 0
        for key in self._keys():
            with contextlib.suppress(OSError):
                total += self._path(key).stat().st_size
        return total

    async def sweep(self, older_than: float) -> int:
        return await asyncio.to_thread(self._sweep, time.time() - older_than)

    def _sweep(self, cutoff: float) -> int:
        freed = 0
        if not self._directory.is_dir():
            return 0
        for path in self._directory.glob(f".*{TEMPORARY_SUFFIX}"):
            with contextlib.suppress(OSError):
                status = path.stat()
                if status.st_mtime < cutoff:
                    path.unlink()
                    freed += status.st_size
        return freed

    async def clear(self) -> int:
        freed = 0
        for key in await self.keys():
            path = self._path(key)
            with contextlib.suppress(OSError):
                size = (await asyncio.to_thread(path.stat)).st_size
                await asyncio.to_thread(path.unlink)
                freed += size
        return freed
