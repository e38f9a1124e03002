"""Storage failures, as one family of domain errors.

`proxy/problems.py` maps each class to a problem response: storage that
cannot be written makes fills fail clearly while cached answers keep serving.
"""

from __future__ import annotations


class StorageError(Exception):
    """Base class: the storage could not do what was asked."""


class StorageUnavailable(StorageError):
    """The storage cannot be reached or used right now (disk full, I/O error)."""


class StorageReadOnly(StorageUnavailable):
    """The storage refuses writes (read-only file system, no permission)."""


class BlobDigestMismatch(StorageError):
    """Written content does not hash to the digest the caller expected; nothing was kept."""

    def __init__(self, expected: str, actual: str) -> None:
        super().__init__(f"expected sha256 {expected}, content hashes to {actual}")
        self.expected = expected
        self.actual = actual
