"""Removing what crashes leave behind, at start-up and then periodically.

A process killed in the middle of a fill or an import leaves partial blobs,
scratch files and, in the upstreams, temporary packs and stale locks. Nothing
younger than the fill deadline is touched: it may belong to a live fill.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path

import structlog

from cache.blobs import BlobStore
from cache.errors import StorageError
from upstreams.base import LocalCache


def _sweep_directory(directory: Path, cutoff: float) -> int:
    freed = 0
    if not directory.is_dir():
        return 0
    for path in sorted(directory.rglob("*"), reverse=True):  # files before their directories
        try:
            status = path.lstat()
            if status.st_mtime >= cutoff:
                continue
            if path.is_dir():
                path.rmdir()
            else:
                path.unlink()
                freed += status.st_size
        except OSError:
            continue  # in use, not empty, or gone meanwhile
    return freed


class Janitor:
    def __init__(
        self,
        *,
        blobs: BlobStore,
        caches: Sequence[LocalCache],
        scratch: Path,
        older_than: float,
    ) -> None:
        self._blobs = blobs
        self._caches = caches
        self._scratch = scratch
        self._older_than = older_than
        self._log = structlog.get_logger()

    async def sweep(self) -> int:
        """One round; returns the bytes freed."""
        freed = await self._blobs.sweep(self._older_than)
        cutoff = time.time() - self._older_than
        freed += await asyncio.to_thread(_sweep_directory, self._scratch, cutoff)
        for cache in self._caches:
            freed += await cache.sweep(self._older_than)
        if freed:
            self._log.info("leftovers_removed", size=freed)
        return freed

    async def run(self, interval: float) -> None:
        """Sweep now and every `interval` seconds until cancelled."""
        while True:
            try:
                await self.sweep()
            except (StorageError, OSError) as error:
                # A read-only or failing disk must not stop the server; it says so.
                self._log.error("leftovers_sweep_failed", reason=str(error))
            await asyncio.sleep(interval)
