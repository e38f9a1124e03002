"""A git smart-HTTP server on loopback, serving every repository under a root.

`/mona/LinkedList.git` and `/mona/LinkedList` both reach `root/mona/LinkedList`,
like GitHub. The server is dulwich's, or C git's `git http-backend`. Requests
are counted so tests can assert how often a client advertised refs or fetched
a pack, and pack requests can be made to fail.
"""

from __future__ import annotations

import gzip
import io
import re
import threading
from collections.abc import Iterable
from http import HTTPStatus
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Literal
from wsgiref.simple_server import make_server

from dulwich.errors import NotGitRepository
from dulwich.repo import Repo
from dulwich.server import Backend
from dulwich.web import WSGIRequestHandlerLogger, WSGIServerLogger, make_wsgi_chain

from tests.support.git_cgi import http_backend_app

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment


class _RootBackend(Backend):
    """Maps a URL path to a repository under `root`, with or without `.git`."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self._root = root.resolve()
        # One Repo per path, closed in `close()`: opening one per request would
        # leave pack files to the garbage collector (ResourceWarning).
        self._repos: dict[Path, Repo] = {}

    def open_repository(self, path: str | bytes) -> Repo:
        # dulwich passes str for ref discovery and bytes for upload-pack.
        text = path.decode() if isinstance(path, bytes) else path
        relative = text.strip("/").removesuffix(".git")
        target = (self._root / relative).resolve()
        if not target.is_relative_to(self._root) or target == self._root:
            raise NotGitRepository(f"no repository at {text!r}")
        if not (target / ".git").is_dir() and not (target / "objects").is_dir():
            raise NotGitRepository(f"no repository at {text!r}")
        repo = self._repos.get(target)
        if repo is None:
            repo = Repo(str(target))
            self._repos[target] = repo
        return repo

    def close(self) -> None:
        for repo in self._repos.values():
            repo.close()
        self._repos.clear()


_WANT = re.compile(rb"want ([0-9a-f]{40})")


def _wanted_objects(environ: WSGIEnvironment) -> list[str] | None:
    """The objects an upload-pack request asks for (its `want` lines,
    gitprotocol-pack(5)), or None when it asks for no pack; the body stays readable."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    if body[:2] == b"\x1f\x8b":
        body = gzip.decompress(body)
    if b"command=" in body and b"command=fetch" not in body:
        return None
    wanted = [sha.decode("ascii") for sha in _WANT.findall(body)]
    return wanted or None


class _Server(WSGIServerLogger):
    # Workers and fills connect at once; socketserver's default backlog of 5
    # would drop their connection attempts into SYN retries.
    request_queue_size = 128


class _QuietHandler(WSGIRequestHandlerLogger):
    """Routes wsgiref's access log to logging instead of stderr."""

    def log_message(self, format: str, *args: object) -> None:
        return


ServerKind = Literal["dulwich", "git"]
# What a pack request gets instead of a pack: an HTTP status, or no answer at
# all until the server stops.
Fault = int | Literal["stall"]


class GitHttpServer:
    def __init__(self, root: Path, kind: ServerKind = "dulwich") -> None:
        self.root = root
        self.kind = kind
        self.upload_pack_requests = 0
        self.ref_advertisements = 0
        # Upload-pack requests that ask for objects (protocol v0 `want`s or a
        # v2 `fetch` command), whatever the protocol version: packs sent.
        self.pack_requests = 0
        # The object ids pack requests asked for, one entry per `want`.
        self.wanted: list[str] = []
        # Applies to POSTs to git-upload-pack. With protocol v2 (`git`
        # kind) ls-refs is one of those too; dulwich's server speaks v0, so
        # there it is exactly the request for a pack.
        self.upload_pack_fault: Fault | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._backend = _RootBackend(root)
        self._server: WSGIServerLogger | None = None
        self._thread: threading.Thread | None = None

    def _count(self, app: WSGIApplication) -> WSGIApplication:
        def counted(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
            method = environ.get("REQUEST_METHOD", "")
            path = environ.get("PATH_INFO", "")
            upload_pack = method == "POST" and path.endswith("/git-upload-pack")
            wanted = _wanted_objects(environ) if upload_pack else None
            with self._lock:
                if upload_pack:
                    self.upload_pack_requests += 1
                    self.pack_requests += wanted is not None
                    self.wanted.extend(wanted or ())
                elif method == "GET" and path.endswith("/info/refs"):
                    self.ref_advertisements += 1
                fault = self.upload_pack_fault if upload_pack else None
            if fault == "stall":
                self._stopping.wait()
                fault = 503
            if fault is not None:
                start_response(f"{fault} {HTTPStatus(fault).phrase}", [("Content-Length", "0")])
                return [b""]
            return app(environ, start_response)

        return counted

    def start(self) -> None:
        self._stopping.clear()
        served = (
            make_wsgi_chain(self._backend)
            if self.kind == "dulwich"
            else http_backend_app(self.root)
        )
        app = self._count(served)
        # Single-threaded on purpose: requests are short and stateless, and the
        # cached dulwich Repo objects are not safe to share across threads.
        self._server = make_server(
            "127.0.0.1",
            0,
            app,
            server_class=_Server,
            handler_class=_QuietHandler,
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="git-http-server",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        # A stalled request holds the single-threaded server until released.
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._backend.close()

    @property
    def url(self) -> str:
        assert self._server is not None, "server not started"
        return f"http://127.0.0.1:{self._server.server_port}"

    def reset_counters(self) -> None:
        with self._lock:
            self.upload_pack_requests = 0
            self.ref_advertisements = 0
            self.pack_requests = 0
            self.wanted.clear()

    def __enter__(self) -> GitHttpServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
