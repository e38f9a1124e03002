"""The composition root of the HTTP server: `create_app(settings)`.

Nothing is created at import time. Everything the registry runs on lives for
exactly the app's lifetime through one `cleanup_ctx` entry, which opens it
in dependency order and closes it in reverse on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from proxy.config import Settings
from proxy.handlers.files import fix_validators
from proxy.keys import REGISTRY, SETTINGS
from proxy.middleware import access_log, problems, stamp_headers
from proxy.routes import add_routes
from proxy.wiring import open_registry

# How often leftovers of crashed processes are looked for after the start-up sweep.
SWEEP_INTERVAL_SECONDS = 600.0


async def _registry(app: web.Application) -> AsyncIterator[None]:
    async with open_registry(app[SETTINGS]) as wired:
        app[REGISTRY] = wired.registry
        janitor = asyncio.create_task(wired.janitor.run(SWEEP_INTERVAL_SECONDS), name="janitor")
        try:
            yield
        finally:
            janitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await janitor


async def _fix_validators(request: web.Request, response: web.StreamResponse) -> None:
    fix_validators(response)


def create_app(settings: Settings) -> web.Application:
    app = web.Application(middlewares=[access_log, problems])
    app[SETTINGS] = settings
    app.cleanup_ctx.append(_registry)
    app.on_response_prepare.append(stamp_headers)
    app.on_response_prepare.append(_fix_validators)
    add_routes(app)
    return app
