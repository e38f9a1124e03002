"""Shared machinery: results, the proxy and nginx as processes, wrk, a git server.

Everything listens on loopback ports chosen at start-up and is stopped by the
process id it was started with.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self
from urllib.parse import unquote

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
    """`spm-proxy serve` as a subprocess with a git upstream on loopback."""

    def __init__(self, workdir: Path, git_url: str, data_dir: Path, *, workers: int = 1) -> None:
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
            f'url_template = "{git_url}/{{scope}}/{{name}}.git"\n'
            "read_timeout_seconds = 300\n"
        )
        self.log_path = workdir / f"proxy-{self.port}.log"
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
        with self.log_path.open("ab") as log_file:
            self._process = subprocess.Popen(
                command, stdout=log_file, stderr=log_file, cwd=self.workdir, env=env
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


# -- wrk -----------------------------------------------------------------------------

_WRK_SCRIPT = """\
local paths = {%(paths)s}
local headers = {%(headers)s}
local counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", paths[(counter %% #paths) + 1], headers)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%%d,"bytes":%%d,"duration_us":%%d,"errors":%%d,"status":%%d}\\n',
    summary.requests, summary.bytes, summary.duration,
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""


@dataclass(frozen=True, slots=True)
class WrkRun:
    requests: int
    bytes: int
    seconds: float

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.seconds

    @property
    def megabytes_per_second(self) -> float:
        return self.bytes / self.seconds / MB


def _lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string literal is a valid Lua string literal here


def wrk(
    base_url: str,
    paths: Sequence[str],
    *,
    connections: int,
    seconds: float,
    workdir: Path,
    headers: dict[str, str] | None = None,
    threads: int = CORES,
) -> WrkRun:
    script = workdir / f"wrk-{time.monotonic_ns()}.lua"
    script.write_text(
        _WRK_SCRIPT
        % {
            "paths": ", ".join(_lua_string(path) for path in paths),
            "headers": ", ".join(
                f"[{_lua_string(key)}] = {_lua_string(value)}"
                for key, value in (headers or {}).items()
            ),
        }
    )
    command = [
        shutil.which("wrk") or "wrk",
        f"-t{min(threads, connections)}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout", "120s",
        "-s", str(script),
        base_url,
    ]  # fmt: skip
    completed = subprocess.run(
        command, capture_output=True, check=False, timeout=seconds + 180, text=True
    )
    script.unlink()
    found = [line for line in completed.stdout.splitlines() if line.startswith("WRK_JSON ")]
    if completed.returncode != 0 or not found:
        raise RuntimeError(f"wrk failed: {completed.stdout}\n{completed.stderr}")
    summary = json.loads(found[-1].removeprefix("WRK_JSON "))
    if summary["errors"] or summary["status"]:
        raise RuntimeError(f"wrk saw errors against {base_url}: {summary}")
    return WrkRun(summary["requests"], summary["bytes"], summary["duration_us"] / 1e6)


# -- memory ------------------------------------------------------------------------------


def proc_status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise KeyError(key)


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
    """

    def __init__(self, pid: int, interval: float = 0.01) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_kib = 0
        self.peak_anon_kib = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                rss = proc_status_kib(self.pid, "VmRSS")
                anon = proc_status_kib(self.pid, "RssAnon")
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


# -- git over smart HTTP ---------------------------------------------------------------------


def _is_fetch(body: bytes) -> bool:
    """An upload-pack request that asks for objects (v0 wants, or a v2 fetch command)."""
    if body[:2] == b"\x1f\x8b":
        body = gzip.decompress(body)
    if b"command=" in body:
        return b"command=fetch" in body
    return b"want " in body


class _Handler(BaseHTTPRequestHandler):
    server: GitHttpBackend.Server
    # One response per connection, ended by closing it: no length needed.
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        path, _, query = self.path.partition("?")
        body = self._read_body() if self.command == "POST" else b""
        self.server.backend.count(self.command, path, body)
        env = {
            **clean_env(self.server.backend.root),
            "GIT_PROJECT_ROOT": str(self.server.backend.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": unquote(path),
            "QUERY_STRING": query,
            "REMOTE_ADDR": "127.0.0.1",
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
        }
        for header, variable in (
            ("Content-Encoding", "HTTP_CONTENT_ENCODING"),
            ("Git-Protocol", "HTTP_GIT_PROTOCOL"),
        ):
            if self.headers.get(header):
                env[variable] = self.headers[header]
        process = subprocess.Popen(
            ["git", "http-backend"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
        )
        assert process.stdin is not None
        assert process.stdout is not None
        feeder = threading.Thread(target=_feed, args=(process.stdin, body), daemon=True)
        feeder.start()
        try:
            status, headers = 200, []
            while (line := process.stdout.readline().rstrip(b"\r\n")) != b"":
                key, _, value = line.decode("latin-1").partition(":")
                if key.lower() == "status":
                    status = int(value.split()[0])
                else:
                    headers.append((key, value.strip()))
            self.send_response(status)
            for key, value in headers:
                self.send_header(key, value)
            self.send_header("Connection", "close")
            self.end_headers()
            shutil.copyfileobj(process.stdout, self.wfile, 1 << 16)
        finally:
            process.stdout.close()
            process.wait()
            feeder.join()


def _feed(pipe: IO[bytes], body: bytes) -> None:
    try:
        pipe.write(body)
    except BrokenPipeError:
        pass
    finally:
        pipe.close()


@dataclass
class GitHttpBackend(Managed):
    """`git http-backend` behind a threaded loopback HTTP server, counting fetches.

    Serves the bare repositories under `root` (`/scope/name.git`) to dulwich,
    SwiftPM and the `git` command alike.
    """

    root: Path
    fetches: int = 0
    advertisements: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: GitHttpBackend.Server | None = None
    _thread: threading.Thread | None = None

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 512
        backend: GitHttpBackend

    def count(self, method: str, path: str, body: bytes) -> None:
        with self._lock:
            if method == "GET" and path.endswith("/info/refs"):
                self.advertisements += 1
            elif method == "POST" and path.endswith("/git-upload-pack") and _is_fetch(body):
                self.fetches += 1

    def reset(self) -> None:
        with self._lock:
            self.fetches = 0
            self.advertisements = 0

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> Self:
        self._server = self.Server(("127.0.0.1", 0), _Handler)
        self._server.backend = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="git-http-backend", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()


# -- the run's context ------------------------------------------------------------------------


class Context(Managed):
    """What every scenario shares: options, the working directory, the git server."""

    def __init__(self, *, quick: bool, keep: bool) -> None:
        self.quick = quick
        self.keep = keep
        self.repeats = 1 if quick else 3
        self.load_seconds = 2.0 if quick else 5.0
        self.workdir = Path(tempfile.mkdtemp(prefix="spm-proxy-bench-"))
        self.git_root = self.workdir / "git-root"
        self.git_root.mkdir()
        self.git = GitHttpBackend(self.git_root)

    def path(self, name: str) -> Path:
        target = self.workdir / name
        target.mkdir(parents=True, exist_ok=True)
        return target

    def proxy(self, data_dir: Path, *, workers: int = 1) -> Proxy:
        return Proxy(self.workdir / "proxies", self.git.url, data_dir, workers=workers)

    def start(self) -> Self:
        self.git.start()
        return self

    def stop(self) -> None:
        self.git.stop()
        if self.keep:
            log(f"kept {self.workdir}")
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)
