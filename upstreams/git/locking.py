"""One writer per git mirror across processes: flock(2) on a lock file beside it.

Every process that writes a mirror (creating it, fetching into it, updating
its refs, removing it) holds this lock. The kernel releases it when its
holder exits, however it ends (`kill -9` included), so a held lock always
belongs to a live process, and whatever a writer left inside a mirror that
its new holder finds was left by a dead one. The lock file lives outside the
mirror (`locks/<mirror>.lock`), so removing a mirror keeps it.

Blocking: call from a worker thread.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def mirror_lock(mirror: Path, *, wait: bool = True) -> Iterator[bool]:
    """Hold the lock of `mirror`; yields False, without it, when `wait` is False
    and another process holds it."""
    locks = mirror.parent.parent / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    with (locks / f"{mirror.name}.lock").open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
