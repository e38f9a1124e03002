"""Errors as exceptions that carry an HTTP status; rendered by one middleware.

Every error response is RFC 7807 `application/problem+json` with a `detail`
(SwiftPM only shows the server's message when `detail` is present, protocol.md
section 5).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any


class Problem(Exception):
    status: int = 500

    def __init__(
        self,
        detail: str,
        *,
        status: int | None = None,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        if status is not None:
            self.status = status
        self.detail = detail
        self.title = title or HTTPStatus(self.status).phrase
        self.headers = headers or {}
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"title": self.title, "status": self.status, "detail": self.detail, **self.extra}


class BadRequest(Problem):
    status = 400


class NotFound(Problem):
    status = 404


class MethodNotAllowed(Problem):
    status = 405


class UnsupportedMediaType(Problem):
    status = 415


class BadGateway(Problem):
    status = 502


class ServiceUnavailable(Problem):
    status = 503


class GatewayTimeout(Problem):
    status = 504


class ChecksumMismatch(Problem):
    """The upstream now offers different bytes than the ledger recorded.

    502: the proxy refuses an upstream answer that breaks the immutability of a
    release; the client cannot fix this by changing its request.
    """

    status = 502

    def __init__(self, *, package: str, version: str, resource: str, recorded: str, actual: str):
        super().__init__(
            f"{resource} of {package} {version} changed upstream: the ledger recorded checksum "
            f"{recorded}, the upstream now gives {actual}; the recorded release is immutable "
            "and the new bytes are refused",
            title="Release content changed upstream",
            recorded_checksum=recorded,
            actual_checksum=actual,
        )
