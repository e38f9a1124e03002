"""`SqliteLeases` against the leases contract, plus holders that die."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from cache.embedded.leases import SqliteLeases
from cache.leases import Leases
from tests.contracts.leases import LeasesContract, OpenLeases

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class TestSqliteLeases(LeasesContract):
    @pytest.fixture
    def clock(self) -> Clock:
        return Clock()

    @pytest.fixture
    async def open_leases(self, tmp_path: Path, clock: Clock) -> AsyncIterator[OpenLeases]:
        opened: list[SqliteLeases] = []

        def open_leases() -> Leases:
            leases = SqliteLeases(tmp_path / "leases.sqlite3", clock=clock)
            opened.append(leases)
            return leases

        yield open_leases
        for leases in opened:
            await leases.close()

    @pytest.fixture
    def advance(self, clock: Clock) -> Callable[[float], None]:
        def advance(seconds: float) -> None:
            clock.now += seconds

        return advance


_HOLDER = """
import asyncio, sys, time
from pathlib import Path
from cache.embedded.leases import SqliteLeases

async def main():
    lease = await SqliteLeases(Path(sys.argv[1])).acquire("fill mona.a@1.0.0", 600)
    assert lease is not None
    print("held", flush=True)
    time.sleep(600)

asyncio.run(main())
"""


async def test_a_lease_whose_process_died_is_taken_over_at_once(tmp_path: Path) -> None:
    path = tmp_path / "leases.sqlite3"
    holder = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _HOLDER,
        str(path),
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        stdout=asyncio.subprocess.PIPE,
    )
    assert holder.stdout is not None
    assert (await holder.stdout.readline()).strip() == b"held"
    leases = SqliteLeases(path)
    try:
        assert await leases.acquire("fill mona.a@1.0.0", 600) is None  # alive: it holds

        holder.send_signal(signal.SIGKILL)
        await holder.wait()
        with capture_logs() as logs:
            taken = await leases.acquire("fill mona.a@1.0.0", 600)
    finally:
        await leases.close()

    assert taken is not None
    assert taken.token == 2
    assert [entry["event"] for entry in logs] == ["stale_lease_cleared"]


async def test_a_released_lease_taken_again_is_not_reported_as_stale(tmp_path: Path) -> None:
    path = tmp_path / "leases.sqlite3"
    first, second = SqliteLeases(path), SqliteLeases(path)
    try:
        held = await first.acquire("fill mona.a@1.0.0", 600)
        assert held is not None
        await first.release(held)
        with capture_logs() as logs:
            taken = await second.acquire("fill mona.a@1.0.0", 600)
    finally:
        await first.close()
        await second.close()

    assert taken is not None
    assert taken.token == 2
    assert logs == []
