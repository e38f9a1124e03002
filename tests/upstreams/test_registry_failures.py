"""How a registry upstream's failures are classified and told: the host could
not be reached, the host failed, or its answer was not HTTP. Loopback only:
name resolution is failed by hand, and "TLS" is spoken to a plain HTTP port."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from structlog.testing import capture_logs
from yarl import URL

from tests.support.registry_server import Fault, RegistryServer
from tests.upstreams.conftest import MakeRegistry
from upstreams.credentials import Credentials
from upstreams.errors import (
    HostFailed,
    InvalidUpstreamResponse,
    Unreachable,
    UpstreamError,
)
from upstreams.model import PackageId
from upstreams.registry import RegistryUpstream

PACKAGE = PackageId("mona", "LinkedList")
SECRET = "s3cr3t-t0ken-value"
BEARER = Credentials("bearer", SECRET)
# What library messages wrap a cause in, and must not reach a detail.
NOISE = ("[", "]", "Errno", "ssl:default", "Connect call failed", "_ssl.c", "\n")

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


# These tests assert what was logged.
pytestmark = pytest.mark.usefixtures("structlog_defaults")


async def _raw_server(handler: Handler) -> tuple[asyncio.Server, str]:
    """A TCP server on loopback that answers as `handler` says, HTTP or not."""
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, f"127.0.0.1:{server.sockets[0].getsockname()[1]}"


async def _failure(upstream: RegistryUpstream) -> UpstreamError:
    with capture_logs() as logs, pytest.raises(UpstreamError) as caught:
        await upstream.list_releases(PACKAGE)
    error = caught.value
    assert error.upstream == "corp-registry"
    assert error.detail.startswith("corp-registry: ")
    for text in (error.detail, str(logs)):
        assert SECRET not in text
    for noise in NOISE:
        assert noise not in error.detail
    return error


async def test_a_refused_connection_is_unreachable_with_its_cause(
    make_registry: MakeRegistry,
) -> None:
    async with RegistryServer() as gone:
        host = gone.url.removeprefix("http://")

    error = await _failure(make_registry(f"http://{host}", credentials=BEARER))

    assert isinstance(error, Unreachable)
    assert error.detail == f"corp-registry: cannot connect to host {host} (Connection refused)"


async def test_a_name_that_does_not_resolve_is_unreachable(
    make_registry: MakeRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []

    async def no_such_name(host: str, *args: Any, **kwargs: Any) -> Any:
        asked.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    # Resolution fails here, so no query ever leaves the machine.
    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", no_such_name)

    error = await _failure(make_registry("https://registry.corp.invalid", credentials=BEARER))

    assert asked == ["registry.corp.invalid"]
    assert isinstance(error, Unreachable)
    assert error.detail == (
        "corp-registry: cannot resolve host registry.corp.invalid (Name or service not known)"
    )


async def test_a_reset_connection_is_unreachable(make_registry: MakeRegistry) -> None:
    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        # Linger 0: close with a TCP reset, not an orderly shutdown.
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.close()

    server, host = await _raw_server(reset)
    async with server:
        error = await _failure(make_registry(f"http://{host}", credentials=BEARER))

    assert isinstance(error, Unreachable)
    assert error.detail in (
        f"corp-registry: connection to {host} failed (Connection reset by peer)",
        f"corp-registry: {host} closed the connection before answering in full",
    )


async def test_a_failed_tls_handshake_is_unreachable(make_registry: MakeRegistry) -> None:
    async with RegistryServer() as plain:
        host = plain.url.removeprefix("http://")

        error = await _failure(make_registry(f"https://{host}", credentials=BEARER))

    assert isinstance(error, Unreachable)
    assert error.detail.startswith(f"corp-registry: TLS handshake with {host} failed (")


async def test_an_answer_that_is_not_http_is_invalid(make_registry: MakeRegistry) -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        await writer.drain()
        writer.close()

    server, host = await _raw_server(garbage)
    async with server:
        error = await _failure(make_registry(f"http://{host}", credentials=BEARER))

    assert isinstance(error, InvalidUpstreamResponse)
    assert error.detail.startswith(f"corp-registry: http://{host}/mona/LinkedList answered with")


@pytest.mark.parametrize(
    ("fault", "status", "said"),
    [
        (Fault.SERVER_ERROR, 500, "the registry is having a bad day"),
        (Fault.RATE_LIMITED, 429, "too many requests"),
    ],
)
async def test_server_errors_and_back_off_are_host_failures(
    make_registry: MakeRegistry, fault: Fault, status: int, said: str
) -> None:
    async with RegistryServer(token=SECRET) as registry:
        registry.faults.add(fault)
        url = f"{registry.url}/mona/LinkedList"

        error = await _failure(make_registry(registry.url, credentials=BEARER))

    assert isinstance(error, HostFailed)
    assert error.detail == f"corp-registry: HTTP {status} from {url}: {said}"
    assert URL(str(error.url)) == URL(url)
