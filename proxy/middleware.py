"""The middleware chain: request id and access log, then problem rendering.

Every response, success or error, carries `Content-Version: 1`: SwiftPM
requires it on most endpoints and only parses a problem's `detail` when it is
present (protocol.md 1.1 and 5).
"""

from __future__ import annotations

import json
import time
import uuid
from urllib.parse import quote, unquote

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from proxy.problems import Problem
from proxy.protocol import API_VERSION, PROBLEM
from upstreams.locations import redact

CACHE_STATUS_HEADER = "X-Cache-Status"
REQUEST_ID_HEADER = "X-Request-Id"
# Left readable in logged query values: RFC 3986 sub-delims and `:`, `/`, `@`, `?`.
_QUERY_SAFE = "!$'()*+,;=:/@?~"


def problem_response(problem: Problem, request: web.Request) -> web.Response:
    body = problem.body()
    body.setdefault("instance", request.path_qs)
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
    structlog.contextvars.bind_contextvars(request_id=request_id)
    log = structlog.get_logger()
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
        duration_ms = round((time.perf_counter() - started) * 1000, 1)
        cache = response.headers.get(CACHE_STATUS_HEADER) if response is not None else None
        if response is not None:
            response.headers[REQUEST_ID_HEADER] = request_id
        log.info(
            "request_served",
            method=request.method,
            path=loggable_target(request),
            status=status,
            cache=cache,
            duration_ms=duration_ms,
        )
        structlog.contextvars.unbind_contextvars("request_id")


@web.middleware
async def problems(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except Problem as problem:
        return problem_response(problem, request)
    except web.HTTPException as exc:
        # aiohttp's own 404/405 for unknown routes and methods: same format.
        if exc.status < 400:
            raise
        detail = {
            404: f"no registry endpoint at {request.path}",
            405: f"{request.method} is not supported on {request.path}",
        }.get(exc.status, exc.reason)
        routing_problem = Problem(detail, status=exc.status)
        if exc.status == 405 and "Allow" in exc.headers:
            routing_problem.headers["Allow"] = exc.headers["Allow"]
        return problem_response(routing_problem, request)
    except Exception:  # noqa: BLE001 - last line of defence: render, log, keep serving
        structlog.get_logger().exception("request_failed", path=loggable_target(request))
        return problem_response(
            Problem("internal error; the event is logged with this request's id", status=500),
            request,
        )
    response.headers.setdefault("Content-Version", API_VERSION)
    return response
