"""What the HTTP-level tests share: client types, SwiftPM's Accept headers, and
the assertions every problem response must satisfy (SE-0292 3.3, RFC 9457)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from aiohttp.web import Application, Request

Client = TestClient[Request, Application]
ClientFactory = Callable[[Application], Awaitable[Client]]

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
