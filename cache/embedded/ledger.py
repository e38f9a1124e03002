"""`SqliteLedger`: the checksum ledger in one sqlite file.

Durable and append-only: triggers make the table refuse updates and deletes
for every client of the file, not just this class.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import structlog

from cache.digests import validate_digest
from cache.embedded.sqlite import SqliteFile
from cache.ledger import LedgerEntry
from upstreams.model import PackageId, Version

_T = TypeVar("_T")


# "commit" is an SQL keyword, hence quoted. Order matches LedgerEntry's fields.
_SELECT = (
    'SELECT identity, version, resource, checksum, upstream, url, "commit", recorded_at FROM ledger'
)
_INSERT = (
    "INSERT OR IGNORE INTO ledger"
    ' (identity, version, resource, checksum, upstream, url, "commit", recorded_at)'
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)

# Each statement is idempotent so that several processes can open a fresh file at once.
_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS ledger (
        identity    TEXT NOT NULL,
        version     TEXT NOT NULL,
        resource    TEXT NOT NULL,
        checksum    TEXT NOT NULL CHECK (length(checksum) = 64),
        upstream    TEXT NOT NULL,
        url         TEXT NOT NULL,
        "commit"    TEXT,
        recorded_at INTEGER NOT NULL,
        PRIMARY KEY (identity, version, resource)
    ) WITHOUT ROWID
    """,
    # The triggers make the table append-only for every client of the file, not
    # just for this class: a published checksum must never change.
    """
    CREATE TRIGGER IF NOT EXISTS ledger_no_update BEFORE UPDATE ON ledger
    BEGIN SELECT RAISE(ABORT, 'the checksum ledger is append-only'); END
    """,
    """
    CREATE TRIGGER IF NOT EXISTS ledger_no_delete BEFORE DELETE ON ledger
    BEGIN SELECT RAISE(ABORT, 'the checksum ledger is append-only'); END
    """,
    # INSERT OR REPLACE deletes the old row without firing DELETE triggers (unless
    # recursive_triggers is on), so an insert over an existing key is dropped here.
    """
    CREATE TRIGGER IF NOT EXISTS ledger_no_replace BEFORE INSERT ON ledger
    WHEN EXISTS (
        SELECT 1 FROM ledger
        WHERE identity = NEW.identity AND version = NEW.version AND resource = NEW.resource
    )
    BEGIN SELECT RAISE(IGNORE); END
    """,
)


class SqliteLedger:
    """The ledger in one sqlite file; the primary key and sqlite's file locking
    make `record` atomic between processes."""

    def __init__(self, path: Path) -> None:
        self._file = SqliteFile(path, _SCHEMA, "checksum ledger")
        self._log = structlog.get_logger().bind(ledger=str(path))

    async def record(self, entries: Sequence[LedgerEntry]) -> list[LedgerEntry]:
        offered = [
            dataclasses.replace(e, identity=e.identity.lower(), checksum=e.checksum.lower())
            for e in entries
        ]
        for entry in offered:
            validate_digest(entry.checksum)
        outcomes = await self._run(self._record_sync, offered)
        for entry, (winner, inserted) in zip(offered, outcomes, strict=True):
            self._log_outcome(entry, winner, inserted=inserted)
        return [winner for winner, _ in outcomes]

    def _log_outcome(self, entry: LedgerEntry, winner: LedgerEntry, *, inserted: bool) -> None:
        if inserted:
            self._log.info(
                "ledger_recorded",
                identity=entry.identity,
                version=entry.version,
                resource=entry.resource,
                checksum=entry.checksum,
                upstream=entry.upstream,
            )
        elif winner.checksum != entry.checksum:
            # Not an error here: the caller decides whether to refuse; this is the fact.
            self._log.warning(
                "ledger_conflict",
                identity=entry.identity,
                version=entry.version,
                resource=entry.resource,
                recorded_checksum=winner.checksum,
                offered_checksum=entry.checksum,
                recorded_upstream=winner.upstream,
                offered_upstream=entry.upstream,
            )

    async def lookup(self, package: PackageId, version: Version) -> dict[str, LedgerEntry]:
        found = await self._run(self._entries_sync, package.key, str(version))
        return {entry.resource: entry for entry in found}

    async def entries(
        self, package: PackageId | None = None, version: Version | None = None
    ) -> AsyncIterator[LedgerEntry]:
        found = await self._run(
            self._entries_sync,
            None if package is None else package.key,
            None if version is None else str(version),
        )
        for entry in found:
            yield entry

    async def close(self) -> None:
        await self._file.close()

    async def _run(self, func: Callable[..., _T], *args: Any) -> _T:
        return await self._file.run(func, *args)

    @staticmethod
    def _record_sync(
        connection: sqlite3.Connection, entries: list[LedgerEntry]
    ) -> list[tuple[LedgerEntry, bool]]:
        outcomes = []
        # One transaction: a release's resources are recorded together or not at all.
        connection.execute("BEGIN IMMEDIATE")
        try:
            for entry in entries:
                inserted = connection.execute(_INSERT, dataclasses.astuple(entry)).rowcount == 1
                # Read back rather than trust `entry`: on conflict the first-recorded row wins.
                winner = SqliteLedger._lookup_sync(
                    connection, entry.identity, entry.version, entry.resource
                )
                assert winner is not None, "a ledger row vanished after insert"
                outcomes.append((winner, inserted))
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        return outcomes

    @staticmethod
    def _lookup_sync(
        connection: sqlite3.Connection, identity: str, version: str, resource: str
    ) -> LedgerEntry | None:
        row = connection.execute(
            _SELECT + " WHERE identity = ? AND version = ? AND resource = ?",
            (identity, version, resource),
        ).fetchone()
        return None if row is None else LedgerEntry(*row)

    @staticmethod
    def _entries_sync(
        connection: sqlite3.Connection, identity: str | None, version: str | None
    ) -> list[LedgerEntry]:
        # `? IS NULL OR` makes each filter optional without building SQL from input.
        rows = connection.execute(
            _SELECT + " WHERE (? IS NULL OR identity = ?) AND (? IS NULL OR version = ?)"
            " ORDER BY identity, version, resource",
            (identity, identity, version, version),
        ).fetchall()
        return [LedgerEntry(*row) for row in rows]
