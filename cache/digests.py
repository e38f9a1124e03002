"""SHA-256 digests as names: validation and streamed hashing."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import BinaryIO

# Exactly what `hexdigest()` produces. Anything else (upper case, separators,
# "..") is refused before a digest ever becomes part of a filesystem path.
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")

# Large enough to keep syscalls cheap, small enough that a multi-gigabyte archive
# never has to fit in memory.
_CHUNK_SIZE = 1 << 20


class InvalidDigestError(ValueError):
    """A string that is not a lowercase hex SHA-256 digest."""

    def __init__(self, digest: str) -> None:
        super().__init__(f"not a lowercase hex sha256 digest: {digest!r}")
        self.digest = digest


def validate_digest(digest: str) -> str:
    """Return `digest` unchanged if it is 64 lowercase hex characters, else raise."""
    if not isinstance(digest, str) or _SHA256_HEX.fullmatch(digest) is None:
        raise InvalidDigestError(str(digest))
    return digest


def sha256_stream(handle: BinaryIO) -> str:
    """Hash the rest of an open binary file in chunks (blocking; use a worker thread)."""
    hasher = hashlib.sha256()
    while chunk := handle.read(_CHUNK_SIZE):
        hasher.update(chunk)
    return hasher.hexdigest()


def sha256_file(path: Path) -> str:
    """Hash a file in chunks (blocking; use a worker thread)."""
    with path.open("rb") as handle:
        return sha256_stream(handle)
