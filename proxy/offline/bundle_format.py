"""The bundle container: a deterministic tar, a table of contents and a SHA-256 trailer.

Layout of a bundle file:

    <tar, PAX format>  toc.json, then every other entry sorted by name
    \\nSPM-PROXY-BUNDLE-SHA256 <64 hex>\\n   (hash of every byte before it)

Every tar header is exactly what `entry_header(name, size)` produces (mtime 0,
uid/gid 0, empty owner names, mode 0644, regular file), entries are padded with
zeros to 512 bytes and the archive ends with two zero blocks padded to a
10 KiB record, as tarfile writes it. Because the encoding is fully
determined by names, sizes and contents, the reader rebuilds every header and
padding run and compares them byte for byte: a damaged byte is reported at the
entry it belongs to, and the trailer hash catches whatever lies outside them.

This module is the format both sides share; `bundle_writer` and `bundle_reader`
do the blocking I/O. None of them knows about releases or the cache.
"""

from __future__ import annotations

import json
import re
import tarfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

FORMAT = "spm-proxy-bundle"
FORMAT_VERSION = 1
TOC_NAME = "toc.json"
BLOB_PREFIX = "blobs/"

_TRAILER_TAG = b"SPM-PROXY-BUNDLE-SHA256"
_TRAILER = re.compile(rb"\n" + _TRAILER_TAG + rb" ([0-9a-f]{64})\n")
TRAILER_SIZE = len(_TRAILER_TAG) + 67  # "\n" + tag + " " + 64 hex + "\n"

BLOCK = tarfile.BLOCKSIZE
_RECORD = tarfile.RECORDSIZE
CHUNK = 1 << 20
# JSON entries are held in memory; a bundle claiming more is refused rather
# than allowed to exhaust memory. Far above any real ledger or table of contents.
MAX_DOCUMENT_SIZE = 256 << 20
# Progress is reported in batches: one callback per header would swamp the loop.
_PROGRESS_BATCH = 1 << 20

Progress = Callable[[int], None]


class BundleError(Exception):
    """A bundle that cannot be written or must not be imported.

    The message names the bundle entry concerned (`bundle entry <path>: ...`)
    or the container region (`bundle container: ...`); when exporting, the
    release whose data is missing or inconsistent.
    """


class CorruptBlobError(BundleError):
    """A cached blob whose content does not hash to its name (found while exporting)."""

    def __init__(self, digest: str, actual: str) -> None:
        super().__init__(
            f"bundle entry {BLOB_PREFIX}{digest}: the cached blob is corrupt "
            f"(content hashes to {actual})"
        )
        self.digest = digest
        self.actual = actual


@dataclass(frozen=True, slots=True)
class TocFile:
    sha256: str
    size: int


def encode_json(value: Any, *, sort_keys: bool = True) -> bytes:
    """The JSON encoding of bundle entries: compact, ASCII, keys sorted unless told.

    Records copied from the cache keep their key order (`sort_keys=False`): it is
    already deterministic, and an offline proxy then answers byte for byte as
    the online one did.
    """
    text = json.dumps(value, sort_keys=sort_keys, separators=(",", ":"), allow_nan=False)
    return text.encode("ascii")


def blob_entry(digest: str) -> str:
    return BLOB_PREFIX + digest


def entry_header(name: str, size: int) -> bytes:
    """The exact header bytes (with a PAX header first for long names) of an entry."""
    info = tarfile.TarInfo(name)
    info.size = size
    info.type = tarfile.REGTYPE
    info.mode = 0o644
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def padding(size: int) -> int:
    """Zero bytes after `size` bytes of content, up to the next tar block."""
    return -size % BLOCK


def end_of_archive(offset: int) -> int:
    """Bytes of zero blocks tarfile writes after the last entry ending at `offset`."""
    end = offset + 2 * BLOCK
    return end + (-end % _RECORD) - offset


def trailer(digest: str) -> bytes:
    return b"\n" + _TRAILER_TAG + b" " + digest.encode("ascii") + b"\n"


def trailer_digest(line: bytes) -> str | None:
    """The digest a trailer line carries, or None when it is not one."""
    match = _TRAILER.fullmatch(line)
    return None if match is None else match.group(1).decode("ascii")


class Batched:
    """Progress callbacks in batches of at least `_PROGRESS_BATCH` bytes."""

    def __init__(self, progress: Progress | None) -> None:
        self._progress = progress
        self._pending = 0

    def add(self, count: int) -> None:
        if self._progress is None:
            return
        self._pending += count
        if self._pending >= _PROGRESS_BATCH:
            self.flush()

    def flush(self) -> None:
        if self._progress is not None and self._pending:
            self._progress(self._pending)
            self._pending = 0


def check_stop(stop: threading.Event | None) -> None:
    if stop is not None and stop.is_set():
        raise BundleError("bundle container: cancelled")
