"""The aiohttp runner that serves spm-proxy: requests refused by the HTTP parser
are answered as problems too.

aiohttp's parser rejects some requests before any handler or middleware runs:
a request line or header field over 8190 bytes, an invalid or unknown method,
bytes that are not HTTP at all. `RequestHandler.handle_error` answers those in
text/plain, which SwiftPM's client passes on as raw text: it reads a server's
`detail` only from an `application/problem+json` body with `Content-Version: 1`.
`ProblemRequestHandler.handle_error` answers with the same problem document as
every other error (`proxy.problems.refused`) and logs one `request_rejected`
event instead of aiohttp's traceback.

aiohttp offers no public way to choose the connection handler's class:
`web.Server.__call__` builds `RequestHandler` itself, and `AppRunner` builds its
`web.Server` in `_make_server`. This module is the one place spm-proxy relies on
those internals (`_make_server`, and `Server._kwargs`, the handler's settings).
tests/proxy/test_refused_requests.py sends such requests to a real `spm-proxy
serve`, and the in-process test servers run on this runner too.
"""

from __future__ import annotations

import asyncio

import structlog
from aiohttp import web
from aiohttp.web_request import BaseRequest

from proxy.middleware import problem_response
from proxy.problems import refused


class ProblemRequestHandler(web.RequestHandler):
    """aiohttp's connection handler, answering its own errors as problems."""

    __slots__ = ()

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        # As aiohttp's own: once bytes of a response went out, no other can follow.
        if request.writer.output_size > 0:
            raise ConnectionError("a response was partly sent; the connection is dropped")
        problem = refused(status, exc)
        log = structlog.get_logger()
        if problem.status >= 500:
            log.error("request_failed", status=problem.status, exc_info=exc)
        else:
            log.info(
                "request_rejected",
                status=problem.status,
                detail=problem.detail,
                remote=request.remote,
            )
        # The request target may be what could not be parsed: no `instance`.
        response = problem_response(problem, None)
        # The parser's state is unknown after an error: aiohttp closes too.
        response.force_close()
        return response


class _ProblemServer(web.Server):
    def __call__(self) -> web.RequestHandler:
        return ProblemRequestHandler(self, loop=asyncio.get_running_loop(), **self._kwargs)


class ProblemAppRunner(web.AppRunner):
    """`web.AppRunner` whose connections use `ProblemRequestHandler`."""

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()
        return _ProblemServer(
            plain.request_handler,
            request_factory=plain.request_factory,
            handler_cancellation=plain.handler_cancellation,
            # Private: the handler settings (see the module docstring).
            **plain._kwargs,
        )
