"""Shallow mirrors: a release fetches only what its tag needs, and builds the
bytes a full-history mirror builds (the ledger must never see a change).

Both server kinds run every test: C git's `http-backend` (what git hosts run)
and dulwich's server (which ignores a shallow fetch's haves, so it sends
whole trees; correctness must not depend on the server being clever).
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import structlog
from dulwich.protocol import pkt_line
from dulwich.web import make_wsgi_chain

from tests.support.git_http import GitHttpServer, ServerKind, _RootBackend
from tests.support.release_history import publish_release_history, tag_later_release
from tests.support.storage import Fetched, fetch_to
from tests.upstreams.conftest import MakeUpstream, WSGIApp
from upstreams.git import GitUpstream
from upstreams.git.mirror import MirrorRepo, mirror_path
from upstreams.model import PackageId, Version

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment

PACKAGE = PackageId("mona", "LinkedList")


@pytest.fixture(params=["git", "dulwich"])
def server(request: pytest.FixtureRequest, git_root: Path) -> Iterator[GitHttpServer]:
    kind: ServerKind = request.param
    with GitHttpServer(git_root, kind) as served:
        yield served


def _checksums(fetched: Fetched) -> dict[str, str]:
    """What the ledger records for a release: the archive's and every manifest's SHA-256."""
    found = {"source-archive": hashlib.sha256(fetched.archive.read_bytes()).hexdigest()}
    for manifest in fetched.manifests:
        found[manifest.filename] = hashlib.sha256(manifest.content).hexdigest()
    return found


async def _build(upstream: GitUpstream, version: str, tmp_path: Path) -> dict[str, str]:
    archive = tmp_path / f"{version}-{time.monotonic_ns()}.zip"
    return _checksums(await fetch_to(upstream, PACKAGE, Version.parse(version), archive))


def _objects(mirror: Path) -> int:
    """Distinct objects in a mirror (completing a thin pack may store a delta base twice)."""
    listing = subprocess.run(
        ["git", f"--git-dir={mirror}", "cat-file", "--batch-all-objects", "--batch-check"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return len({line.split()[0] for line in listing.splitlines()})


def _full_history_mirror(source: Path, mirror: Path) -> None:
    """A mirror with the whole history, as earlier versions kept them."""
    mirror.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["git", "clone", "--quiet", "--mirror", str(source), str(mirror)],
        check=True,
        capture_output=True,
    )


async def test_shallow_mirror_builds_what_a_full_history_mirror_builds(
    server: GitHttpServer, git_root: Path, make_upstream: MakeUpstream, tmp_path: Path
) -> None:
    repo = publish_release_history(git_root)
    template = f"{server.url}/{{scope}}/{{name}}.git"
    shallow = make_upstream(template=template, mirror_root=tmp_path / "shallow")
    full = make_upstream(template=template, mirror_root=tmp_path / "full")
    public = f"{server.url}/mona/LinkedList.git"
    full_mirror = mirror_path(tmp_path / "full", public)
    _full_history_mirror(repo.path, full_mirror)
    versions = ["1.0.0", "1.1.0", "1.2.0-beta.1", "1.2.0"]
    reference = {version: await _build(full, version, tmp_path) for version in versions}

    # A middle release cold, then later ones, then earlier ones: each fetch
    # negotiates against whatever the mirror holds by then.
    built = {}
    for version in ["1.1.0", "1.2.0", "1.2.0-beta.1", "1.0.0"]:
        built[version] = await _build(shallow, version, tmp_path)
    assert built == reference

    shallow_mirror = mirror_path(tmp_path / "shallow", public)
    assert (shallow_mirror / "shallow").is_file()
    assert not (full_mirror / "shallow").exists()
    assert _objects(shallow_mirror) < _objects(full_mirror)

    # A release tagged later: fetched into both mirrors (the full one keeps
    # working, shallowly from now on), and every earlier release still builds
    # the same bytes in both after it.
    tag_later_release(repo)
    later_shallow = await _build(shallow, "2.0.0", tmp_path)
    assert await _build(full, "2.0.0", tmp_path) == later_shallow
    for version in versions:
        assert await _build(shallow, version, tmp_path) == reference[version]
        assert await _build(full, version, tmp_path) == reference[version]


async def test_a_cold_release_fetches_its_tree_and_none_of_the_history(
    server: GitHttpServer, git_root: Path, make_upstream: MakeUpstream, tmp_path: Path
) -> None:
    repo = publish_release_history(git_root)
    upstream = make_upstream(template=f"{server.url}/{{scope}}/{{name}}.git")

    server.reset_counters()
    await _build(upstream, "1.2.0", tmp_path)

    mirror = mirror_path(tmp_path / "mirrors", f"{server.url}/mona/LinkedList.git")
    tree = repo.git("ls-tree", "-r", "-t", "1.2.0").splitlines()
    # Exactly the tagged commit, its root tree and everything in it.
    assert _objects(mirror) == 1 + 1 + len(tree)
    assert server.pack_requests == 1
    shallow = (mirror / "shallow").read_text().split()
    assert shallow == [repo.rev_parse("1.2.0")]


async def test_later_releases_fetch_only_what_the_mirror_lacks(
    git_root: Path, make_upstream: MakeUpstream, tmp_path: Path
) -> None:
    repo = publish_release_history(git_root)
    with GitHttpServer(git_root, "git") as server:
        upstream = make_upstream(template=f"{server.url}/{{scope}}/{{name}}.git")
        mirror = mirror_path(tmp_path / "mirrors", f"{server.url}/mona/LinkedList.git")
        await _build(upstream, "1.1.0", tmp_path)
        before = _objects(mirror)

        await _build(upstream, "1.2.0-beta.1", tmp_path)

        # The tag object, the commit, and the trees and blobs that changed:
        # root, Sources/, Sources/LinkedList/, Node.swift and Shared.swift
        # (both back to 1.0.0's content, which this shallow mirror never had).
        changed = repo.git("diff", "--name-only", "v1.1.0", "1.2.0-beta.1").splitlines()
        assert sorted(changed) == [
            "Sources/LinkedList/Node.swift",
            "Sources/LinkedList/Shared.swift",
        ]
        assert _objects(mirror) - before == 2 + 3 + len(changed)


def test_haves_offer_the_nearest_releases_first(git_root: Path, tmp_path: Path) -> None:
    # Stateless negotiation sends a bounded number of haves: the releases
    # nearest the one wanted share the most files with it.
    repo = publish_release_history(git_root)
    mirror = tmp_path / "mirror.git"
    _full_history_mirror(repo.path, mirror)
    commits = {tag: repo.rev_parse(f"{tag}^{{commit}}") for tag in repo.git("tag").split()}

    with MirrorRepo(str(mirror)) as opened:
        offered = [sha.decode() for sha in opened.tag_commits(Version.parse("1.2.0-beta.1"))]
        walker = opened.get_graph_walker()

    assert offered == [commits[t] for t in ("1.2.0-beta.1", "1.2.0", "v1.1.0", "1.0.0")]
    assert [next(walker) for _ in range(5)][-1] is None
    assert walker.shallow == set()


def _pkt_lines(data: bytes) -> list[bytes | None]:
    """pkt-lines (gitprotocol-common(5)), None for each flush-pkt."""
    found: list[bytes | None] = []
    while data:
        size = int(data[:4], 16)
        found.append(data[4:size] if size else None)
        data = data[max(size, 4) :]
    return found


def _without_shallow(app: WSGIApp) -> WSGIApp:
    """`app`'s ref advertisement with the `shallow` capability taken out."""

    def wrapped(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if not environ["PATH_INFO"].endswith("/info/refs"):
            return app(environ, start_response)
        captured: list[tuple[str, list[tuple[str, str]]]] = []
        written = io.BytesIO()

        def capture(status: str, headers: list[tuple[str, str]], exc_info: object = None) -> Any:
            captured.append((status, headers))
            return written.write

        for chunk in app(environ, capture):
            written.write(chunk)
        lines = _pkt_lines(written.getvalue())
        first = next(index for index, line in enumerate(lines) if line and b"\0" in line)
        line = lines[first]
        assert line is not None
        lines[first] = line.replace(b" shallow", b"")
        body = b"".join(pkt_line(line) for line in lines)
        status, headers = captured[0]
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        start_response(status, [*headers, ("Content-Length", str(len(body)))])
        return [body]

    return wrapped


@pytest.mark.usefixtures("structlog_defaults")
async def test_a_server_without_shallow_support_sends_the_whole_history(
    git_root: Path, make_upstream: MakeUpstream, serve: Callable[[WSGIApp], str], tmp_path: Path
) -> None:
    repo = publish_release_history(git_root)
    backend = _RootBackend(git_root)
    url = serve(_without_shallow(make_wsgi_chain(backend)))
    upstream = make_upstream(template=f"{url}/{{scope}}/{{name}}.git")
    reference = make_upstream(mirror_root=tmp_path / "reference")

    try:
        with structlog.testing.capture_logs() as logs:
            built = await _build(upstream, "1.2.0", tmp_path)
    finally:
        backend.close()

    assert built == await _build(reference, "1.2.0", tmp_path)
    mirror = mirror_path(tmp_path / "mirrors", f"{url}/mona/LinkedList.git")
    assert not (mirror / "shallow").exists()
    history = repo.git("rev-list", "--objects", "1.2.0").splitlines()
    assert _objects(mirror) == len(history)
    assert [log["event"] for log in logs if log["event"].startswith("mirror_fetch")] == [
        "mirror_fetch_not_shallow",
        "mirror_fetched",
    ]
