"""What a killed process leaves in a git upstream's directory, found and removed.

A fill killed in the middle leaves a scratch archive, a temporary pack that
was still being received (`tmp_pack_*`), a pack whose index was never written,
or a lock file of a ref, index or shallow update (`*.lock`, git's lock
protocol; see git's documentation of lockfiles); a mirror killed while being
created has no `HEAD` or no `config`.

Two ways to tell such leftovers from a live fill's files: `recover`, called
by the holder of a mirror's lock (`locking`), clears everything inside that
mirror at once, since every writer holds the lock; `sweep` removes what is
older than the fill deadline, which cannot belong to a live fill, also where
no fill ever comes again. Blocking: call from a worker thread.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from upstreams.disk import tree_size


def _older(path: Path, cutoff: float) -> bool:
    try:
        return path.lstat().st_mtime < cutoff
    except FileNotFoundError:
        return False


def _size(path: Path) -> int:
    try:
        return path.lstat().st_size
    except FileNotFoundError:
        return 0


def complete(mirror: Path) -> bool:
    """Whether `mirror` was created to the end (`config` is written after `HEAD`)."""
    return all(
        (
            (mirror / "HEAD").is_file(),
            (mirror / "config").is_file(),
            (mirror / "objects" / "pack").is_dir(),
            (mirror / "refs").is_dir(),
        )
    )


@dataclass
class Recovered:
    """What `recover` cleared in one mirror."""

    removed_mirror: bool = False
    locks: list[str] = field(default_factory=list)
    freed: int = 0


def _lock_files(mirror: Path) -> Iterator[Path]:
    yield from mirror.glob("*.lock")
    yield from (mirror / "refs").rglob("*.lock")
    yield from (mirror / "objects" / "pack").glob("*.lock")


def _dead_packs(mirror: Path) -> Iterator[Path]:
    packs = mirror / "objects" / "pack"
    yield from packs.glob("tmp_*")
    # The index is written after the pack: a pack without one was cut short.
    yield from (pack for pack in packs.glob("pack-*.pack") if not pack.with_suffix(".idx").exists())


def recover(mirror: Path) -> Recovered:
    """Clear what dead writers left in `mirror`; call holding the mirror's lock.

    A half-made mirror is removed whole (the caller creates it again); lock
    files and unfinished packs are removed, whatever their age.
    """
    found = Recovered()
    if not mirror.exists():
        return found
    if not complete(mirror):
        found.freed = tree_size(mirror)
        shutil.rmtree(mirror)
        found.removed_mirror = True
        return found
    for lock in list(_lock_files(mirror)):
        lock.unlink(missing_ok=True)
        found.locks.append(str(lock.relative_to(mirror)))
    for pack in list(_dead_packs(mirror)):
        found.freed += _size(pack)
        pack.unlink(missing_ok=True)
    return found


def _stale_files(root: Path) -> Iterator[Path]:
    scratch = root / "scratch"
    if scratch.is_dir():
        yield from scratch.iterdir()
    mirrors = root / "mirrors"
    if not mirrors.is_dir():
        return
    for mirror in mirrors.iterdir():
        yield from (mirror / "objects" / "pack").glob("tmp_*")
        yield from mirror.glob("*.lock")
        yield from (mirror / "refs").rglob("*.lock")


def _half_made(root: Path) -> Iterator[Path]:
    mirrors = root / "mirrors"
    if mirrors.is_dir():
        for mirror in mirrors.iterdir():
            if mirror.is_dir() and not complete(mirror):
                yield mirror


def sweep(root: Path, older_than: float, upstream: str) -> int:
    """Remove leftovers under a git upstream's `root`; return the bytes freed."""
    cutoff = time.time() - older_than
    log = structlog.get_logger().bind(upstream=upstream)
    freed = 0
    # Half-made mirrors first: removing a lock inside one would make it look young.
    for mirror in list(_half_made(root)):
        if _older(mirror, cutoff):
            shutil.rmtree(mirror, ignore_errors=True)
            log.warning("half_made_mirror_removed", mirror=mirror.name)
    for path in list(_stale_files(root)):
        if path.is_file() and _older(path, cutoff):
            size = _size(path)
            path.unlink(missing_ok=True)
            freed += size
            log.info("stale_leftover_removed", path=str(path.relative_to(root)), size=size)
    return freed
