"""Keeping a fetched pack in a mirror: read once, indexed once.

dulwich's `DiskObjectStore.add_thin_pack` indexes a pack and then inflates
and parses every object in it again before keeping it, which costs as much
as the indexing itself. git does not do that by default (index-pack checks
objects only with `transfer.fsckObjects`, git-config(1)), and a mirror has
no use for it: it reads only the objects of the releases it builds, and
dulwich parses each commit and tree as it is read. So a pack is kept once
its trailing checksum verifies (gitformat-pack(5)) and every object in it,
deltas resolved against the pack or the mirror (a thin pack), has an id.

`receive` parses a pack while it is still arriving: the first pass over it
runs while the server is still producing and sending the rest.

Blocking: call from a worker thread, holding the mirror's lock.
"""

from __future__ import annotations

import contextlib
import os
import queue
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from dulwich.file import GitFile
from dulwich.object_store import DiskObjectStore
from dulwich.pack import (
    PackData,
    PackIndexer,
    PackStreamCopier,
    extend_pack,
    iter_sha1,
    write_pack_index,
)

# Packs are immutable once written (what git and dulwich use).
_PACK_MODE = 0o444
# Chunks received but not yet parsed (urllib3 hands over up to 64 KiB each):
# when parsing falls behind, receiving waits.
_QUEUED_CHUNKS = 64


def add_pack(
    store: DiskObjectStore,
    read_all: Callable[[int], bytes],
    read_some: Callable[[int], bytes] | None = None,
) -> int:
    """Read a pack (thin or not) and keep it in `store`; returns its object count."""
    # Next to the packs (so the rename is atomic), named as leftovers are swept.
    fd, name = tempfile.mkstemp(dir=store.pack_dir, prefix="tmp_pack_")
    temporary = Path(name)
    try:
        with os.fdopen(fd, "w+b") as pack:
            temporary.chmod(_PACK_MODE)
            hash_func = store.object_format.hash_func
            indexer = PackIndexer(pack, hash_func, resolve_ext_ref=store.get_raw)
            # Copies the stream to the file, checks its trailing checksum and
            # records where each object and delta is (dulwich's add_thin_pack
            # passes the indexer the same way).
            copier = PackStreamCopier(
                hash_func,
                read_all,
                read_some,
                pack,
                delta_iter=indexer,  # type: ignore[arg-type]
            )
            copier.verify()
            pack.flush()
            pack.seek(0)
            with PackData(name, file=pack, object_format=store.object_format) as data:
                indexer.set_pack_data(data)
                entries = list(indexer)
                bases = set(indexer.ext_refs())
            # A thin pack names delta bases it does not carry: append them.
            checksum, appended = extend_pack(
                pack, bases, get_raw=store.get_raw, object_format=store.object_format
            )
            pack.flush()
        entries.extend(appended)
        entries.sort()
        kept = Path(store.pack_dir) / (
            "pack-" + iter_sha1(entry[0] for entry in entries).decode("ascii")
        )
        if kept.with_suffix(".idx").exists():
            temporary.unlink()  # the same objects are already kept
            return len(entries)
        # The pack first, then its index: dulwich (like git) opens a pack only
        # once both are there, and the index is written to a lock file first.
        # A pack of these objects without an index (its writer was killed) is
        # replaced: the index about to be written describes this file.
        temporary.rename(kept.with_suffix(".pack"))
        with GitFile(kept.with_suffix(".idx"), "wb", mask=_PACK_MODE) as index:
            write_pack_index(index, entries, checksum)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    return len(entries)


class PackReceiver:
    """Carries a pack from the thread receiving it to a thread that keeps it.

    `feed` is the `pack_data` callback of a fetch; the first call starts the
    keeping thread. After the fetch, `finish` waits for it and raises what it
    raised. A keeper that failed stops taking data; the fetch runs to its end.
    """

    def __init__(self, store: DiskObjectStore) -> None:
        self._store = store
        self._chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=_QUEUED_CHUNKS)
        self._buffer = bytearray()
        self._ended = False
        self._failure: BaseException | None = None
        self._keeper: threading.Thread | None = None

    def feed(self, data: bytes) -> int:
        if self._keeper is None:
            self._keeper = threading.Thread(target=self._keep, name="pack-keeper", daemon=True)
            self._keeper.start()
        self._put(bytes(data))
        return len(data)

    def finish(self) -> bool:
        """Wait for the pack to be kept; whether there was one. Raises what keeping raised."""
        if self._keeper is None:
            return False
        self._put(None)
        self._keeper.join()
        if self._failure is not None:
            raise self._failure
        return True

    def _put(self, chunk: bytes | None) -> None:
        while self._failure is None:
            try:
                self._chunks.put(chunk, timeout=0.1)
            except queue.Full:
                continue
            return

    def _keep(self) -> None:
        try:
            add_pack(self._store, self._read_all, self._read_some)
        except BaseException as exc:  # noqa: BLE001 - re-raised by `finish`, in the fetching thread
            self._failure = exc

    def _fill(self) -> None:
        chunk = self._chunks.get()
        if chunk is None:
            self._ended = True
        else:
            self._buffer += chunk

    def _take(self, size: int) -> bytes:
        taken = bytes(self._buffer[:size])
        del self._buffer[:size]
        return taken

    def _read_all(self, size: int) -> bytes:
        while len(self._buffer) < size and not self._ended:
            self._fill()
        return self._take(size)

    def _read_some(self, size: int) -> bytes:
        if not self._buffer and not self._ended:
            self._fill()
        return self._take(size)
