"""The embedded storage: files for blobs, diskcache for the index, sqlite for the ledger.

The default backend: everything in one local data directory. Only
`proxy.wiring` imports this package.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

from cache.embedded.documents import FileDocuments
from cache.embedded.files import FilesystemBlobStore
from cache.embedded.format import EmbeddedFormat
from cache.embedded.index import DiskcacheIndex
from cache.embedded.kv import JsonStore
from cache.embedded.leases import SqliteLeases
from cache.embedded.ledger import SqliteLedger
from cache.storage import Storage

__all__ = ["EmbeddedFormat", "FileDocuments", "FilesystemBlobStore", "open_embedded"]


@asynccontextmanager
async def open_embedded(data_dir: Path) -> AsyncIterator[Storage]:
    """The storage under `data_dir`: `blobs/`, `index/`, `ledger.sqlite3`, `leases.sqlite3`.

    `EmbeddedFormat` brings an older directory to the current format first.
    """
    async with AsyncExitStack() as stack:
        store = JsonStore(data_dir / "index")
        stack.callback(store.close)
        ledger = SqliteLedger(data_dir / "ledger.sqlite3")
        stack.push_async_callback(ledger.close)
        leases = SqliteLeases(data_dir / "leases.sqlite3")
        stack.push_async_callback(leases.close)
        yield Storage(
            blobs=FilesystemBlobStore(data_dir / "blobs"),
            index=DiskcacheIndex(store),
            ledger=ledger,
            leases=leases,
        )
