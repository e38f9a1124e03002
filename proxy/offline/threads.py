"""Blocking bundle I/O in worker threads: progress back on the loop, stop on cancel."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import TypeVar

from proxy.offline.bundle_format import Progress

_T = TypeVar("_T")


def on_loop(progress: Callable[[int], object] | None) -> Progress | None:
    """Report progress from a worker thread on the event loop's thread."""
    if progress is None:
        return None
    loop = asyncio.get_running_loop()

    def report(count: int) -> None:
        loop.call_soon_threadsafe(progress, count)

    return report


async def in_thread(work: Callable[[threading.Event], _T]) -> _T:
    """Run blocking work in a worker thread that stops when the caller is cancelled.

    A cancelled `to_thread` call leaves its thread running; without the event an
    abandoned export would still finish and publish its file.
    """
    stop = threading.Event()
    try:
        return await asyncio.to_thread(work, stop)
    except asyncio.CancelledError:
        stop.set()
        raise
