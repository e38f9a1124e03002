"""SHA-256 digests as names: validation and streamed hashing."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import BinaryIO

from upstreams.model import is_sha256_hex

# Large enough to keep syscalls cheap, small enough that a multi-gigabyte archive
# never has to fit in memory.
CHUNK_SIZE = 1 << 20


class InvalidDigestError(ValueError):
    """A string that is not a lowercase hex SHA-256 digest."""

    def __init__(self, digest: object) -> None:
        super().__init__(f"not a lowercase hex sha256 digest: {digest!r}")
        self.digest = digest


def validate_digest(digest: str) -> str:
    """Return `digest` unchanged if it is 64 lowercase hex characters, else raise.

    Anything else (upper case, separators, "..") is refused before a digest
    ever becomes part of a storage name.
    """
    if not is_sha256_hex(digest):
        raise InvalidDigestError(digest)
    return digest


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_stream(handle: BinaryIO) -> str:
    """Hash the rest of an open binary file in chunks (blocking; use a worker thread)."""
    hasher = hashlib.sha256()
    while chunk := handle.read(CHUNK_SIZE):
        hasher.update(chunk)
    return hasher.hexdigest()


def sha256_file(path: Path) -> str:
    """Hash a file in chunks (blocking; use a worker thread)."""
    with path.open("rb") as handle:
        return sha256_stream(handle)
