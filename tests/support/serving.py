"""`spm-proxy` as a user runs it: a real process whose output is read as it comes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

SPM_PROXY = str(Path(sys.executable).with_name("spm-proxy"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - loopback only
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def raw_exchange(port: int, data: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send `data` byte for byte, read until the server closes: status, headers, body.

    For requests no HTTP client library would send. Header names are lower-cased.
    """
    received = bytearray()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        # The server may answer and close before it has read everything. No
        # half-close: aiohttp drops a connection at EOF, before answering.
        with contextlib.suppress(ConnectionError):
            connection.sendall(data)
        with contextlib.suppress(ConnectionResetError):
            while chunk := connection.recv(65536):
                received += chunk
    head, separator, body = bytes(received).partition(b"\r\n\r\n")
    assert separator, f"no complete HTTP response: {bytes(received[:300])!r}"
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


def listening(port: int) -> bool:
    try:
        return get(f"http://127.0.0.1:{port}/availability")[0] == 200
    except OSError:
        return False


def clean_environment(**extra: str) -> dict[str, str]:
    """The test's environment without any SPM_PROXY_* setting, plus `extra`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SPM_PROXY")}
    return {**env, **extra}


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except FileNotFoundError:
        return []
    return [int(child) for child in text.split()]


def alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


class Served:
    """`spm-proxy serve ARGS`; stdout and stderr are collected line by line."""

    def __init__(self, args: Sequence[str], *, cwd: Path, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [SPM_PROXY, "serve", *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.stdout: list[bytes] = []
        self.stderr: list[bytes] = []
        self._readers = [
            threading.Thread(target=self._collect, args=(stream, lines), daemon=True)
            for stream, lines in (
                (self.process.stdout, self.stdout),
                (self.process.stderr, self.stderr),
            )
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _collect(stream: Any, lines: list[bytes]) -> None:
        for line in iter(stream.readline, b""):
            lines.append(line)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.process.poll() is None:
            for pid in children(self.process.pid):
                os.kill(pid, signal.SIGKILL)
            self.process.kill()
        self.process.wait(timeout=30)
        for reader in self._readers:
            reader.join(timeout=10)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()

    def events(self) -> list[dict[str, Any]]:
        """Every stderr line as a JSON object; fails on the first line that is not one."""
        parsed = []
        for number, line in enumerate(list(self.stderr), 1):
            assert line.endswith(b"\n"), f"line {number} is cut: {line[:200]!r}"
            try:
                record = json.loads(line)
            except ValueError as error:
                raise AssertionError(f"line {number} is not JSON: {line[:300]!r}") from error
            assert isinstance(record, dict), f"line {number} is not an object: {line[:300]!r}"
            parsed.append(record)
        return parsed

    def named(self, event: str) -> list[dict[str, Any]]:
        found = []
        for line in list(self.stderr):
            if f'"event": "{event}"'.encode() in line:
                found.append(json.loads(line))
        return found

    def wait_for(
        self, event: str, where: Callable[[dict[str, Any]], bool] = bool, timeout: float = 60
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for record in self.named(event):
                if where(record):
                    return record
            assert self.process.poll() is None or event in {"server_stopped"}, self.output()
            assert time.monotonic() < deadline, f"no {event} event:\n{self.output()}"
            time.sleep(0.1)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 60) -> int:
        self.process.send_signal(signum)
        status = self.process.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=10)
        return status

    def wait(self, timeout: float = 60) -> int:
        status = self.process.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=10)
        return status

    def output(self) -> str:
        return b"".join(self.stdout + self.stderr).decode("utf-8", "replace")[-5000:]
