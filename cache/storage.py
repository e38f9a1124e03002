"""The storage seams as one value, for wiring only.

Functions take the single seams they use (`gc(blobs, ledger, releases, ...)`);
only the composition root holds a whole `Storage`.
"""

from __future__ import annotations

from dataclasses import dataclass

from cache.blobs import BlobStore
from cache.index import Index
from cache.leases import Leases
from cache.ledger import Ledger


@dataclass(frozen=True, slots=True)
class Storage:
    blobs: BlobStore
    index: Index
    ledger: Ledger
    leases: Leases
