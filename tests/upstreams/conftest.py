"""Git repositories in tmp_path, served over smart HTTP on loopback, registry
upstreams made per test, and what the tests of failures share."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

from cache.embedded import FileDocuments
from cache.embedded.index import DiskcacheIndex
from tests.support.git_http import GitHttpServer
from tests.support.git_repos import GitRepo
from tests.support.storage import Fetched, embedded_index, fetch_to
from upstreams.credentials import Credentials
from upstreams.git import GitUpstream, PackageLocation
from upstreams.model import PackageId, Version
from upstreams.registry import RegistryUpstream

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment

MakeUpstream = Callable[..., GitUpstream]
MakeRegistry = Callable[..., RegistryUpstream]


@pytest.fixture
def git_root(tmp_path: Path) -> Path:
    root = tmp_path / "remote"
    root.mkdir()
    return root


@pytest.fixture
def git_server(git_root: Path) -> Iterator[GitHttpServer]:
    with GitHttpServer(git_root) as server:
        yield server


@pytest.fixture
def names(tmp_path: Path) -> Iterator[DiskcacheIndex]:
    """Learned repository names live in the real embedded index."""
    with embedded_index(tmp_path / "index") as index:
        yield index


@pytest.fixture
async def make_upstream(
    tmp_path: Path, git_server: GitHttpServer, names: DiskcacheIndex
) -> AsyncIterator[MakeUpstream]:
    """Git upstreams, closed (with their build processes) after the test."""
    made: list[GitUpstream] = []

    def make(
        *,
        template: str | None = None,
        mirror_root: Path | None = None,
        overrides: Mapping[str, str | PackageLocation] | None = None,
        timeout: float = 5.0,
        name: str = "git",
        fetch_template: str | None = None,
    ) -> GitUpstream:
        upstream = GitUpstream(
            name=name,
            url_template=template or f"{git_server.url}/{{scope}}/{{name}}.git",
            fetch_url_template=fetch_template,
            mirror_root=mirror_root or tmp_path / "mirrors",
            overrides=overrides or {},
            timeout=timeout,
            names=names,
        )
        made.append(upstream)
        return upstream

    yield make
    for upstream in made:
        await upstream.close()


@pytest.fixture
async def make_registry(tmp_path: Path) -> AsyncIterator[MakeRegistry]:
    """Registry upstreams named `corp-registry` by default, closed after the test."""
    made: list[RegistryUpstream] = []

    def make(
        base_url: str,
        *,
        credentials: Credentials | None = None,
        timeout: float = 2.0,
        cache: Path | None = None,
        name: str = "corp-registry",
        download_hosts: tuple[str, ...] = (),
    ) -> RegistryUpstream:
        upstream = RegistryUpstream(
            name=name,
            base_url=base_url,
            credentials=credentials,
            connect_timeout=timeout,
            read_timeout=timeout,
            documents=FileDocuments(cache or tmp_path / "http-cache"),
            download_hosts=download_hosts,
        )
        made.append(upstream)
        return upstream

    yield make
    for upstream in made:
        await upstream.close()


# What the failure tests share.

MANIFEST = (
    "// swift-tools-version:5.8\nimport PackageDescription\n\n"
    'let package = Package(name: "LinkedList")\n'
)
LINKED_LIST = PackageId("mona", "LinkedList")
V1 = Version.parse("1.0.0")
WSGIApp = Callable[["WSGIEnvironment", "StartResponse"], Iterable[bytes]]


@pytest.fixture
def tree_object(git_root: Path) -> Path:
    """The loose object file of the tree that tag 1.0.0 of mona/LinkedList names."""
    repo = GitRepo.init(git_root / "mona" / "LinkedList")
    repo.write("Package.swift", MANIFEST)
    repo.write("Sources/LinkedList/LinkedList.swift", "public struct LinkedList {}\n")
    repo.commit("Release 1.0.0")
    repo.tag("1.0.0")
    tree = repo.rev_parse("1.0.0^{tree}")
    path = repo.path / ".git" / "objects" / tree[:2] / tree[2:]
    assert path.is_file()
    return path


async def fetch_v1(upstream: GitUpstream, tmp_path: Path) -> Fetched:
    archive = tmp_path / f"release-{time.monotonic_ns()}.zip"
    return await fetch_to(upstream, LINKED_LIST, V1, archive)


def assert_clean(detail: str) -> None:
    """One line of plain words: no control bytes, runs of spaces or stray punctuation."""
    assert detail == " ".join(detail.split())
    assert detail.isprintable()
    assert "?" not in detail
    assert detail[-1].isalnum() or detail[-1] == ")", detail


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def serve() -> Iterator[Callable[[WSGIApp], str]]:
    """Serve WSGI applications on loopback: each call returns one's base URL."""
    servers: list[tuple[WSGIServer, threading.Thread]] = []

    def start(app: WSGIApp) -> str:
        server = make_server("127.0.0.1", 0, app, handler_class=_Quiet)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
        thread.start()
        servers.append((server, thread))
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join()
