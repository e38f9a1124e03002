"""The bundle container: a deterministic tar, a table of contents and a SHA-256 trailer.

Layout of a bundle file:

    <tar, PAX format>  toc.json, then every other entry sorted by name
    \\nSPM-PROXY-BUNDLE-SHA256 <64 hex>\\n   (hash of every byte before it)

Every tar header is exactly what `_header(name, size)` produces (mtime 0,
uid/gid 0, empty owner names, mode 0644, regular file), entries are padded with
zeros to 512 bytes and the archive ends with two zero blocks padded to a
10 KiB record, as tarfile writes it. Because the encoding is fully
determined by names, sizes and contents, the reader rebuilds every header and
padding run and compares them byte for byte: a damaged byte is reported at the
entry it belongs to, and the trailer hash catches whatever lies outside them.

This module knows nothing about releases or the cache; functions here do
blocking I/O and are meant to run in a worker thread.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tarfile
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from cache.digests import InvalidDigestError, validate_digest

FORMAT = "spm-proxy-bundle"
FORMAT_VERSION = 1
TOC_NAME = "toc.json"
BLOB_PREFIX = "blobs/"

_TRAILER_TAG = b"SPM-PROXY-BUNDLE-SHA256"
_TRAILER = re.compile(rb"\n" + _TRAILER_TAG + rb" ([0-9a-f]{64})\n")
TRAILER_SIZE = len(_TRAILER_TAG) + 67  # "\n" + tag + " " + 64 hex + "\n"

_BLOCK = tarfile.BLOCKSIZE
_RECORD = tarfile.RECORDSIZE
_CHUNK = 1 << 20
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


@dataclass(frozen=True, slots=True)
class WrittenBundle:
    files: int  # tar entries, toc.json included
    size: int  # bytes of the bundle file, trailer included


@dataclass(frozen=True, slots=True)
class BundleContents:
    """A fully verified bundle.

    `blobs` maps each digest to a staged file holding its verified content; the
    caller owns those files and must commit or discard every one.
    """

    toc: Mapping[str, TocFile]
    documents: Mapping[str, bytes]
    blobs: Mapping[str, Path]


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


def _header(name: str, size: int) -> bytes:
    """The exact header bytes (with a PAX header first for long names) of an entry."""
    info = tarfile.TarInfo(name)
    info.size = size
    info.type = tarfile.REGTYPE
    info.mode = 0o644
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def _padding(size: int) -> int:
    return -size % _BLOCK


def _end_of_archive(offset: int) -> int:
    """Bytes of zero blocks tarfile writes after the last entry ending at `offset`."""
    end = offset + 2 * _BLOCK
    return end + (-end % _RECORD) - offset


def _trailer(digest: str) -> bytes:
    return b"\n" + _TRAILER_TAG + b" " + digest.encode("ascii") + b"\n"


class _Batched:
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


def _check_stop(stop: threading.Event | None) -> None:
    if stop is not None and stop.is_set():
        raise BundleError("bundle container: cancelled")


# -- writing -------------------------------------------------------------------


class _Writer:
    """Writes to the output file, hashing every byte for the trailer."""

    def __init__(self, handle: BinaryIO, progress: _Batched, stop: threading.Event | None) -> None:
        self._handle = handle
        self._hash = hashlib.sha256()
        self._progress = progress
        self._stop = stop
        self.offset = 0

    def write(self, data: bytes) -> None:
        _check_stop(self._stop)
        self._handle.write(data)
        self._hash.update(data)
        self.offset += len(data)
        self._progress.add(len(data))

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def write_bundle(
    output: Path,
    documents: Mapping[str, bytes],
    blobs: Mapping[str, Path],
    *,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
) -> WrittenBundle:
    """Write a bundle of `documents` (entry name -> bytes) and `blobs` (digest -> file).

    Blobs are streamed and re-hashed on the way: one that does not hash to its
    name raises `CorruptBlobError`. The bundle appears at `output` only when
    complete (temporary file, fsync, rename); on any failure nothing is left.
    """
    toc = _table_of_contents(documents, blobs)
    toc_bytes = encode_json(
        {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "files": {name: {"sha256": f.sha256, "size": f.size} for name, f in toc.items()},
        }
    )
    temporary = output.with_name(f".{output.name}.{uuid.uuid4().hex}.partial")
    batched = _Batched(progress)
    try:
        with temporary.open("xb") as handle:
            writer = _Writer(handle, batched, stop)
            _write_entry(writer, TOC_NAME, toc_bytes)
            for name in sorted(toc):
                if name.startswith(BLOB_PREFIX):
                    digest = name.removeprefix(BLOB_PREFIX)
                    _write_blob(writer, name, blobs[digest], toc[name])
                else:
                    _write_entry(writer, name, documents[name])
            writer.write(bytes(_end_of_archive(writer.offset)))
            trailer = _trailer(writer.hexdigest())
            handle.write(trailer)
            batched.add(len(trailer))
            handle.flush()
            # fsync before the rename, or a crash could publish a name whose
            # data never reached the disk.
            os.fsync(handle.fileno())
            size = writer.offset + len(trailer)
        _check_stop(stop)
        temporary.replace(output)
        _fsync_dir(output.parent)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    batched.flush()
    return WrittenBundle(files=len(toc) + 1, size=size)


def _table_of_contents(
    documents: Mapping[str, bytes], blobs: Mapping[str, Path]
) -> dict[str, TocFile]:
    toc: dict[str, TocFile] = {}
    for name, data in documents.items():
        if name == TOC_NAME or name.startswith(BLOB_PREFIX):
            raise ValueError(f"{name!r} is reserved for the container")
        toc[name] = TocFile(hashlib.sha256(data).hexdigest(), len(data))
    for digest, path in blobs.items():
        validate_digest(digest)
        toc[blob_entry(digest)] = TocFile(digest, path.stat().st_size)
    return toc


def _write_entry(writer: _Writer, name: str, data: bytes) -> None:
    writer.write(_header(name, len(data)))
    writer.write(data)
    writer.write(bytes(_padding(len(data))))


def _write_blob(writer: _Writer, name: str, path: Path, expected: TocFile) -> None:
    writer.write(_header(name, expected.size))
    hasher = hashlib.sha256()
    with path.open("rb") as source:
        # The size went into toc.json already; a blob that changed since must not
        # produce an entry that disagrees with it.
        if os.fstat(source.fileno()).st_size != expected.size:
            raise BundleError(f"bundle entry {name}: the cached blob changed while exporting")
        remaining = expected.size
        while remaining:
            chunk = source.read(min(_CHUNK, remaining))
            if not chunk:
                raise BundleError(f"bundle entry {name}: the cached blob shrank while exporting")
            hasher.update(chunk)
            writer.write(chunk)
            remaining -= len(chunk)
    if hasher.hexdigest() != expected.sha256:
        raise CorruptBlobError(expected.sha256, hasher.hexdigest())
    writer.write(bytes(_padding(expected.size)))


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- reading -------------------------------------------------------------------


class _Truncated(Exception):
    """The tar region ended before the bytes asked for."""


class _Reader:
    """Reads the tar region (everything before the trailer), hashing every byte."""

    def __init__(
        self, handle: BinaryIO, limit: int, progress: _Batched, stop: threading.Event | None
    ) -> None:
        self._handle = handle
        self._limit = limit
        self._hash = hashlib.sha256()
        self._progress = progress
        self._stop = stop
        self.offset = 0

    @property
    def remaining(self) -> int:
        return self._limit - self.offset

    def read(self, size: int) -> bytes:
        """Exactly `size` bytes, or `_Truncated`."""
        _check_stop(self._stop)
        if size > self.remaining:
            raise _Truncated
        data = self._handle.read(size)
        if len(data) != size:
            raise _Truncated
        self._hash.update(data)
        self.offset += size
        self._progress.add(size)
        return data

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def read_bundle(
    path: Path,
    staging: Callable[[], Path],
    *,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
) -> BundleContents:
    """Verify a whole bundle; return its documents and its blobs staged under `staging()`.

    Raises `BundleError` naming the entry or region at fault; no staged file
    outlives a failure.
    """
    staged: dict[str, Path] = {}
    batched = _Batched(progress)
    try:
        with path.open("rb") as handle:
            contents = _read(handle, staging, staged, batched, stop)
    except BaseException:
        for file in staged.values():
            file.unlink(missing_ok=True)
        raise
    batched.flush()
    return contents


def _read(
    handle: BinaryIO,
    staging: Callable[[], Path],
    staged: dict[str, Path],
    progress: _Batched,
    stop: threading.Event | None,
) -> BundleContents:
    expected_digest = _read_trailer(handle, progress)
    handle.seek(0)
    reader = _Reader(handle, os.fstat(handle.fileno()).st_size - TRAILER_SIZE, progress, stop)

    toc_bytes = _read_toc_entry(reader)
    toc = _parse_toc(toc_bytes)
    documents: dict[str, bytes] = {}
    last = TOC_NAME
    for name in sorted(toc):
        entry = toc[name]
        last = name
        _read_header(reader, name, entry, toc)
        if name.startswith(BLOB_PREFIX):
            file = staged[name] = staging()
            actual = _stream_to_file(reader, name, entry.size, file)
        else:
            data = _read_content(reader, name, entry.size)
            actual = hashlib.sha256(data).hexdigest()
            documents[name] = data
        if actual != entry.sha256:
            raise BundleError(
                f"bundle entry {name}: sha256 mismatch "
                f"(toc.json says {entry.sha256}, content is {actual})"
            )
        _read_padding(reader, name, entry.size)
    _read_end_of_archive(reader, last)

    actual_digest = reader.hexdigest()
    if actual_digest != expected_digest:
        # Every header, content and padding byte was checked above, so what is
        # left is the trailer (or bytes outside every entry).
        raise BundleError(
            f"bundle container: every entry verified, but the bundle hashes to {actual_digest} "
            f"while its trailer says {expected_digest}; the container itself (most likely "
            "the trailer) is damaged"
        )
    blobs = {name.removeprefix(BLOB_PREFIX): file for name, file in staged.items()}
    return BundleContents(toc=toc, documents=documents, blobs=blobs)


def _read_trailer(handle: BinaryIO, progress: _Batched) -> str:
    size = os.fstat(handle.fileno()).st_size
    if size < TRAILER_SIZE + 2 * _BLOCK:
        raise BundleError(
            f"bundle container: {size} bytes is too short for a bundle (truncated, or not a "
            "spm-proxy bundle)"
        )
    handle.seek(size - TRAILER_SIZE)
    match = _TRAILER.fullmatch(handle.read(TRAILER_SIZE))
    progress.add(TRAILER_SIZE)
    if match is None:
        raise BundleError(
            "bundle container: the trailer line 'SPM-PROXY-BUNDLE-SHA256 <sha256>' at the end "
            "of the file is missing or damaged (truncated, or not a spm-proxy bundle)"
        )
    return match.group(1).decode("ascii")


def _read_toc_entry(reader: _Reader) -> bytes:
    # Its size is only known from its own header, so that header is parsed
    # (tarfile checks its checksum) before being compared with the rebuilt one.
    try:
        block = reader.read(_BLOCK)
    except _Truncated:
        raise BundleError(f"bundle entry {TOC_NAME}: missing (the archive is empty)") from None
    try:
        info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
    except tarfile.HeaderError as exc:
        raise BundleError(f"bundle entry {TOC_NAME}: its tar header is damaged ({exc})") from None
    if info.name != TOC_NAME:
        raise BundleError(
            f"bundle container: the first entry is {info.name!r}, not {TOC_NAME} "
            "(not a spm-proxy bundle)"
        )
    if block != _header(TOC_NAME, info.size):
        raise BundleError(
            f"bundle entry {TOC_NAME}: its tar header is damaged (it differs from the "
            "deterministic header for its name and size)"
        )
    if info.size > MAX_DOCUMENT_SIZE:
        raise BundleError(f"bundle entry {TOC_NAME}: {info.size} bytes is implausibly large")
    data = _read_content(reader, TOC_NAME, info.size)
    _read_padding(reader, TOC_NAME, info.size)
    return data


def _parse_toc(data: bytes) -> dict[str, TocFile]:
    where = f"bundle entry {TOC_NAME}"
    try:
        document = json.loads(data)
    except ValueError as exc:
        raise BundleError(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(document, dict) or set(document) != {"format", "version", "files"}:
        raise BundleError(f"{where}: not a spm-proxy table of contents")
    if document["format"] != FORMAT:
        raise BundleError(f"{where}: format {document['format']!r} is not {FORMAT!r}")
    if document["version"] != FORMAT_VERSION:
        raise BundleError(
            f"{where}: bundle format version {document['version']!r} is not supported "
            f"(this spm-proxy reads version {FORMAT_VERSION})"
        )
    files = document["files"]
    if not isinstance(files, dict):
        raise BundleError(f"{where}: 'files' is not an object")
    toc = {name: _toc_file(name, value) for name, value in files.items()}
    # Any other spelling of the same table would still parse; only the exact
    # encoding the writer produces is accepted, so no byte of it goes unchecked.
    if data != encode_json(document):
        raise BundleError(f"{where}: not in the canonical encoding (damaged)")
    return toc


def _toc_file(name: str, value: Any) -> TocFile:
    where = f"bundle entry {TOC_NAME}"
    if (
        not isinstance(value, dict)
        or set(value) != {"sha256", "size"}
        or not isinstance(value["size"], int)
        or isinstance(value["size"], bool)
        or value["size"] < 0
    ):
        raise BundleError(f"{where}: the record of {name!r} is not {{sha256, size}}")
    try:
        digest = validate_digest(value["sha256"])
    except InvalidDigestError:
        raise BundleError(f"{where}: the sha256 of {name!r} is not a sha256 digest") from None
    if name == TOC_NAME or not name or name.startswith("/") or ".." in name.split("/"):
        raise BundleError(f"{where}: lists an invalid entry name {name!r}")
    if name.startswith(BLOB_PREFIX) and digest != name.removeprefix(BLOB_PREFIX):
        # Blobs are content-addressed: their name is their hash.
        raise BundleError(f"{where}: lists sha256 {digest} for {name}, which is not its name")
    return TocFile(digest, value["size"])


def _read_header(reader: _Reader, name: str, entry: TocFile, toc: Mapping[str, TocFile]) -> None:
    expected = _header(name, entry.size)
    try:
        actual = reader.read(len(expected))
    except _Truncated:
        raise BundleError(
            f"bundle entry {name}: missing (toc.json lists it, but the archive ends before it)"
        ) from None
    if actual != expected:
        raise BundleError(_diagnose_header(actual, name, entry, toc))


def _diagnose_header(actual: bytes, name: str, entry: TocFile, toc: Mapping[str, TocFile]) -> str:
    """Why a header differs from the expected one, for the error message."""
    try:
        info = tarfile.TarInfo.frombuf(actual[:_BLOCK], "utf-8", "surrogateescape")
    except tarfile.HeaderError as exc:
        return f"bundle entry {name}: its tar header is damaged ({exc})"
    if info.type in (tarfile.XHDTYPE, tarfile.XGLTYPE) or info.name == name:
        if info.name == name and info.size != entry.size:
            return (
                f"bundle entry {name}: size mismatch "
                f"(toc.json says {entry.size}, tar header says {info.size})"
            )
        return f"bundle entry {name}: its tar header is damaged (not the deterministic header)"
    if info.name not in toc:
        return f"bundle entry {info.name}: not listed in toc.json (expected {name} here)"
    return f"bundle entry {info.name}: out of order (toc.json order expects {name} here)"


def _read_content(reader: _Reader, name: str, size: int) -> bytes:
    if size > MAX_DOCUMENT_SIZE:
        raise BundleError(f"bundle entry {name}: {size} bytes is implausibly large")
    try:
        return reader.read(size)
    except _Truncated:
        raise BundleError(f"bundle entry {name}: truncated") from None


def _stream_to_file(reader: _Reader, name: str, size: int, file: Path) -> str:
    hasher = hashlib.sha256()
    with file.open("xb") as target:
        remaining = size
        while remaining:
            try:
                chunk = reader.read(min(_CHUNK, remaining))
            except _Truncated:
                raise BundleError(f"bundle entry {name}: truncated") from None
            hasher.update(chunk)
            target.write(chunk)
            remaining -= len(chunk)
    return hasher.hexdigest()


def _read_padding(reader: _Reader, name: str, size: int) -> None:
    try:
        padding = reader.read(_padding(size))
    except _Truncated:
        raise BundleError(f"bundle entry {name}: truncated (tar padding missing)") from None
    if padding.count(0) != len(padding):
        raise BundleError(f"bundle entry {name}: the tar padding after its content is damaged")


def _read_end_of_archive(reader: _Reader, last: str) -> None:
    expected = _end_of_archive(reader.offset)
    if reader.remaining != expected:
        raise BundleError(
            f"bundle container: {reader.remaining} bytes follow the last entry ({last}) where "
            f"the end-of-archive blocks take {expected}: entries not listed in toc.json, or "
            "a damaged or truncated archive"
        )
    start = reader.offset
    while reader.remaining:
        block = reader.read(min(_CHUNK, reader.remaining))
        if block.count(0) != len(block):
            position = start + next(i for i, byte in enumerate(block) if byte)
            raise BundleError(
                f"bundle container: the end-of-archive zero blocks are damaged (byte {position})"
            )
        start += len(block)
