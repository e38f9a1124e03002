"""Reading and verifying a bundle file (the container is described in `bundle_format`).

Every header, padding run and end-of-archive block is rebuilt and compared
byte for byte, every entry is hashed against `toc.json`, and the whole tar
region against the trailer. Blocking I/O: run in a worker thread.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from cache.digests import InvalidDigestError, validate_digest
from proxy.offline.bundle_format import (
    BLOB_PREFIX,
    BLOCK,
    CHUNK,
    FORMAT,
    FORMAT_VERSION,
    MAX_DOCUMENT_SIZE,
    TOC_NAME,
    TRAILER_SIZE,
    Batched,
    BundleError,
    Progress,
    TocFile,
    check_stop,
    encode_json,
    end_of_archive,
    entry_header,
    padding,
    trailer_digest,
)


@dataclass(frozen=True, slots=True)
class BundleContents:
    """A fully verified bundle.

    `blobs` maps each digest to a staged file holding its verified content; the
    caller owns those files and must commit or discard every one.
    """

    toc: Mapping[str, TocFile]
    documents: Mapping[str, bytes]
    blobs: Mapping[str, Path]


class _Truncated(Exception):
    """The tar region ended before the bytes asked for."""


class _Reader:
    """Reads the tar region (everything before the trailer), hashing every byte."""

    def __init__(
        self, handle: BinaryIO, limit: int, progress: Batched, stop: threading.Event | None
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
        check_stop(self._stop)
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
    batched = Batched(progress)
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
    progress: Batched,
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


def _read_trailer(handle: BinaryIO, progress: Batched) -> str:
    size = os.fstat(handle.fileno()).st_size
    if size < TRAILER_SIZE + 2 * BLOCK:
        raise BundleError(
            f"bundle container: {size} bytes is too short for a bundle (truncated, or not a "
            "spm-proxy bundle)"
        )
    handle.seek(size - TRAILER_SIZE)
    digest = trailer_digest(handle.read(TRAILER_SIZE))
    progress.add(TRAILER_SIZE)
    if digest is None:
        raise BundleError(
            "bundle container: the trailer line 'SPM-PROXY-BUNDLE-SHA256 <sha256>' at the end "
            "of the file is missing or damaged (truncated, or not a spm-proxy bundle)"
        )
    return digest


def _read_toc_entry(reader: _Reader) -> bytes:
    # Its size is only known from its own header, so that header is parsed
    # (tarfile checks its checksum) before being compared with the rebuilt one.
    try:
        block = reader.read(BLOCK)
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
    if block != entry_header(TOC_NAME, info.size):
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
    except RecursionError:
        raise BundleError(f"{where}: JSON nested too deeply") from None
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
    # Every name this format writes is printable ASCII (identity keys, versions,
    # digests); anything else could not even be put in a tar header as written.
    if (
        name == TOC_NAME
        or not name
        or not (name.isascii() and name.isprintable())
        or name.startswith("/")
        or ".." in name.split("/")
    ):
        raise BundleError(f"{where}: lists an invalid entry name {name!r}")
    if name.startswith(BLOB_PREFIX) and digest != name.removeprefix(BLOB_PREFIX):
        # Blobs are content-addressed: their name is their hash.
        raise BundleError(f"{where}: lists sha256 {digest} for {name}, which is not its name")
    return TocFile(digest, value["size"])


def _read_header(reader: _Reader, name: str, entry: TocFile, toc: Mapping[str, TocFile]) -> None:
    expected = entry_header(name, entry.size)
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
        info = tarfile.TarInfo.frombuf(actual[:BLOCK], "utf-8", "surrogateescape")
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
                chunk = reader.read(min(CHUNK, remaining))
            except _Truncated:
                raise BundleError(f"bundle entry {name}: truncated") from None
            hasher.update(chunk)
            target.write(chunk)
            remaining -= len(chunk)
    return hasher.hexdigest()


def _read_padding(reader: _Reader, name: str, size: int) -> None:
    try:
        zeros = reader.read(padding(size))
    except _Truncated:
        raise BundleError(f"bundle entry {name}: truncated (tar padding missing)") from None
    if zeros.count(0) != len(zeros):
        raise BundleError(f"bundle entry {name}: the tar padding after its content is damaged")


def _read_end_of_archive(reader: _Reader, last: str) -> None:
    expected = end_of_archive(reader.offset)
    if reader.remaining != expected:
        raise BundleError(
            f"bundle container: {reader.remaining} bytes follow the last entry ({last}) where "
            f"the end-of-archive blocks take {expected}: entries not listed in toc.json, or "
            "a damaged or truncated archive"
        )
    start = reader.offset
    while reader.remaining:
        block = reader.read(min(CHUNK, reader.remaining))
        if block.count(0) != len(block):
            position = start + next(i for i, byte in enumerate(block) if byte)
            raise BundleError(
                f"bundle container: the end-of-archive zero blocks are damaged (byte {position})"
            )
        start += len(block)
