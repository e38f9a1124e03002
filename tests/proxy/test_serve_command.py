"""`spm-proxy serve` as a user runs it: a real process, real port, clean shutdown."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import time
from pathlib import Path

import aiohttp
import pytest

from tests.support.serving import (
    Served,
    alive,
    children,
    clean_environment,
    free_port,
    get,
    listening,
)


def test_serve_runs_on_the_embedded_default_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    env = clean_environment(SPM_PROXY_SERVER__PORT=str(port))
    with Served(["--data-dir", str(tmp_path / "data")], cwd=tmp_path, env=env) as served:
        served.wait_for("server_started")
        status, headers, body = get(f"http://127.0.0.1:{port}/availability")
        assert status == 200
        assert headers["Content-Version"] == "1"

        status, headers, body = get(f"http://127.0.0.1:{port}/mona/Linked..List")
        assert status == 400
        assert headers["Content-Type"] == "application/problem+json"
        assert "invalid package name" in json.loads(body)["detail"]
        assert served.stop(signal.SIGINT) == 0, served.output()

    # Not on a terminal: one JSON object per log line, one access line per request.
    served_lines = served.named("request_served")
    assert [(event["path"], event["status"]) for event in served_lines] == [
        ("/availability", 200),
        ("/mona/Linked..List", 400),
    ]
    assert all("request_id" in event and "duration_ms" in event for event in served_lines)
    # The data directory named by the flag is the one in use (its parts appear
    # as they are first written).
    assert (tmp_path / "data").is_dir()
    assert not (cwd_default := tmp_path / "spm-proxy-data").exists(), cwd_default


def test_one_process_announces_itself_as_one_json_event_and_prints_nothing_else(
    tmp_path: Path,
) -> None:
    port = free_port()
    args = ["--port", str(port), "--data-dir", str(tmp_path / "data"), "--log-format", "json"]
    with Served(args, cwd=tmp_path, env=clean_environment()) as served:
        started = served.wait_for("server_started")
        assert listening(port)
        assert served.stop() == 0
    # aiohttp's "======== Running on ... ========" banner is gone.
    assert served.stdout == []
    events = served.events()
    assert [event for event in events if event["event"] == "server_started"] == [started]
    assert started["host"] == "127.0.0.1"
    assert started["port"] == port
    assert started["pid"] == served.process.pid
    assert started["workers"] == 1


def test_flags_beat_the_environment(tmp_path: Path) -> None:
    from_env, from_flag = free_port(), free_port()
    env = clean_environment(SPM_PROXY_SERVER__PORT=str(from_env), SPM_PROXY_LOG__FORMAT="console")
    args = ["--port", str(from_flag), "--log-format", "json", "--data-dir", str(tmp_path / "d")]
    with Served(args, cwd=tmp_path, env=env) as served:
        assert served.wait_for("server_started")["port"] == from_flag
        assert listening(from_flag)
        assert not listening(from_env)
        assert served.stop() == 0


def test_workers_share_the_port_and_stop_cleanly(tmp_path: Path) -> None:
    port = free_port()
    args = ["--workers", "2", "--port", str(port), "--data-dir", str(tmp_path / "data")]
    with Served(args, cwd=tmp_path, env=clean_environment()) as served:
        started = served.wait_for("server_started")
        workers = children(served.process.pid)
        assert len(workers) == 2
        statuses = {get(f"http://127.0.0.1:{port}/availability")[0] for _ in range(20)}
        assert statuses == {200}
        assert served.stop(signal.SIGINT) == 0, served.output()
    assert not any(alive(pid) for pid in workers)
    assert served.stdout == []
    events = served.events()
    assert [event["event"] for event in events].count("server_started") == 1
    assert started["pid"] == served.process.pid
    assert (started["port"], started["workers"]) == (port, 2)
    assert events[-1]["event"] == "server_stopped"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_killed_worker_is_replaced_and_the_replacement_serves(
    tmp_path: Path, signum: signal.Signals
) -> None:
    port = free_port()
    args = ["--workers", "2", "--port", str(port), "--data-dir", str(tmp_path / "data")]
    with Served(args, cwd=tmp_path, env=clean_environment()) as served:
        served.wait_for("server_started")
        victim, survivor = children(served.process.pid)
        os.kill(victim, signal.SIGKILL)

        exited = served.wait_for("worker_exited")
        assert (exited["worker_pid"], exited["signal"]) == (victim, "SIGKILL")
        restarted = served.wait_for("worker_restarted")
        assert (restarted["previous_pid"], restarted["signal"]) == (victim, "SIGKILL")
        replacement = restarted["worker_pid"]
        assert sorted(children(served.process.pid)) == sorted([survivor, replacement])

        # The kernel spreads new connections over both listening workers.
        deadline = time.monotonic() + 60
        while not any(line["pid"] == replacement for line in served.named("request_served")):
            assert time.monotonic() < deadline, "the replacement never served a request"
            get(f"http://127.0.0.1:{port}/availability")
        assert served.stop(signum) == 0, served.output()
    assert not alive(survivor)
    assert not alive(replacement)
    assert served.stdout == []
    served.events()


@pytest.mark.parametrize("workers", ["1", "3"])
def test_a_server_that_cannot_start_exits_non_zero(tmp_path: Path, workers: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        args = ["--workers", workers, "--port", str(port), "--data-dir", str(tmp_path / "data")]
        with Served(args, cwd=tmp_path, env=clean_environment()) as served:
            assert served.wait(timeout=60) == 1
    assert served.stdout == []
    events = served.events()
    failed = next(event for event in events if event["event"] == "server_start_failed")
    assert "address already in use" in failed["error"]
    if workers != "1":
        assert any(event["event"] == "worker_start_failed" for event in events)
    assert not any(event["event"] == "server_started" for event in events)


async def _load(port: int, requests: int, long_id: str) -> list[int]:
    connector = aiohttp.TCPConnector(limit=48, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(number: int) -> int:
            # Every third request logs lines far above PIPE_BUF (4096 bytes).
            request_id = f"{long_id}-{number}" if number % 3 == 0 else f"short-{number}"
            url = f"http://127.0.0.1:{port}/availability"
            async with session.get(url, headers={"X-Request-Id": request_id}) as response:
                await response.read()
                return response.status

        return await asyncio.gather(*(one(number) for number in range(requests)))


async def test_every_log_line_stays_whole_under_load(tmp_path: Path) -> None:
    port = free_port()
    args = ["--workers", "3", "--port", str(port), "--data-dir", str(tmp_path / "data")]
    env = clean_environment(PYTHONUNBUFFERED="1", SPM_PROXY_LOG__FORMAT="json")
    long_id = "x" * 7000
    requests = 3000
    with Served(args, cwd=tmp_path, env=env) as served:
        served.wait_for("server_started")
        statuses = await _load(port, requests, long_id)
        assert set(statuses) == {200}
        deadline = time.monotonic() + 30
        while len(served.named("request_served")) < requests:
            assert time.monotonic() < deadline, "request lines are missing"
            await asyncio.sleep(0.1)
        assert served.stop() == 0, served.output()

    assert served.stdout == []
    lines = served.events()  # every single line parses as one JSON object
    logged = [line for line in lines if line["event"] == "request_served"]
    assert len(logged) == requests
    long_ids = {line["request_id"] for line in logged if line["request_id"].startswith("x")}
    assert long_ids == {f"{long_id}-{number}" for number in range(0, requests, 3)}
    assert len({line["pid"] for line in logged}) == 3


def test_what_a_dying_worker_prints_still_arrives_as_json_lines(tmp_path: Path) -> None:
    port = free_port()
    args = ["--workers", "2", "--port", str(port), "--data-dir", str(tmp_path / "data")]
    # The interpreter's own crash report bypasses logging: plain text on fd 2.
    env = clean_environment(PYTHONFAULTHANDLER="1", SPM_PROXY_LOG__FORMAT="json")
    with Served(args, cwd=tmp_path, env=env) as served:
        served.wait_for("server_started")
        victim = children(served.process.pid)[0]
        os.kill(victim, signal.SIGSEGV)
        exited = served.wait_for("worker_exited")
        assert (exited["worker_pid"], exited["signal"]) == (victim, "SIGSEGV")
        served.wait_for("worker_restarted")
        assert served.stop() == 0, served.output()
    relayed = [event for event in served.events() if event["event"] == "worker_output"]
    assert relayed, "the crash report was not relayed"
    assert all(event["worker_pid"] == victim for event in relayed)
    assert any("Fatal Python error: Segmentation fault" in event["line"] for event in relayed)


def test_workers_stop_when_their_parent_is_killed(tmp_path: Path) -> None:
    port = free_port()
    args = ["--workers", "2", "--port", str(port), "--data-dir", str(tmp_path / "data")]
    with Served(args, cwd=tmp_path, env=clean_environment()) as served:
        served.wait_for("server_started")
        workers = children(served.process.pid)
        served.process.kill()  # no chance to stop anything itself
        served.wait()
        deadline = time.monotonic() + 60
        while any(alive(pid) for pid in workers):
            assert time.monotonic() < deadline, "orphaned workers kept running"
            time.sleep(0.1)
    assert not listening(port)
