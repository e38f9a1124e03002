"""The middleware chain and response stamping: request ids, the access log, problems.

Every response, success or error, carries `Content-Version: 1`: SwiftPM
requires it on most endpoints and only parses a problem's `detail` when it is
present (SE-0292 3.5; `validateAPIVersion` in SwiftPM's RegistryClient.swift).
Responses of registry endpoints depend on `Accept` (API version negotiation),
so they carry `Vary: Accept` for shared caches in front of the proxy.
"""

from __future__ import annotations

import json
import time
import uuid
from urllib.parse import quote, unquote

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from proxy.problems import Problem, internal_error, problem_for
from proxy.protocol import API_VERSION, CACHE_STATUS_HEADER, PROBLEM
from upstreams.locations import redact

REQUEST_ID_HEADER = "X-Request-Id"
_REQUEST_ID = web.RequestKey("request_id", str)
# Answers that do not depend on the request's Accept header.
_ACCEPT_BLIND = frozenset({"/availability", "/login"})
# Left readable in logged query values: RFC 3986 sub-delims and `:`, `/`, `@`, `?`.
_QUERY_SAFE = "!$'()*+,;=:/@?~"


def problem_response(problem: Problem, instance: str | None) -> web.Response:
    body = problem.body()
    if instance is not None:
        # RFC 9457 3.1.5: which occurrence this is; a relative reference to the request.
        body.setdefault("instance", instance)
    return web.Response(
        status=problem.status,
        # HEAD answers carry the same headers and no body (aiohttp drops it).
        body=json.dumps(body).encode("utf-8"),
        headers={
            "Content-Type": PROBLEM,
            "Content-Version": API_VERSION,
            "Content-Language": "en",
            "Cache-Control": "no-store",
            **problem.headers,
        },
    )


def loggable_target(request: web.Request) -> str:
    """Path and query fit for logs.

    `/identifiers?url=` carries a repository URL as the client wrote it, and
    that may hold credentials (`https://user:token@host/...`): every query
    value loses its userinfo, percent-encoded or not, and is encoded again
    so that no decoded control character reaches a log line.
    """
    path, raw_query = request.rel_url.raw_path, request.rel_url.raw_query_string
    if not raw_query:
        return path
    pairs = (pair.partition("=") for pair in raw_query.split("&"))
    query = "&".join(
        f"{key}{eq}{quote(redact(unquote(value)), safe=_QUERY_SAFE)}" for key, eq, value in pairs
    )
    return f"{path}?{query}"


@web.middleware
async def access_log(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = request.headers.get(REQUEST_ID_HEADER) or uuid.uuid4().hex
    request[_REQUEST_ID] = request_id
    structlog.contextvars.bind_contextvars(request_id=request_id)
    started = time.perf_counter()
    status = 500
    response: web.StreamResponse | None = None
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        status = exc.status
        raise
    else:
        status = response.status
        return response
    finally:
        structlog.get_logger().info(
            "request_served",
            method=request.method,
            path=loggable_target(request),
            status=status,
            cache=response.headers.get(CACHE_STATUS_HEADER) if response is not None else None,
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        structlog.contextvars.unbind_contextvars("request_id")


@web.middleware
async def problems(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return problem_response(_routing_problem(exc, request), request.path_qs)
    except Exception as error:
        problem = problem_for(error)
        log = structlog.get_logger()
        if problem is None:
            log.exception("request_failed", path=loggable_target(request))
            return problem_response(internal_error(), request.path_qs)
        if problem.status >= 500:
            # The status alone says little: log the cause with it.
            getattr(log, problem.level)(
                "problem_served",
                status=problem.status,
                error=type(error).__name__,
                detail=problem.detail,
                upstream=problem.extra.get("upstream"),
                path=loggable_target(request),
            )
        return problem_response(problem, request.path_qs)


def _routing_problem(exc: web.HTTPException, request: web.Request) -> Problem:
    """aiohttp's own answers for unknown paths and methods, in the same format."""
    headers: dict[str, str] = {}
    detail = exc.reason
    if exc.status == 404:
        detail = f"no registry endpoint at {request.path}"
    elif isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = sorted(exc.allowed_methods)
        headers["Allow"] = ", ".join(allowed)
        detail = f"{request.method} is not supported on {request.path}; use {', '.join(allowed)}"
        if request.method == "PUT" and request.path.count("/") == 3:
            detail = "publishing isn't supported: spm-proxy serves packages from its upstreams"
    return Problem(exc.status, exc.reason, detail, headers=headers)


async def stamp_headers(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare`: headers every answer carries, set just before it is sent."""
    response.headers.setdefault("Content-Version", API_VERSION)
    request_id = request.get(_REQUEST_ID)
    if request_id:
        response.headers[REQUEST_ID_HEADER] = request_id
    if request.match_info.http_exception is None and request.path not in _ACCEPT_BLIND:
        response.headers["Vary"] = "Accept"
