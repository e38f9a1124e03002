"""Shared machinery: results, the proxy and nginx as processes, wrk, a git server.

Everything listens on loopback ports chosen at start-up and is stopped by the
process id it was started with.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

SCOPE = "bench"
JSON_ACCEPT = "application/vnd.swift.registry.v1+json"
ZIP_ACCEPT = "application/vnd.swift.registry.v1+zip"
MB = 1_000_000
CORES = os.cpu_count() or 1


def log(message: str) -> None:
    """Progress goes to stderr; stdout carries only the result lines."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# -- lifetimes -----------------------------------------------------------------


class Managed:
    """Something with a lifetime: started on entering a `with` block, stopped on leaving."""

    def start(self) -> Self:
        return self

    def stop(self) -> None:
        return None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# -- results -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Result:
    """One scenario's line: the measured ratio (or amount, with its unit) and the figures."""

    name: str
    value: float | None
    target: str
    passed: bool | None
    figures: str
    unit: str = ""

    def line(self) -> str:
        value = "-" if self.value is None else f"{self.value:.2f}{self.unit}"
        verdict = {True: "PASS", False: "MISS", None: "SKIP"}[self.passed]
        return f"{self.name:<11} {value:>9}  target {self.target:<9} {verdict}  {self.figures}"


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def spread(values: Sequence[float], fmt: str = "{:.2f}") -> str:
    """`median (min-max)` of repeated measurements, or the single value."""
    if len(values) == 1:
        return fmt.format(values[0])
    low, high = fmt.format(min(values)), fmt.format(max(values))
    return f"{fmt.format(median(values))} ({low}-{high})"


# -- processes and ports -------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def http_get(url: str, accept: str | None = None, timeout: float = 600) -> bytes:
    headers = {"Accept": accept} if accept else {}
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - loopback only
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        data: bytes = response.read()
        return data


def download(url: str, accept: str | None = None, timeout: float = 600) -> int:
    """Read the whole body and throw it away; returns its length."""
    headers = {"Accept": accept} if accept else {}
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - loopback only
    total = 0
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        while chunk := response.read(1 << 20):
            total += len(chunk)
    return total


def wait_for_http(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            http_get(url, timeout=2)
        except (OSError, urllib.error.URLError):
            if process.poll() is not None:
                raise RuntimeError(f"{process.args!r} exited with {process.returncode}") from None
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not answer within {timeout:g} s") from None
            time.sleep(0.05)
        else:
            return


def stop_process(process: subprocess.Popen[bytes], sig: int = signal.SIGINT) -> None:
    """Stop one process this benchmark started, by its id; kill it if it lingers."""
    if process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def timed(func: Callable[[], object]) -> float:
    started = time.perf_counter()
    func()
    return time.perf_counter() - started


def clean_env(home: Path) -> dict[str, str]:
    """No user or system git configuration, a private HOME, a fixed identity."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_AUTHOR_NAME": "Bench Mark",
        "GIT_AUTHOR_EMAIL": "bench@example.com",
        "GIT_COMMITTER_NAME": "Bench Mark",
        "GIT_COMMITTER_EMAIL": "bench@example.com",
        "LC_ALL": "C",
        "TZ": "UTC",
    }


# -- the proxy -------------------------------------------------------------------


class Proxy(Managed):
    """`spm-proxy serve` as a subprocess with a git upstream on loopback.

    With `public_url`, the upstream answers for repositories at that base
    (the public host) and fetches them from `git_url` (its mirror).
    """

    def __init__(
        self,
        workdir: Path,
        git_url: str,
        data_dir: Path,
        *,
        workers: int = 1,
        public_url: str | None = None,
    ) -> None:
        self.workdir = workdir
        self.data_dir = data_dir
        self.workers = workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        workdir.mkdir(parents=True, exist_ok=True)
        self.config = workdir / f"proxy-{self.port}.toml"
        self.config.write_text(
            "[cache]\n"
            "list_ttl_seconds = 86400\n"
            "fill_timeout_seconds = 1800\n\n"
            "[[upstreams]]\n"
            'name = "bench-git"\n'
            'type = "git"\n'
            f'url_template = "{public_url or git_url}/{{scope}}/{{name}}.git"\n'
            "read_timeout_seconds = 300\n"
            + (f'fetch_url_template = "{git_url}/{{scope}}/{{name}}.git"\n' if public_url else "")
        )
        # stderr: the JSON log lines; stdout: nothing, ever (checked by the soak).
        self.log_path = workdir / f"proxy-{self.port}.log"
        self.stdout_path = workdir / f"proxy-{self.port}.out"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def start(self) -> Self:
        # `python -m proxy` rather than the console script, so that PYTHONPATH
        # can point the benchmark at another checkout of the code.
        command = [
            sys.executable, "-m", "proxy",
            "serve",
            "--config", str(self.config),
            "--port", str(self.port),
            "--data-dir", str(self.data_dir),
            "--workers", str(self.workers),
            "--log-format", "json",
        ]  # fmt: skip
        env = {key: value for key, value in os.environ.items() if not key.startswith("SPM_PROXY")}
        with self.log_path.open("ab") as log_file, self.stdout_path.open("ab") as out_file:
            self._process = subprocess.Popen(
                command, stdout=out_file, stderr=log_file, cwd=self.workdir, env=env
            )
        wait_for_http(f"{self.url}/availability", self._process)
        return self

    def stop(self) -> None:
        if self._process is not None:
            stop_process(self._process)
            self._process = None


# -- nginx -------------------------------------------------------------------------


class Nginx(Managed):
    """nginx from the system packages serving `root` with sendfile, in the foreground."""

    def __init__(self, workdir: Path, root: Path) -> None:
        self.prefix = workdir / f"nginx-{id(self)}"
        self.prefix.mkdir(parents=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        temp = {name: self.prefix / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
        self.conf = self.prefix / "nginx.conf"
        self.conf.write_text(
            # The master runs as root here; workers keep root so they can read
            # the private temporary directory.
            "user root;\n"
            "worker_processes auto;\n"
            "daemon off;\n"
            f"pid {self.prefix / 'nginx.pid'};\n"
            f"error_log {self.prefix / 'error.log'} warn;\n"
            "events { worker_connections 4096; }\n"
            "http {\n"
            f"  access_log {self.prefix / 'access.log'};\n"
            "  sendfile on;\n"
            "  tcp_nopush on;\n"
            "  keepalive_requests 1000000;\n"
            "  default_type application/json;\n"
            "  types { application/zip zip; }\n"
            f"  client_body_temp_path {temp['body']};\n"
            f"  proxy_temp_path {temp['proxy']};\n"
            f"  fastcgi_temp_path {temp['fastcgi']};\n"
            f"  uwsgi_temp_path {temp['uwsgi']};\n"
            f"  scgi_temp_path {temp['scgi']};\n"
            f"  server {{ listen 127.0.0.1:{self.port}; root {root}; }}\n"
            "}\n"
        )
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        with (self.prefix / "stderr.log").open("ab") as log_file:
            self._process = subprocess.Popen(
                [nginx, "-p", str(self.prefix), "-c", str(self.conf), "-e", "stderr"],
                stdout=log_file,
                stderr=log_file,
            )
        self._wait()
        return self

    def _wait(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        "nginx did not start: " + (self.prefix / "stderr.log").read_text()
                    ) from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self._process is not None:
            stop_process(self._process, signal.SIGTERM)
            self._process = None


# -- memory ------------------------------------------------------------------------------


def proc_status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise KeyError(key)


def descendants(pid: int) -> list[int]:
    """The processes below `pid` (workers, their build processes), deepest last."""
    found: list[int] = []
    pending = [pid]
    while pending:
        current = pending.pop()
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                children = [int(child) for child in (task / "children").read_text().split()]
            except OSError:
                continue
            found.extend(children)
            pending.extend(children)
    return found


def tree_status_kib(pid: int, key: str) -> int:
    """`key` of /proc/PID/status summed over `pid` and every process below it."""
    total = 0
    for member in [pid, *descendants(pid)]:
        try:
            total += proc_status_kib(member, key)
        except (OSError, KeyError):
            continue  # ended meanwhile
    return total


def reset_peak_rss(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0, needs to own or be root)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class RssSampler(Managed):
    """Samples VmRSS of one process until stopped; keeps the maximum.

    Also the maximum of RssAnon: VmRSS includes file pages mapped into the
    process (dulwich reads packs through mmap), which the kernel can drop at will.
    With `tree`, the sums over the process and every process below it (its
    build processes, or a supervisor's workers and theirs).
    """

    def __init__(self, pid: int, interval: float = 0.01, *, tree: bool = False) -> None:
        self.pid = pid
        self.interval = interval
        self._read = tree_status_kib if tree else proc_status_kib
        self.peak_kib = 0
        self.peak_anon_kib = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                rss = self._read(self.pid, "VmRSS")
                anon = self._read(self.pid, "RssAnon")
            except (OSError, KeyError):
                return
            self.peak_kib = max(self.peak_kib, rss)
            self.peak_anon_kib = max(self.peak_anon_kib, anon)
            self.samples += 1
            self._stop.wait(self.interval)

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
