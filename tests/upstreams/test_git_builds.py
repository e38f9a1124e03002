"""The build processes: CPU-heavy git work runs outside the serving process.

The jobs here are real functions of the standard library and of the git
upstream, run in real spawned processes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from tests.support.git_repos import GitRepo
from tests.support.storage import fetch_to
from tests.upstreams.conftest import MakeUpstream
from upstreams.errors import InvalidRelease
from upstreams.git.builds import BuildPool, BuildProcessDied
from upstreams.model import PackageId, Version

ROOT = Path(__file__).parents[2]


@pytest.fixture
async def pool() -> AsyncIterator[BuildPool]:
    builds = BuildPool(2)
    yield builds
    await builds.close()


def _alive(pid: int) -> bool:
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


async def test_jobs_run_in_other_processes_at_a_lower_priority(pool: BuildPool) -> None:
    pid = await pool.run(os.getpid)
    assert pid != os.getpid()
    assert await pool.run(os.getpriority, os.PRIO_PROCESS, 0) > os.getpriority(os.PRIO_PROCESS, 0)


async def test_errors_arrive_with_their_kind_and_fields(
    pool: BuildPool, make_upstream: MakeUpstream, git_root: Path, tmp_path: Path
) -> None:
    with pytest.raises(FileNotFoundError):
        await pool.run(os.stat, "/nonexistent")
    # A release without a manifest fails in the build process with the
    # upstream's own error, upstream and URL included.
    repo = GitRepo.init(git_root / "mona" / "Empty")
    repo.write("README.md", "no manifest\n")
    repo.commit("empty")
    repo.tag("1.0.0")
    upstream = make_upstream()
    with pytest.raises(InvalidRelease) as raised:
        await fetch_to(upstream, PackageId("mona", "Empty"), Version.parse("1.0.0"), tmp_path / "a")
    assert raised.value.upstream == "git"
    assert raised.value.url is not None
    assert raised.value.url.endswith("/mona/Empty.git")
    assert "no Package.swift" in raised.value.detail


async def test_what_a_build_logs_is_logged_by_the_server(
    make_upstream: MakeUpstream, git_root: Path, tmp_path: Path
) -> None:
    repo = GitRepo.init(git_root / "mona" / "LinkedList")
    repo.write("Package.swift", "// swift-tools-version:5.8\nimport PackageDescription\n")
    repo.commit("one")
    repo.tag("1.0.0")
    with capture_logs() as logs:
        await fetch_to(
            make_upstream(), PackageId("mona", "LinkedList"), Version.parse("1.0.0"), tmp_path / "a"
        )
    archived = next(event for event in logs if event["event"] == "release_archived")
    fetched = next(event for event in logs if event["event"] == "mirror_fetched")
    assert archived["build_pid"] != os.getpid()
    assert (archived["package"], archived["tag"], archived["log_level"]) == (
        "mona.LinkedList",
        "1.0.0",
        "info",
    )
    assert fetched["tag"] == "1.0.0"


async def test_a_killed_build_process_fails_its_job_and_the_next_one_gets_a_new_pool(
    pool: BuildPool,
) -> None:
    victim = await pool.run(os.getpid)
    with pytest.raises(BuildProcessDied):
        await pool.run(os.kill, victim, signal.SIGKILL)
    assert await pool.run(os.getpid) != victim


async def test_build_processes_stop_with_the_pool(pool: BuildPool) -> None:
    pid = await pool.run(os.getpid)
    await pool.close()
    assert not _alive(pid)


_ORPHANED = """
import asyncio, os, sys, time
from upstreams.git.builds import BuildPool, BuildProcessDied

async def main():
    pid = await BuildPool(1).run(os.getpid)
    print(pid, flush=True)
    time.sleep(600)

asyncio.run(main())
"""


async def test_build_processes_end_when_their_server_is_killed() -> None:
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _ORPHANED, stdout=asyncio.subprocess.PIPE, cwd=ROOT
    )
    assert server.stdout is not None
    build = int(await server.stdout.readline())
    assert _alive(build)
    server.kill()  # no chance to shut anything down
    await server.wait()
    async with asyncio.timeout(30):
        while _alive(build):  # noqa: ASYNC110 - another process's end, no event to wait on
            await asyncio.sleep(0.05)


def _unpicklable() -> None:
    error = ValueError("carries a lambda")
    error.callback = lambda: None  # type: ignore[attr-defined]
    raise error


async def test_an_error_that_cannot_cross_arrives_described(pool: BuildPool) -> None:
    with pytest.raises(RuntimeError, match="ValueError: carries a lambda"):
        await pool.run(_unpicklable)


async def test_a_backlog_runs_to_the_end_while_build_processes_are_replaced() -> None:
    # With the standard library's max_tasks_per_child, CPython up to 3.15.0b3
    # may never replace a process that reached its limit while jobs are
    # queued, and they wait forever (gh-115634).
    pool = BuildPool(1, jobs_per_process=2)
    try:
        async with asyncio.timeout(60):
            pids = await asyncio.gather(*(pool.run(os.getpid) for _ in range(12)))
    finally:
        await pool.close()
    assert len(set(pids)) >= 2
