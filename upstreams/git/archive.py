"""Canonical source archives: the same tree always gives the same bytes.

Every independent spm-proxy must produce identical archives for a tag so that
checksums agree, so nothing here depends on the clock, the machine, the order
git stores entries in, what was fetched before, or how many threads built it.
Blocking: call from a worker thread.
"""

from __future__ import annotations

import threading
import zipfile
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from dulwich.objects import Blob
from dulwich.repo import Repo

from upstreams.git.builds import usable_cores
from upstreams.git.tree import TreeFiles
from upstreams.model import Manifest, is_manifest_filename, parse_tools_version

# Fixed so that the bytes do not depend on zlib's default.
COMPRESS_LEVEL = 6
# What zip's DOS timestamps can express.
_ZIP_EPOCH = datetime(1980, 1, 1, tzinfo=UTC)
_ZIP_END = datetime(2107, 12, 31, 23, 59, 58, tzinfo=UTC)
_UNIX = 3
_REGULAR_FILE = 0o100000
# Entries read and deflated ahead of the one being written, per thread: enough
# to keep every thread busy while the writer catches up...
_AHEAD_PER_THREAD = 4
# ...but no more than this many bytes of them waiting to be written.
_AHEAD_BYTES = 8 * 1024 * 1024


def zip_timestamp(epoch_seconds: int) -> tuple[int, int, int, int, int, int]:
    moment = datetime.fromtimestamp(epoch_seconds, UTC)
    moment = min(max(moment, _ZIP_EPOCH), _ZIP_END)
    return (moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second)


def _blob_data(repo: Repo, sha: bytes) -> bytes:
    blob = repo[sha]
    assert isinstance(blob, Blob)
    return blob.as_raw_string()


def find_manifests(repo: Repo, files: TreeFiles) -> tuple[Manifest, ...]:
    """Root-level manifests, byte for byte as the archive will contain them."""
    manifests = []
    for path in sorted(files.files):
        if "/" in path or not is_manifest_filename(path):
            continue
        content = _blob_data(repo, files.files[path].blob)
        manifests.append(Manifest(path, content, parse_tools_version(content)))
    return tuple(manifests)


@dataclass(frozen=True, slots=True)
class _Deflated:
    data: bytes
    compressed: bytes

    @property
    def size(self) -> int:
        return len(self.data) + len(self.compressed)


def deflate(data: bytes) -> bytes:
    """Raw deflate (RFC 1951) exactly as `zipfile` writes a ZIP_DEFLATED entry."""
    compressor = zlib.compressobj(COMPRESS_LEVEL, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


class _Precompressed:
    """Stands in for the compressor of one zip entry: hands back bytes a worker
    thread deflated with the same parameters, so the entry is byte-identical."""

    def __init__(self, compressed: bytes) -> None:
        self._compressed = compressed

    def compress(self, data: bytes) -> bytes:
        compressed, self._compressed = self._compressed, b""
        return compressed

    def flush(self) -> bytes:
        return b""


@contextmanager
def _readers(open_repo: Callable[[], Repo]) -> Iterator[Callable[[bytes], bytes]]:
    """Blob readers for worker threads: dulwich repositories read packs through
    file positions, so each thread opens its own."""
    local = threading.local()
    opened: list[Repo] = []
    lock = threading.Lock()

    def read(sha: bytes) -> bytes:
        repo: Repo | None = getattr(local, "repo", None)
        if repo is None:
            repo = local.repo = open_repo()
            with lock:
                opened.append(repo)
        return _blob_data(repo, sha)

    try:
        yield read
    finally:
        for repo in opened:
            repo.close()


def _entries(
    files: TreeFiles, read: Callable[[bytes], bytes], threads: int
) -> Iterator[tuple[str, _Deflated]]:
    """Every file's content and deflated bytes, in path order, read and
    deflated by `threads` threads (zlib releases the interpreter lock)."""

    def work(sha: bytes) -> _Deflated:
        data = read(sha)
        return _Deflated(data, deflate(data))

    def waiting(pending: deque[tuple[str, Future[_Deflated]]]) -> int:
        return sum(future.result().size for _, future in pending if future.done())

    # Code point order is UTF-8 byte order: independent of locale.
    pending: deque[tuple[str, Future[_Deflated]]] = deque()
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="archive") as pool:
        for path in sorted(files.files):
            while pending and (
                len(pending) >= threads * _AHEAD_PER_THREAD or waiting(pending) > _AHEAD_BYTES
            ):
                done_path, future = pending.popleft()
                yield done_path, future.result()
            pending.append((path, pool.submit(work, files.files[path].blob)))
        while pending:
            done_path, future = pending.popleft()
            yield done_path, future.result()


def build_threads() -> int:
    """Threads that read and deflate one archive's entries: the usable cores, up to 4."""
    return min(4, usable_cores())


def write_archive(
    open_repo: Callable[[], Repo],
    files: TreeFiles,
    top_directory: str,
    epoch_seconds: int,
    destination: Path,
    *,
    threads: int = 1,
) -> int:
    """Write `files` under `top_directory/` to `destination`; returns the entry count.

    The bytes are those of `zipfile.ZipFile.writestr` with ZIP_DEFLATED at
    COMPRESS_LEVEL for each entry in path order, whatever `threads` is.
    """
    date_time = zip_timestamp(epoch_seconds)
    with (
        _readers(open_repo) as read,
        zipfile.ZipFile(destination, "w", compression=zipfile.ZIP_DEFLATED) as archive,
    ):
        for path, entry in _entries(files, read, threads):
            info = zipfile.ZipInfo(f"{top_directory}/{path}", date_time=date_time)
            info.create_system = _UNIX
            info.compress_type = zipfile.ZIP_DEFLATED
            mode = 0o755 if files.files[path].executable else 0o644
            info.external_attr = (_REGULAR_FILE | mode) << 16
            # What writestr sets before opening the entry (it decides zip64).
            info.file_size = len(entry.data)
            with archive.open(info, "w") as dest:
                # zipfile deflates through this attribute (CPython's
                # _ZipWriteFile); the entry's CRC and sizes still come from
                # `write`, and the header is written as for any entry.
                assert hasattr(dest, "_compressor")
                dest._compressor = _Precompressed(entry.compressed)
                dest.write(entry.data)
    return len(files.files)
