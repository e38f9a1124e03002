"""Writing a bundle file (the container is described in `bundle_format`).

Blocking I/O: run in a worker thread.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from cache.atomic import atomic_writer
from cache.digests import validate_digest
from proxy.offline.bundle_format import (
    BLOB_PREFIX,
    CHUNK,
    FORMAT,
    FORMAT_VERSION,
    TOC_NAME,
    Batched,
    BundleError,
    CorruptBlobError,
    Progress,
    TocFile,
    blob_entry,
    check_stop,
    encode_json,
    end_of_archive,
    entry_header,
    padding,
    trailer,
)


@dataclass(frozen=True, slots=True)
class WrittenBundle:
    files: int  # tar entries, toc.json included
    size: int  # bytes of the bundle file, trailer included


class _Writer:
    """Writes to the output file, hashing every byte for the trailer."""

    def __init__(self, handle: BinaryIO, progress: Batched, stop: threading.Event | None) -> None:
        self._handle = handle
        self._hash = hashlib.sha256()
        self._progress = progress
        self._stop = stop
        self.offset = 0

    def write(self, data: bytes) -> None:
        check_stop(self._stop)
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
    complete (`cache.atomic.atomic_writer`); on any failure nothing is left.
    """
    toc = _table_of_contents(documents, blobs)
    toc_bytes = encode_json(
        {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "files": {name: {"sha256": f.sha256, "size": f.size} for name, f in toc.items()},
        }
    )
    batched = Batched(progress)
    with atomic_writer(output) as handle:
        writer = _Writer(handle, batched, stop)
        _write_entry(writer, TOC_NAME, toc_bytes)
        for name in sorted(toc):
            if name.startswith(BLOB_PREFIX):
                digest = name.removeprefix(BLOB_PREFIX)
                _write_blob(writer, name, blobs[digest], toc[name])
            else:
                _write_entry(writer, name, documents[name])
        writer.write(bytes(end_of_archive(writer.offset)))
        # The trailer hashes everything before it, so it is not itself hashed.
        line = trailer(writer.hexdigest())
        handle.write(line)
        batched.add(len(line))
        size = writer.offset + len(line)
        # Last chance to cancel: leaving the block with an error leaves nothing.
        check_stop(stop)
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
    writer.write(entry_header(name, len(data)))
    writer.write(data)
    writer.write(bytes(padding(len(data))))


def _write_blob(writer: _Writer, name: str, path: Path, expected: TocFile) -> None:
    writer.write(entry_header(name, expected.size))
    hasher = hashlib.sha256()
    with path.open("rb") as source:
        # The size went into toc.json already; a blob that changed since must not
        # produce an entry that disagrees with it.
        if os.fstat(source.fileno()).st_size != expected.size:
            raise BundleError(f"bundle entry {name}: the cached blob changed while exporting")
        remaining = expected.size
        while remaining:
            chunk = source.read(min(CHUNK, remaining))
            if not chunk:
                raise BundleError(f"bundle entry {name}: the cached blob shrank while exporting")
            hasher.update(chunk)
            writer.write(chunk)
            remaining -= len(chunk)
    if hasher.hexdigest() != expected.sha256:
        raise CorruptBlobError(expected.sha256, hasher.hexdigest())
    writer.write(bytes(padding(expected.size)))
