"""JSON values under string keys in a diskcache store, on one dedicated thread.

diskcache's sqlite store is safe for several server processes sharing one
data directory. Values are stored as JSON text, never pickled, so nothing an
upstream sent can ever become code on the way back out.
"""

from __future__ import annotations

import asyncio
import functools
import json
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import diskcache

from cache.atomic import storage_error
from cache.errors import StorageReadOnly, StorageUnavailable

_T = TypeVar("_T")


def _encode(value: Any) -> str:
    # NaN/Infinity are refused: they are not JSON.
    return json.dumps(value, allow_nan=False, separators=(",", ":"))


class JsonStore:
    """diskcache keeps one sqlite connection per thread and `Cache.close()` only closes
    the calling thread's, so every call runs on one worker thread: that keeps the
    event loop free and lets `close()` release the connection for certain."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="metadata-index")
        # Opened on the worker thread at first use: opening creates files and tables.
        self._cache: Any = None

    async def get(self, key: str) -> Any | None:
        """The decoded value, or None when absent or expired."""
        raw = await self._run(self._get_sync, key)
        return None if raw is None else json.loads(raw)

    async def set(self, key: str, value: Any, *, expire: float | None = None) -> None:
        text = _encode(value)
        await self._run(lambda: self._open().set(key, text, expire=expire, retry=True))

    async def add(self, key: str, value: Any) -> Any:
        """Store `value` unless `key` holds one (atomically); return what is stored."""
        text = _encode(value)
        return json.loads(await self._run(self._add_sync, key, text))

    async def delete(self, key: str) -> None:
        await self._run(lambda: self._open().delete(key, retry=True))

    async def keys(self, prefix: str) -> list[str]:
        """Sorted live keys starting with `prefix`."""
        return await self._run(self._keys_sync, prefix)

    async def purge_expired(self) -> int:
        return await self._run(lambda: int(self._open().expire(retry=True)))

    def close(self) -> None:
        """Close the store; it cannot be used afterwards. Safe to call twice."""
        try:
            self._executor.submit(self._close_sync).result()
        except RuntimeError:
            return  # already shut down
        self._executor.shutdown(wait=True)

    async def _run(self, func: Callable[..., _T], *args: Any) -> _T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, functools.partial(func, *args))
        except OSError as error:
            raise storage_error(error, f"metadata index {self._directory}") from error
        except sqlite3.OperationalError as error:
            raise sqlite_error(error, f"metadata index {self._directory}") from error

    def _open(self) -> Any:
        if self._cache is None:
            # No culling: release records are what an offline proxy serves, and
            # must never vanish behind the operator's back because the index
            # reached diskcache's default 1 GB. Space is `spm-proxy gc`'s call.
            self._cache = diskcache.Cache(str(self._directory), eviction_policy="none")
        return self._cache

    def _get_sync(self, key: str) -> str | None:
        raw = self._open().get(key, default=None, retry=True)
        if raw is not None and not isinstance(raw, str):
            raise TypeError(f"metadata index entry {key!r} is not JSON text")
        return raw

    def _add_sync(self, key: str, text: str) -> str:
        cache = self._open()
        if cache.add(key, text, retry=True):
            return text
        stored = self._get_sync(key)
        # Deleted between the two calls: ours is as good as any.
        return text if stored is None else stored

    def _keys_sync(self, prefix: str) -> list[str]:
        cache = self._open()
        # iterkeys() also yields expired entries not yet culled; `in` honours expiry.
        return sorted(
            key
            for key in cache.iterkeys()
            if isinstance(key, str) and key.startswith(prefix) and key in cache
        )

    def _close_sync(self) -> None:
        if self._cache is not None:
            self._cache.close()
            self._cache = None


def sqlite_error(error: sqlite3.OperationalError, what: str) -> StorageUnavailable:
    text = str(error)
    if "readonly" in text or "read-only" in text:
        return StorageReadOnly(f"{what}: {text}")
    return StorageUnavailable(f"{what}: {text}")
