"""The one way spm-proxy makes a file appear: temporary file, fsync, rename, fsync the directory.

A reader sees the old file or the complete new one, never a partial write,
and a crash after `publish` returns cannot lose the new name. Blocking: call
from a worker thread.
"""

from __future__ import annotations

import errno
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from cache.errors import StorageReadOnly, StorageUnavailable

TEMPORARY_SUFFIX = ".partial"


def fsync_dir(directory: Path) -> None:
    """Make renames and unlinks inside `directory` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temporary_name(final: Path) -> Path:
    """A fresh hidden sibling of `final`, on the same file system so a rename is atomic."""
    return final.with_name(f".{final.name}.{uuid.uuid4().hex}{TEMPORARY_SUFFIX}")


def publish(temporary: Path, final: Path) -> None:
    """Rename a complete, fsynced `temporary` to `final` durably (replacing it)."""
    temporary.replace(final)
    fsync_dir(final.parent)


@contextmanager
def atomic_writer(final: Path) -> Iterator[BinaryIO]:
    """Write `final` through a temporary file that appears under its name only when
    the block ends without an error; on any error nothing is left behind."""
    temporary = temporary_name(final)
    try:
        with temporary.open("xb") as handle:
            yield handle
            handle.flush()
            # fsync before the rename: otherwise a crash could leave the final
            # name pointing at a file whose data never reached the disk.
            os.fsync(handle.fileno())
        publish(temporary, final)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_atomically(final: Path, data: bytes) -> None:
    with atomic_writer(final) as handle:
        handle.write(data)


def storage_error(error: OSError, what: str) -> StorageUnavailable:
    """The storage error an `OSError` stands for, naming what was being done."""
    reason = error.strerror or type(error).__name__
    if error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return StorageReadOnly(f"{what}: {reason}")
    return StorageUnavailable(f"{what}: {reason}")
