"""THE table from domain errors to problem responses (RFC 9457 problem details).

Errors are defined where their domain is (`upstreams.errors`, `cache.errors`,
`proxy.service.errors`, `proxy.protocol`); this is the only place that knows
their HTTP face. The most specific class in an error's MRO with a row wins;
anything without one is an internal error. Every problem carries a `detail`:
SwiftPM's client only shows the server's message when it is present (problem
details as in SE-0292 3.3 and RFC 9457).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Literal

from aiohttp.http_exceptions import BadHttpMessage, BadHttpMethod, LineTooLong

from cache.errors import (
    BlobDigestMismatch,
    StorageError,
    StorageReadOnly,
    StorageUnavailable,
)
from proxy.protocol import (
    BadRequest,
    MethodNotAllowed,
    NotImplementedHere,
    PreconditionFailed,
    ProtocolError,
    RangeNotSatisfiable,
    UnsupportedMediaType,
)
from proxy.service.errors import (
    ChecksumConflict,
    ContentUnavailable,
    FillStillRunning,
    FillTimedOut,
    NotFound,
    ServiceError,
)
from upstreams.errors import (
    ArchiveChecksumMismatch,
    BuildInterrupted,
    HostFailed,
    InvalidRelease,
    InvalidUpstreamResponse,
    PackageNotFound,
    RedirectRefused,
    ReleaseNotFound,
    RemoteFailed,
    TransportFailure,
    Unreachable,
    UpstreamError,
    UpstreamOffline,
    UpstreamTimeout,
    UpstreamUnavailable,
)

Level = Literal["info", "warning", "error"]


@dataclass(frozen=True, slots=True)
class Problem:
    status: int
    title: str
    detail: str
    level: Level = "info"
    headers: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return {"title": self.title, "status": self.status, "detail": self.detail, **self.extra}


def _detail(error: Exception) -> str:
    return str(getattr(error, "detail", "") or error)


def _upstream_failed(error: Exception) -> str:
    assert isinstance(error, UpstreamError)
    return f"upstream {error.upstream!r} failed: {error.detail}"


def _not_cached(error: Exception) -> str:
    return f"not cached, and {_detail(error)}"


def _storage(error: Exception) -> str:
    return f"the proxy's storage cannot do this right now: {_detail(error)}"


def _too_long(error: Exception) -> str:
    limit = error.args[1] if len(error.args) > 1 else None
    if isinstance(limit, int):
        return f"the request line or a header field is longer than {limit} bytes"
    return "the request line or a header field is too long"


def _bad_method(error: Exception) -> str:
    if "HTTPS" in str(getattr(error, "message", "")):
        return "this port speaks plain HTTP, and the request came as HTTPS (TLS)"
    return "the request method is invalid or unknown to this server"


def _malformed(error: Exception) -> str:
    # aiohttp's message names the fault on its first line and quotes the
    # offending bytes below it; the fault is enough.
    lines = str(getattr(error, "message", "")).strip().splitlines()
    reason = lines[0].strip().rstrip(":.")[:100] if lines else ""
    if not reason:
        return "malformed HTTP request"
    return f"malformed HTTP request ({reason[0].lower()}{reason[1:]})"


@dataclass(frozen=True, slots=True)
class Kind:
    status: int
    title: str
    level: Level = "info"
    detail: Callable[[Exception], str] = _detail


def _gateway(status: int, title: str, level: Level = "warning") -> Kind:
    return Kind(status, title, level, _upstream_failed)


TABLE: dict[type[Exception], Kind] = {
    # The request itself.
    ProtocolError: Kind(400, "Bad Request"),
    BadRequest: Kind(400, "Bad Request"),
    UnsupportedMediaType: Kind(415, "Unsupported Media Type"),
    MethodNotAllowed: Kind(405, "Method Not Allowed"),
    NotImplementedHere: Kind(501, "Not Implemented"),
    PreconditionFailed: Kind(412, "Precondition Failed"),
    RangeNotSatisfiable: Kind(416, "Range Not Satisfiable"),
    # The service's answers.
    ServiceError: Kind(500, "Internal Server Error", "error"),
    NotFound: Kind(404, "Not Found"),
    ChecksumConflict: Kind(502, "Release content changed upstream", "error"),
    FillStillRunning: Kind(504, "Gateway Timeout", "warning"),
    FillTimedOut: Kind(504, "Gateway Timeout", "warning"),
    ContentUnavailable: Kind(503, "Service Unavailable", "error"),
    # Upstreams.
    UpstreamError: _gateway(502, "Bad Gateway"),
    PackageNotFound: Kind(404, "Not Found"),
    ReleaseNotFound: Kind(404, "Not Found"),
    InvalidRelease: Kind(404, "Not Found"),
    UpstreamUnavailable: _gateway(502, "Bad Gateway"),
    TransportFailure: _gateway(502, "Bad Gateway"),
    Unreachable: _gateway(502, "Bad Gateway"),
    HostFailed: _gateway(502, "Bad Gateway"),
    UpstreamTimeout: _gateway(504, "Gateway Timeout"),
    UpstreamOffline: Kind(503, "Service Unavailable", "warning", _not_cached),
    RemoteFailed: _gateway(502, "Bad Gateway"),
    BuildInterrupted: Kind(503, "Service Unavailable", "error"),
    InvalidUpstreamResponse: _gateway(502, "Bad Gateway"),
    RedirectRefused: _gateway(502, "Bad Gateway"),
    ArchiveChecksumMismatch: _gateway(502, "Bad Gateway", "error"),
    # Storage: cached answers keep serving; writes fail clearly.
    StorageError: Kind(503, "Service Unavailable", "error", _storage),
    StorageUnavailable: Kind(503, "Service Unavailable", "error", _storage),
    StorageReadOnly: Kind(503, "Service Unavailable", "error", _storage),
    BlobDigestMismatch: Kind(502, "Bad Gateway", "error", _storage),
    # aiohttp's HTTP parser, before any handler runs (see `proxy.runner`).
    BadHttpMessage: Kind(400, "Bad Request", detail=_malformed),
    LineTooLong: Kind(400, "Bad Request", detail=_too_long),
    BadHttpMethod: Kind(400, "Bad Request", detail=_bad_method),
}


def kind_of(error: BaseException) -> Kind | None:
    for cls in type(error).__mro__:
        kind = TABLE.get(cls)
        if kind is not None:
            return kind
    return None


def problem_for(error: BaseException) -> Problem | None:
    """The problem an error is answered with, or None when it is not a domain error."""
    if not isinstance(error, Exception):
        return None
    kind = kind_of(error)
    if kind is None:
        return None
    headers: dict[str, str] = {}
    extra: dict[str, Any] = {}
    if isinstance(error, ProtocolError):
        headers.update(error.headers)
    if isinstance(error, UpstreamError):
        extra["upstream"] = error.upstream
    if isinstance(error, ChecksumConflict):
        extra["recorded_checksum"] = error.recorded
        extra["actual_checksum"] = error.actual
    return Problem(kind.status, kind.title, kind.detail(error), kind.level, headers, extra)


def internal_error() -> Problem:
    return Problem(
        500,
        "Internal Server Error",
        "internal error; the event is logged with this request's id",
        "error",
    )


def refused(status: int, error: BaseException | None) -> Problem:
    """The problem for an answer aiohttp gives itself (`proxy.runner`).

    That is a request its parser rejected (`error` says why), or one whose
    failure escaped the middleware, which answers every other error.
    """
    problem = problem_for(error) if error is not None else None
    if problem is not None:
        return problem
    title = HTTPStatus(status).phrase
    if status >= 500:
        return Problem(status, title, "the proxy failed to answer; the event is logged", "error")
    return Problem(status, title, "the request was refused")
