"""`SqliteLeases`: leases as rows of one sqlite file, for the processes of one machine.

A lease is a row (key, token, holder, expires_at) written in an immediate
transaction, so two processes never both get one. The holder names this
machine, the process id and the process's start time: a lease whose process
is gone (killed in the middle of a fill) is taken over at once instead of
after its time to live, and a recycled process id is never mistaken for the
holder.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import structlog

from cache.embedded.sqlite import SqliteFile
from cache.leases import Lease

_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS leases (
        key        TEXT PRIMARY KEY,
        token      INTEGER NOT NULL,
        holder     TEXT NOT NULL,
        expires_at REAL NOT NULL
    )
    """,
)


def _start_time(pid: int) -> str | None:
    """The start time of a process in clock ticks since boot (proc(5)), None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    # The command name may hold spaces and parentheses: fields follow the last `)`.
    return stat.rsplit(")", 1)[1].split()[19]


def this_holder() -> str:
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_start_time(pid) or 0}"


def _gone(holder: str) -> bool:
    """Whether a holder on this machine has ended (a holder elsewhere cannot be seen)."""
    host, _, rest = holder.partition(":")
    pid, _, started = rest.partition(":")
    if host != socket.gethostname() or not pid.isdecimal():
        return False
    return _start_time(int(pid)) != started


class SqliteLeases:
    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self._file = SqliteFile(path, _SCHEMA, "leases")
        self._clock = clock
        self._holder = this_holder()
        self._log = structlog.get_logger()

    async def acquire(self, key: str, ttl: float) -> Lease | None:
        lease, taken_from = await self._file.run(self._acquire_sync, key, ttl)
        if taken_from is not None:
            self._log.warning("stale_lease_cleared", key=key, holder=taken_from)
        return lease

    async def renew(self, lease: Lease, ttl: float) -> Lease | None:
        return await self._file.run(self._renew_sync, lease, ttl)

    async def release(self, lease: Lease) -> None:
        await self._file.run(self._release_sync, lease)

    async def close(self) -> None:
        await self._file.close()

    def _acquire_sync(
        self, connection: sqlite3.Connection, key: str, ttl: float
    ) -> tuple[Lease | None, str | None]:
        now = self._clock()
        connection.execute("BEGIN IMMEDIATE")
        try:
            row = connection.execute(
                "SELECT token, holder, expires_at FROM leases WHERE key = ?", (key,)
            ).fetchone()
            taken_from, token = None, 0
            if row is not None:
                token, holder, expires_at = row
                if expires_at > now and not _gone(holder):
                    connection.execute("ROLLBACK")
                    return None, None
                # A released lease (expires_at 0) is free; one that is not was
                # cut short: its time ran out or its holder died.
                taken_from = holder if expires_at > 0 else None
            lease = Lease(key, token + 1, self._holder, now + ttl)
            connection.execute(
                "INSERT OR REPLACE INTO leases VALUES (?, ?, ?, ?)",
                (lease.key, lease.token, lease.holder, lease.expires_at),
            )
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        return lease, taken_from

    def _renew_sync(self, connection: sqlite3.Connection, lease: Lease, ttl: float) -> Lease | None:
        renewed = Lease(lease.key, lease.token, lease.holder, self._clock() + ttl)
        changed = connection.execute(
            "UPDATE leases SET expires_at = ? WHERE key = ? AND token = ?",
            (renewed.expires_at, lease.key, lease.token),
        )
        return renewed if changed.rowcount == 1 else None

    def _release_sync(self, connection: sqlite3.Connection, lease: Lease) -> None:
        # The row stays, expired, so the next grant's token is still larger.
        connection.execute(
            "UPDATE leases SET expires_at = 0 WHERE key = ? AND token = ?",
            (lease.key, lease.token),
        )
