"""What the HTTP-level tests share: the test server, client types, SwiftPM's Accept
headers, and the assertions every problem response must satisfy (SE-0292 3.3,
RFC 9457)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.web import Application, Request
from aiohttp.web_runner import BaseRunner

from proxy.runner import ProblemAppRunner

Client = TestClient[Request, Application]
ClientFactory = Callable[[Application], Awaitable[Client]]


class ProxyTestServer(TestServer):
    """aiohttp's test server on the runner `spm-proxy serve` uses, so that
    in-process tests meet the same connection handling (`proxy.runner`).

    `_make_runner` is the test server's only hook for its runner.
    """

    async def _make_runner(self, **kwargs: Any) -> BaseRunner:
        return ProblemAppRunner(self.app, **kwargs)


# What SwiftPM sends per endpoint (SE-0292 3.5).
JSON_ACCEPT = {"Accept": "application/vnd.swift.registry.v1+json"}
ZIP_ACCEPT = {"Accept": "application/vnd.swift.registry.v1+zip"}
SWIFT_ACCEPT = {"Accept": "application/vnd.swift.registry.v1+swift"}


async def problem(response: ClientResponse, *statuses: int) -> dict[str, Any]:
    """The body of a problem response with one of `statuses`, checked as SwiftPM
    needs it: problem+json, `Content-Version: 1`, a string `detail`."""
    assert response.status in statuses, await response.text()
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.headers["Content-Version"] == "1"
    body: dict[str, Any] = await response.json(content_type=None)
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert body["status"] == response.status
    return body
