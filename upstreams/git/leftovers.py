"""What a killed process leaves in a git upstream's directory, found and removed.

A fill killed in the middle leaves a scratch archive, a temporary pack that
was still being received (`tmp_pack_*`), or a lock file of a ref update
(`*.lock`, git's lock protocol; see git's documentation of lockfiles); a
mirror killed while being created has no `HEAD`. Anything older than the
fill deadline cannot belong to a live fill. Blocking: call from a worker thread.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import structlog


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
            if mirror.is_dir() and not (mirror / "HEAD").exists():
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
