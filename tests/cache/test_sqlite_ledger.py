"""`SqliteLedger` against the ledger contract, plus what only SQL can show."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import sys
from pathlib import Path

import pytest

from cache.embedded.ledger import SqliteLedger
from tests.contracts.ledger import (
    ClosableLedger,
    LedgerContract,
    OpenLedger,
    all_entries,
    entry,
    lookup_one,
    record_one,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class TestSqliteLedger(LedgerContract):
    @pytest.fixture
    def open_ledger(self, tmp_path: Path) -> OpenLedger:
        def open_ledger() -> ClosableLedger:
            return SqliteLedger(tmp_path / "ledger.sqlite3")

        return open_ledger


@pytest.fixture
async def ledger_path(tmp_path: Path) -> Path:
    """A ledger file holding one entry, with the ledger closed again."""
    path = tmp_path / "ledger.sqlite3"
    ledger = SqliteLedger(path)
    await record_one(ledger, entry())
    await ledger.close()
    return path


def _raw_connection(path: Path) -> contextlib.closing[sqlite3.Connection]:
    return contextlib.closing(sqlite3.connect(path, isolation_level=None))


def _stored_rows(path: Path) -> list[tuple[object, ...]]:
    with _raw_connection(path) as connection:
        return connection.execute("SELECT checksum, upstream FROM ledger").fetchall()


def test_update_is_rejected_by_sql(ledger_path: Path) -> None:
    before = _stored_rows(ledger_path)

    with (
        _raw_connection(ledger_path) as connection,
        pytest.raises(sqlite3.DatabaseError, match="append-only"),
    ):
        connection.execute("UPDATE ledger SET checksum = ?", ("0" * 64,))

    assert _stored_rows(ledger_path) == before


def test_delete_is_rejected_by_sql(ledger_path: Path) -> None:
    with (
        _raw_connection(ledger_path) as connection,
        pytest.raises(sqlite3.DatabaseError, match="append-only"),
    ):
        connection.execute("DELETE FROM ledger")

    assert len(_stored_rows(ledger_path)) == 1


def test_insert_or_replace_cannot_overwrite(ledger_path: Path) -> None:
    before = _stored_rows(ledger_path)
    replacement = entry(content="replacement", upstream="attacker")

    with _raw_connection(ledger_path) as connection:
        connection.execute(
            "INSERT OR REPLACE INTO ledger VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                replacement.identity,
                replacement.version,
                replacement.resource,
                replacement.checksum,
                replacement.upstream,
                replacement.url,
                replacement.commit,
                replacement.recorded_at,
            ),
        )

    assert _stored_rows(ledger_path) == before


def test_file_uses_write_ahead_logging(ledger_path: Path) -> None:
    with _raw_connection(ledger_path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_closed_ledger_refuses_work(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "ledger.sqlite3")
    await ledger.close()
    await ledger.close()

    with pytest.raises(RuntimeError, match="closed"):
        await lookup_one(ledger, "mona.linkedlist", "1.0.0", "source-archive")


# Each process offers its own checksum for the same 30 resources and prints the
# checksum the ledger returned for each.
_WRITER = """
import asyncio, json, sys
from pathlib import Path
from cache.embedded.ledger import SqliteLedger
from tests.contracts.ledger import entry, record_one

async def main(path, label):
    ledger = SqliteLedger(Path(path))
    try:
        winners = [
            (await record_one(ledger, entry(version=f"1.0.{n}", content=f"{label} {n}"))).checksum
            for n in range(30)
        ]
    finally:
        await ledger.close()
    print(json.dumps(winners))

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


async def test_two_processes_agree_on_every_winner(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _WRITER,
            str(path),
            label,
            cwd=PROJECT_ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for label in ("first", "second")
    ]
    outputs = [await process.communicate() for process in processes]
    for process, (_, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stderr.decode()

    # structlog's default configuration logs to stdout too: the result is the last line.
    first, second = (json.loads(stdout.decode().splitlines()[-1]) for stdout, _ in outputs)
    assert first == second
    ledger = SqliteLedger(path)
    try:
        stored = [item.checksum for item in await all_entries(ledger, "mona.linkedlist")]
    finally:
        await ledger.close()
    assert sorted(stored) == sorted(first)
