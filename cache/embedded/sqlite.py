"""One sqlite file used from worker threads: one connection, taken in turns, errors mapped.

sqlite serialises writers anyway, and a single connection is closed for
certain by `close()`. Other processes open their own connection; sqlite's file
locking makes their transactions atomic between them. Files are switched to
write-ahead logging once, and written with `synchronous=FULL`, so a committed
row survives power loss, not just a process crash.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from cache.atomic import storage_error
from cache.embedded.kv import sqlite_error

_T = TypeVar("_T")
# Another process may hold the write lock briefly; wait rather than fail.
BUSY_TIMEOUT_SECONDS = 30.0


class SqliteFile:
    def __init__(self, path: Path, schema: Sequence[str], what: str) -> None:
        self._path = path
        self._schema = schema
        self._what = what
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self._closed = False

    @property
    def path(self) -> Path:
        return self._path

    async def run(self, func: Callable[..., _T], *args: Any) -> _T:
        """`func(connection, *args)` on a worker thread, with storage errors as domain errors."""
        try:
            return await asyncio.to_thread(self._locked, func, *args)
        except sqlite3.OperationalError as error:
            raise sqlite_error(error, f"{self._what} {self._path}") from error
        except OSError as error:
            raise storage_error(error, f"{self._what} {self._path}") from error

    async def close(self) -> None:
        await asyncio.to_thread(self._close_sync)

    def _locked(self, func: Callable[..., _T], *args: Any) -> _T:
        with self._lock:
            if self._closed:
                raise RuntimeError(f"the {self._what} is closed")
            return func(self._connect(), *args)

    def _connect(self) -> sqlite3.Connection:
        if self._connection is not None:
            return self._connection
        self._path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit (isolation_level=None): every statement is its own
        # transaction, except explicit ones.
        connection = sqlite3.connect(
            self._path,
            timeout=BUSY_TIMEOUT_SECONDS,
            isolation_level=None,
            check_same_thread=False,  # worker threads take turns under self._lock
        )
        try:
            _enable_wal(connection)
            connection.execute("PRAGMA synchronous=FULL")
            connection.execute("BEGIN IMMEDIATE")
            for statement in self._schema:
                connection.execute(statement)
            connection.execute("COMMIT")
        except BaseException:
            connection.close()
            raise
        self._connection = connection
        return connection

    def _close_sync(self) -> None:
        with self._lock:
            self._closed = True
            if self._connection is not None:
                self._connection.close()
                self._connection = None


def _enable_wal(connection: sqlite3.Connection) -> None:
    """Switch the file to write-ahead logging, waiting out other processes doing the same.

    Changing the journal mode needs an exclusive lock, and sqlite reports a busy
    database at once instead of calling the busy handler, so the wait is done here.
    The mode is persistent: only the very first opening of a file actually switches.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
    while True:
        try:
            (mode,) = connection.execute("PRAGMA journal_mode=WAL").fetchone()
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
            continue
        if mode != "wal":
            raise sqlite3.OperationalError(f"cannot use write-ahead logging, got {mode!r}")
        return
