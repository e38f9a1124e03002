"""Streaming a source archive to disk while hashing it, never whole in memory."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterable
from dataclasses import dataclass
from pathlib import Path

# Chunks are gathered up to this size before a write: one worker-thread hop
# per MiB instead of one per network read.
_WRITE_BATCH = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Written:
    sha256: str
    size: int


async def write_stream(chunks: AsyncIterable[bytes], path: Path) -> Written:
    """Write `chunks` to `path` (replacing it); returns the SHA-256 hex and size.

    File writes run in a worker thread, off the event loop. On failure the
    partial file is left for the caller, who knows whether to delete it.
    """
    digest = hashlib.sha256()
    size = 0
    pending: list[bytes] = []
    pending_size = 0
    handle = await asyncio.to_thread(path.open, "wb")
    try:
        async for chunk in chunks:
            digest.update(chunk)
            size += len(chunk)
            pending.append(chunk)
            pending_size += len(chunk)
            if pending_size >= _WRITE_BATCH:
                await asyncio.to_thread(handle.write, b"".join(pending))
                pending, pending_size = [], 0
        if pending:
            await asyncio.to_thread(handle.write, b"".join(pending))
    finally:
        await asyncio.to_thread(handle.close)
    return Written(digest.hexdigest(), size)
