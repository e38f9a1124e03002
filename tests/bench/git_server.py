"""`git http-backend` behind a threaded loopback HTTP server, counting what crosses it.

One process per request (RFC 3875 CGI), the response streamed back as the
backend writes it; every response closes its connection. Counts ref
advertisements, pack requests and the bytes of request and response bodies,
so scenarios can compare transfers side by side.
"""

from __future__ import annotations

import gzip
import io
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any, Self
from urllib.parse import unquote

from tests.bench.common import Managed, clean_env


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
        counted = _CountingWriter(self.wfile)
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
        command = ["git", "http-backend"]
        if self.server.backend.niceness:
            command = ["nice", "-n", str(self.server.backend.niceness), *command]
        # Its complaints (a repository that does not exist, asked on purpose)
        # are not the benchmark's output.
        process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
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
            shutil.copyfileobj(process.stdout, counted, 1 << 16)
        finally:
            process.stdout.close()
            process.wait()
            feeder.join()
            self.server.backend.transferred(len(body), counted.written)


class _CountingWriter:
    """A response body's bytes on their way to the client, counted."""

    def __init__(self, target: io.BufferedIOBase) -> None:
        self.target = target
        self.written = 0

    def write(self, data: bytes) -> int:
        self.target.write(data)
        self.written += len(data)
        return len(data)


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
    # Scenarios that measure the proxy's own share of the machine lower the
    # priority of the git side, which stands in for a remote host.
    niceness: int = 0
    fetches: int = 0
    advertisements: int = 0
    # Request and response bodies, in bytes: what crossed the wire for git.
    received: int = 0
    sent: int = 0
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

    def transferred(self, received: int, sent: int) -> None:
        with self._lock:
            self.received += received
            self.sent += sent

    def reset(self) -> None:
        with self._lock:
            self.fetches = 0
            self.advertisements = 0
            self.received = 0
            self.sent = 0

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
