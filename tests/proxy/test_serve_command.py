"""`spm-proxy serve` as a user runs it: a real process, real port, clean shutdown."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback only
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_serve_runs_on_the_embedded_default_and_stops_cleanly(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "SPM_PROXY_SERVER__PORT": str(port)}
    env.pop("SPM_PROXY_CONFIG", None)
    process = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("spm-proxy")),
            "serve",
            "--data-dir",
            str(tmp_path / "data"),
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                status, headers, body = _get(f"http://127.0.0.1:{port}/availability")
                break
            except OSError:
                assert process.poll() is None, process.communicate()[1]
                assert time.monotonic() < deadline, "spm-proxy did not start listening"
                time.sleep(0.1)
        assert status == 200
        assert headers["Content-Version"] == "1"

        status, headers, body = _get(f"http://127.0.0.1:{port}/mona/Linked..List")
        assert status == 400
        assert headers["Content-Type"] == "application/problem+json"
        assert "invalid package name" in json.loads(body)["detail"]
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)

    assert process.returncode == 0, stderr
    # Not on a terminal: one JSON object per log line, one access line per request.
    events = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    served = [event for event in events if event["event"] == "request_served"]
    assert [(event["path"], event["status"]) for event in served] == [
        ("/availability", 200),
        ("/mona/Linked..List", 400),
    ]
    assert all("request_id" in event and "duration_ms" in event for event in served)
    # The data directory named by the flag is the one in use (its parts appear
    # as they are first written).
    assert (tmp_path / "data").is_dir()
    assert not (cwd_default := tmp_path / "spm-proxy-data").exists(), cwd_default


def test_serve_with_workers_shares_the_port_and_stops_cleanly(tmp_path: Path) -> None:
    port = _free_port()
    process = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("spm-proxy")),
            "serve",
            "--workers",
            "2",
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path / "data"),
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        workers: list[str] = []
        while len(workers) < 2 or not _listening(port):
            assert process.poll() is None, process.communicate()[1]
            assert time.monotonic() < deadline, "workers did not start"
            time.sleep(0.2)
            children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
            workers = children.read_text().split()
        statuses = {_get(f"http://127.0.0.1:{port}/availability")[0] for _ in range(20)}
        assert statuses == {200}
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert len(workers) >= 2


def _listening(port: int) -> bool:
    try:
        return _get(f"http://127.0.0.1:{port}/availability")[0] == 200
    except OSError:
        return False
