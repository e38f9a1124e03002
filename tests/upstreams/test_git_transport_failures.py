"""Failures of the git host itself, against real servers on loopback.

These are the `TransportFailure`s (`Unreachable`, `UpstreamTimeout`,
`HostFailed`): the only kind that counts toward assuming the upstream offline.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.git_http import GitHttpServer
from tests.upstreams.conftest import (
    LINKED_LIST,
    MakeUpstream,
    WSGIApp,
    assert_clean,
    fetch_v1,
)
from upstreams.errors import HostFailed, Unreachable, UpstreamTimeout

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --- no answer at all ------------------------------------------------------------------


async def test_refused_connection_is_unreachable_with_its_cause(
    make_upstream: MakeUpstream, tmp_path: Path
) -> None:
    port = closed_port()
    upstream = make_upstream(template=f"http://user:secret@127.0.0.1:{port}/{{scope}}/{{name}}.git")

    with pytest.raises(Unreachable) as listed:
        await upstream.list_releases(LINKED_LIST)
    with pytest.raises(Unreachable) as fetched:
        await fetch_v1(upstream, tmp_path)

    for caught in (listed, fetched):
        assert caught.value.detail == f"git: cannot connect to 127.0.0.1:{port}: Connection refused"
        assert caught.value.url == f"http://127.0.0.1:{port}/mona/LinkedList.git"


async def test_unresolvable_host_is_unreachable(make_upstream: MakeUpstream) -> None:
    # `.invalid` never resolves (RFC 6761 6.4), and a name over 255 octets
    # (RFC 1035 2.3.4) is refused by the resolver before any query is sent,
    # so no packet leaves the machine.
    host = ".".join(["unresolvable"] * 25) + ".invalid"
    upstream = make_upstream(template=f"http://{host}/{{scope}}/{{name}}.git", timeout=2)

    with pytest.raises(Unreachable) as caught:
        await upstream.list_releases(LINKED_LIST)

    assert not isinstance(caught.value, UpstreamTimeout)
    assert caught.value.detail.startswith(f"git: name resolution failed for {host}: ")
    assert_clean(caught.value.detail)


async def test_connection_closed_before_answering_is_unreachable(
    make_upstream: MakeUpstream,
) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]

        # Bounded, so a client that never comes cannot hold the test.
        listener.settimeout(5)

        def hang_up() -> None:
            # Read the request, then close without a word.
            connection, _ = listener.accept()
            with connection:
                connection.recv(65536)

        closer = threading.Thread(target=hang_up)
        closer.start()
        upstream = make_upstream(template=f"http://127.0.0.1:{port}/{{scope}}/{{name}}.git")
        try:
            with pytest.raises(Unreachable) as caught:
                await upstream.list_releases(LINKED_LIST)
        finally:
            closer.join()

    assert caught.value.detail.startswith(f"git: connection to 127.0.0.1:{port} failed: ")
    assert_clean(caught.value.detail)


async def test_tls_failure_is_unreachable(
    make_upstream: MakeUpstream, git_server: GitHttpServer
) -> None:
    # TLS spoken to a plain HTTP server: the handshake fails.
    https = git_server.url.replace("http://", "https://")
    upstream = make_upstream(template=f"{https}/{{scope}}/{{name}}.git")

    with pytest.raises(Unreachable) as caught:
        await upstream.list_releases(LINKED_LIST)

    port = git_server.url.rsplit(":", 1)[1]
    assert caught.value.detail.startswith(f"git: TLS with 127.0.0.1:{port} failed: ")


# --- an answer too late, or a server error ----------------------------------------------


async def test_server_stalling_while_sending_the_pack_times_out(
    tree_object: Path, make_upstream: MakeUpstream, git_server: GitHttpServer, tmp_path: Path
) -> None:
    upstream = make_upstream(timeout=0.5)
    git_server.upload_pack_fault = "stall"

    started = time.monotonic()
    with pytest.raises(UpstreamTimeout) as caught:
        await fetch_v1(upstream, tmp_path)

    assert time.monotonic() - started < 3
    assert (
        caught.value.detail == f"git: {git_server.url}/mona/LinkedList.git did not answer in time"
    )


def answering(status: int) -> WSGIApp:
    """A WSGI application that answers every request with `status` and no body."""

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        start_response(f"{status} {HTTPStatus(status).phrase}", [("Content-Length", "0")])
        return [b""]

    return app


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_server_errors_are_host_failures_naming_the_status(
    make_upstream: MakeUpstream, serve: Callable[[WSGIApp], str], status: int
) -> None:
    url = serve(answering(status))
    upstream = make_upstream(template=url + "/{scope}/{name}.git")

    with pytest.raises(HostFailed) as caught:
        await upstream.list_releases(LINKED_LIST)

    phrase = HTTPStatus(status).phrase
    assert caught.value.detail == f"git: {url}/mona/LinkedList.git answered HTTP {status} {phrase}"


async def test_proxy_demanding_authentication_is_unreachable(
    make_upstream: MakeUpstream, serve: Callable[[WSGIApp], str]
) -> None:
    url = serve(answering(407))
    upstream = make_upstream(template=url + "/{scope}/{name}.git")

    with pytest.raises(Unreachable) as caught:
        await upstream.list_releases(LINKED_LIST)

    assert "HTTP 407 Proxy Authentication Required" in caught.value.detail


async def test_service_unavailable_while_sending_the_pack_is_a_host_failure(
    tree_object: Path, make_upstream: MakeUpstream, git_server: GitHttpServer, tmp_path: Path
) -> None:
    # 503 speaks about the service even right after the refs were advertised.
    git_server.upload_pack_fault = 503

    with pytest.raises(HostFailed) as caught:
        await fetch_v1(make_upstream(), tmp_path)

    assert "HTTP 503 Service Unavailable" in caught.value.detail
