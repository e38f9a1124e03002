"""Repositories a git host cannot serve, against real servers on loopback.

The host answered, so these are `RemoteFailed`: they concern that one package,
never count toward assuming the upstream offline, and are never remembered as
"not found". Their detail carries the remote's own words as one clean line.
"""

from __future__ import annotations

import hashlib
import struct
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from dulwich.errors import GitProtocolError, HangupException
from dulwich.protocol import pkt_line

from tests.support.git_http import GitHttpServer, ServerKind
from tests.support.git_repos import GitRepo
from tests.upstreams.conftest import (
    LINKED_LIST,
    V1,
    MakeUpstream,
    WSGIApp,
    assert_clean,
    fetch_v1,
)
from upstreams.errors import RemoteFailed, TransportFailure, UpstreamError
from upstreams.git.transport import translate

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment


Repair = Callable[[], None]
Corrupt = Callable[[Path], Repair]


def _restorer(path: Path) -> Repair:
    intact = path.read_bytes()

    def restore() -> None:
        path.unlink(missing_ok=True)
        path.write_bytes(intact)

    return restore


def delete(path: Path) -> Repair:
    repair = _restorer(path)
    path.unlink()
    return repair


def truncate(path: Path) -> Repair:
    repair = _restorer(path)
    # Loose objects are written read-only.
    path.chmod(0o644)
    path.write_bytes(path.read_bytes()[:10])
    return repair


CORRUPTIONS = [pytest.param(delete, id="deleted"), pytest.param(truncate, id="truncated")]


@pytest.mark.parametrize("corrupt", CORRUPTIONS)
async def test_corrupt_repository_over_dulwich_is_remote_failed(
    tree_object: Path,
    make_upstream: MakeUpstream,
    git_server: GitHttpServer,
    tmp_path: Path,
    corrupt: Corrupt,
) -> None:
    repair = corrupt(tree_object)
    upstream = make_upstream()

    # Listing only needs refs, which are intact.
    assert (await upstream.list_releases(LINKED_LIST)).versions == (V1,)
    with pytest.raises(RemoteFailed) as caught:
        await fetch_v1(upstream, tmp_path)

    # dulwich's server fails generating the pack, after advertising the refs
    # and after its answer to the shallow fetch began: the stream is cut.
    assert not isinstance(caught.value, TransportFailure)
    assert caught.value.detail == (
        f"git: {git_server.url}/mona/LinkedList.git failed to serve the repository:"
        " The remote server unexpectedly closed the connection"
    )
    # Nothing of the failure stays behind: once repaired, the release is served.
    repair()
    assert (await fetch_v1(upstream, tmp_path)).version == V1


@pytest.mark.parametrize("corrupt", CORRUPTIONS)
async def test_corrupt_repository_over_git_http_backend_is_remote_failed(
    tree_object: Path,
    make_upstream: MakeUpstream,
    git_root: Path,
    tmp_path: Path,
    corrupt: Corrupt,
) -> None:
    corrupt(tree_object)
    kind: ServerKind = "git"
    with GitHttpServer(git_root, kind) as server:
        url = server.url
        upstream = make_upstream(template=f"{url}/{{scope}}/{{name}}.git")
        assert (await upstream.list_releases(LINKED_LIST)).versions == (V1,)
        with pytest.raises(RemoteFailed) as caught:
            await fetch_v1(upstream, tmp_path)

    # upload-pack reports on the fatal sideband channel, ending the message
    # with its NUL terminator (which dulwich shows as `?`).
    assert not isinstance(caught.value, TransportFailure)
    assert caught.value.detail == (
        f"git: {url}/mona/LinkedList.git failed to serve the repository:"
        " aborting due to possible repository corruption on the remote side"
    )


@pytest.mark.parametrize("corrupt", CORRUPTIONS)
async def test_corrupt_local_repository_is_remote_failed(
    tree_object: Path,
    git_root: Path,
    make_upstream: MakeUpstream,
    tmp_path: Path,
    corrupt: Corrupt,
) -> None:
    corrupt(tree_object)
    upstream = make_upstream(template=f"{git_root}/{{scope}}/{{name}}")

    with pytest.raises(RemoteFailed) as caught:
        await fetch_v1(upstream, tmp_path)

    assert caught.value.detail.startswith(
        f"git: {git_root}/mona/LinkedList failed to serve the repository: "
    )
    assert_clean(caught.value.detail)


def _empty_pack() -> bytes:
    # Version 2, no objects, then the SHA-1 trailer (gitformat-pack(5)).
    header = b"PACK" + struct.pack(">II", 2, 0)
    return header + hashlib.sha1(header, usedforsecurity=False).digest()


async def test_remote_that_does_not_send_the_tag_is_remote_failed(
    make_upstream: MakeUpstream, serve: Callable[[WSGIApp], str], tmp_path: Path
) -> None:
    """A server that advertises a tag, then answers the request for it with an empty pack."""

    def forgetful(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ["PATH_INFO"].endswith("/info/refs"):
            # Smart HTTP ref advertisement (gitprotocol-http(5)), no capabilities.
            body = b"".join(
                (
                    pkt_line(b"# service=git-upload-pack\n"),
                    pkt_line(None),
                    pkt_line(b"1" * 40 + b" refs/tags/1.0.0\x00\n"),
                    pkt_line(None),
                )
            )
            kind = "advertisement"
        else:
            environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            body = pkt_line(b"NAK\n") + _empty_pack()
            kind = "result"
        headers = [
            ("Content-Type", f"application/x-git-upload-pack-{kind}"),
            ("Content-Length", str(len(body))),
        ]
        start_response("200 OK", headers)
        return [body]

    url = serve(forgetful)
    upstream = make_upstream(template=url + "/{scope}/{name}.git")

    with pytest.raises(RemoteFailed) as caught:
        await fetch_v1(upstream, tmp_path)

    assert caught.value.detail == f"git: {url}/mona/LinkedList.git did not send tag 1.0.0"


def assert_no_credentials(error: UpstreamError) -> None:
    for text in (str(error), error.detail, error.url or "", repr(error.args)):
        assert "secret" not in text
        assert "user:" not in text


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        pytest.param(
            HangupException(
                [
                    b"fatal: unable to access 'https://user:secret@example.com/mona/x.git/':",
                    b"   The requested URL returned error: 403\n",
                ]
            ),
            "fatal: unable to access 'https://example.com/mona/x.git/':"
            " The requested URL returned error: 403",
            id="stderr-lines",
        ),
        pytest.param(
            GitProtocolError("pack-objects died.\x00?\n\t  "), "pack-objects died", id="terminated"
        ),
    ],
)
def test_remote_messages_become_clean_details(error: Exception, reason: str) -> None:
    """What a remote says reaches the detail as one clean line, without credentials."""
    translated = translate(error, "git", "https://user:secret@example.com/mona/x.git")

    assert isinstance(translated, RemoteFailed)
    assert translated.detail == (
        f"git: https://example.com/mona/x.git failed to serve the repository: {reason}"
    )
    assert_clean(translated.detail)
    assert_no_credentials(translated)


@pytest.fixture
def malformed_pack(tmp_path: Path) -> tuple[str, bytes]:
    """A commit whose tree has an entry mode that is not octal (gitformat: "<mode>
    <name>\\0<id>"), packed as stored: `git pack-objects` given object ids does not
    walk trees. Returns the commit id and the pack."""
    repo = GitRepo.init(tmp_path / "malformed")

    def git(*args: str, data: bytes = b"") -> str:
        done = subprocess.run(
            ["git", *args], input=data, cwd=repo.path, check=True, capture_output=True
        )
        return done.stdout.decode("latin-1").strip()

    blob = git("hash-object", "-w", "--stdin", data=b"// swift-tools-version:5.9\n")
    entry = b"9x9 Package.swift\0" + bytes.fromhex(blob)
    tree = git("hash-object", "-t", "tree", "-w", "--literally", "--stdin", data=entry)
    commit = repo.git("commit-tree", tree, "-m", "broken", when=1_700_000_000)
    ids = f"{commit}\n{tree}\n{blob}\n".encode()
    pack = subprocess.run(
        ["git", "pack-objects", "--stdout"],
        input=ids,
        cwd=repo.path,
        check=True,
        capture_output=True,
    ).stdout
    return commit, pack


async def test_a_malformed_tree_is_remote_failed_when_read(
    malformed_pack: tuple[str, bytes],
    make_upstream: MakeUpstream,
    serve: Callable[[WSGIApp], str],
    tmp_path: Path,
) -> None:
    """Packs are kept unparsed; a tree that does not parse fails the release reading it.

    git's and dulwich's servers both refuse to send such a tree, so a server
    here sends it, the way a broken or hostile one would.
    """
    commit, pack = malformed_pack

    def broken(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ["PATH_INFO"].endswith("/info/refs"):
            advertised = commit.encode() + b" refs/tags/1.0.0\x00\n"
            body = b"".join(
                (pkt_line(b"# service=git-upload-pack\n"), pkt_line(None), pkt_line(advertised))
            )
            body += pkt_line(None)
            kind = "advertisement"
        else:
            environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            body = pkt_line(b"NAK\n") + pack
            kind = "result"
        headers = [
            ("Content-Type", f"application/x-git-upload-pack-{kind}"),
            ("Content-Length", str(len(body))),
        ]
        start_response("200 OK", headers)
        return [body]

    url = serve(broken)
    upstream = make_upstream(template=url + "/{scope}/{name}.git")

    with pytest.raises(RemoteFailed) as caught:
        await fetch_v1(upstream, tmp_path)

    assert not isinstance(caught.value, TransportFailure)
    assert caught.value.detail.startswith(
        f"git: {url}/mona/LinkedList.git failed to serve the repository: "
    )
    assert caught.value.detail.endswith("invalid mode: invalid digit found in string")
    assert_clean(caught.value.detail)
