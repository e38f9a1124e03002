"""Answers aiohttp gives itself are problems too: `application/problem+json` with
a `detail` and `Content-Version: 1`, the only form in which SwiftPM's client
shows a server's reason (`proxy.runner`).

Mostly requests its HTTP parser refuses before any handler runs, sent as raw
bytes over a socket, since no HTTP client library sends them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from proxy.app import create_app
from tests.support.http import ClientFactory, problem
from tests.support.proxy import proxy_settings
from tests.support.serving import Served, clean_environment, free_port, get, raw_exchange

HOST = b"Host: 127.0.0.1\r\n"
# A TLS ClientHello's first bytes: an https client pointed at the http port.
TLS_HELLO = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(64)

# id -> (request bytes, a fragment of the detail).
REFUSED = {
    "request line over 8 KiB": (
        b"GET /mona/" + b"a" * 9000 + b" HTTP/1.1\r\n" + HOST + b"\r\n",
        "longer than 8190 bytes",
    ),
    "100 KiB in one header field": (
        b"GET /availability HTTP/1.1\r\n" + HOST + b"X-Big: " + b"v" * 102400 + b"\r\n\r\n",
        "longer than 8190 bytes",
    ),
    "100 KiB in 200 header fields": (
        b"GET /availability HTTP/1.1\r\n"
        + HOST
        + b"".join(b"X-Field-%d: %s\r\n" % (i, b"v" * 500) for i in range(200))
        + b"\r\n",
        "too many headers",
    ),
    "invalid method token": (
        b"G@T /availability HTTP/1.1\r\n" + HOST + b"\r\n",
        "request method is invalid",
    ),
    "malformed header line": (
        b"GET /availability HTTP/1.1\r\n" + HOST + b"Bad Header: x\r\n\r\n",
        "malformed HTTP request",
    ),
    "TLS to the http port": (TLS_HELLO, "HTTPS"),
}


def assert_problem(status: int, headers: dict[str, str], body: bytes, fragment: str) -> str:
    assert status == 400, body
    assert headers["content-type"] == "application/problem+json"
    assert headers["content-version"] == "1"
    problem = json.loads(body)
    assert isinstance(problem["detail"], str)
    assert fragment in problem["detail"], problem
    assert problem["status"] == status
    assert problem["title"] == "Bad Request"
    detail: str = problem["detail"]
    return detail


@pytest.fixture(scope="module", params=["1", "2"], ids=["one process", "two workers"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Served, int]]:
    root = tmp_path_factory.mktemp("serve")
    port = free_port()
    args = ["--port", str(port), "--workers", request.param, "--data-dir", str(root / "data")]
    with Served(args, cwd=root, env=clean_environment()) as process:
        process.wait_for("server_started")
        yield process, port
        assert process.stop() == 0, process.output()


@pytest.mark.parametrize(("data", "fragment"), REFUSED.values(), ids=REFUSED.keys())
def test_spm_proxy_serve_answers_refused_requests_as_problems(
    served: tuple[Served, int], data: bytes, fragment: str
) -> None:
    process, port = served
    detail = assert_problem(*raw_exchange(port, data), fragment)

    # One fact per refusal in the log, instead of aiohttp's traceback.
    rejected = process.wait_for("request_rejected", lambda event: event["detail"] == detail)
    assert rejected["status"] == 400
    assert rejected["level"] == "info"
    assert not process.named("library_message"), process.output()
    # The refusal closed one connection; the server goes on serving.
    assert get(f"http://127.0.0.1:{port}/availability")[0] == 200


async def test_in_process_test_servers_answer_the_same_way(
    tmp_path: Path, aiohttp_client: ClientFactory
) -> None:
    # The upstream is never asked: the request never reaches a handler.
    settings = proxy_settings(tmp_path / "data", f"http://127.0.0.1:{free_port()}", offline=True)
    client = await aiohttp_client(create_app(settings))
    data, fragment = REFUSED["invalid method token"]
    port = client.server.port
    assert port is not None
    # A blocking socket: in a thread, so that this loop can serve meanwhile.
    assert_problem(*await asyncio.to_thread(raw_exchange, port, data), fragment)


@pytest.mark.usefixtures("structlog_defaults")
@pytest.mark.parametrize(
    ("error", "status"), [(RuntimeError("a bug"), 500), (TimeoutError(), 504)], ids=["500", "504"]
)
async def test_a_failure_outside_the_middleware_is_a_logged_problem(
    aiohttp_client: ClientFactory, error: Exception, status: int
) -> None:
    # Only a failure outside spm-proxy's own middleware reaches aiohttp's error
    # answer; an outermost middleware that fails stands in for one.
    @web.middleware
    async def failing(request: web.Request, handler: Handler) -> web.StreamResponse:
        raise error

    async def never_reached(request: web.Request) -> web.Response:
        return web.Response()

    app = web.Application(middlewares=[failing])
    app.router.add_get("/", never_reached)
    client = await aiohttp_client(app)

    with structlog.testing.capture_logs() as logs:
        body = await problem(await client.get("/"), status)

    assert body["detail"] == "the proxy failed to answer; the event is logged"
    assert [(log["event"], log["log_level"], log["status"]) for log in logs] == [
        ("request_failed", "error", status)
    ]
