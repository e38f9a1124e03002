"""The blob seam: content-addressed bytes (archives, manifests), named by SHA-256.

Protocols and record types only. Every implementation passes
`tests/contracts/blob_store.py`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True, slots=True)
class BlobInfo:
    digest: str
    size: int
    # Unix seconds of the last write, for oldest-first eviction.
    modified: float


class BlobWriter(Protocol):
    """Bytes on their way into the store: hashed while written, invisible until committed."""

    async def write(self, chunk: bytes) -> None: ...

    async def write_file(self, path: Path) -> None:
        """Append the content of a local file; the caller keeps and removes `path`."""
        ...

    @property
    def digest(self) -> str:
        """SHA-256 hex of everything written so far."""
        ...

    @property
    def size(self) -> int: ...

    async def commit(self, expected: str | None = None) -> str:
        """Make the bytes visible under their digest and return it.

        Create-only: content already stored is left as it is. With `expected`,
        different content raises `BlobDigestMismatch` and nothing is kept; an
        `expected` that is not a digest raises `ValueError`.
        """
        ...


class BlobReader(Protocol):
    @property
    def digest(self) -> str: ...

    @property
    def size(self) -> int: ...

    @property
    def local_path(self) -> Path | None:
        """A file on this machine holding exactly these bytes (for sendfile), if any."""
        ...

    def chunks(self, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """The bytes from `start` up to (not including) `end`."""
        ...


class BlobStore(Protocol):
    def writer(self) -> AbstractAsyncContextManager[BlobWriter]:
        """A writer whose bytes are discarded unless committed inside the block."""
        ...

    async def put(self, data: bytes, expected: str | None = None) -> str:
        """Store a small payload (a manifest); return its digest."""
        ...

    async def open(self, digest: str, *, verify: bool = True) -> BlobReader | None:
        """The blob, or None when it is absent or corrupt (corrupt ones are quarantined).

        Content is verified before it is first handed out and again whenever
        the stored bytes may have changed; `verify=False` is for callers that
        hash what they read anyway (export).
        """
        ...

    async def read(self, digest: str) -> bytes | None:
        """A small blob, whole and verified; None like `open`."""
        ...

    async def stat(self, digest: str) -> BlobInfo | None:
        """Whether the blob is stored, without verifying its content."""
        ...

    def url_for(self, digest: str, expires: int) -> str | None:
        """A URL clients may download the blob from for `expires` seconds, or None
        when the store cannot hand one out (then it is served through the proxy)."""
        ...

    def digests(self) -> AsyncIterator[BlobInfo]:
        """Every stored blob, in no particular order."""
        ...

    async def verify(self, digest: str) -> bool:
        """Re-hash a stored blob: True when it is present and matches its name."""
        ...

    async def quarantine(self, digest: str) -> bool:
        """Move a (corrupt) blob out of the store, kept for inspection; False if absent."""
        ...

    async def delete(self, digest: str) -> bool:
        """Remove a blob; False when it was not there."""
        ...

    async def sweep(self, older_than: float, *, dry_run: bool = False) -> int:
        """Remove writes abandoned more than `older_than` seconds ago (a crash
        leaves them); return the bytes freed (or that would be)."""
        ...

    async def purge_quarantine(self, *, dry_run: bool = False) -> int:
        """Remove quarantined blobs; return the bytes freed (or that would be)."""
        ...
