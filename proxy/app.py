"""The composition root: `create_app(settings)` builds the HTTP application.

Nothing is created at import time. The services (cache, ledger, upstreams,
fills) live for exactly the app's lifetime through one `cleanup_ctx` entry,
which opens them in dependency order and closes them in reverse on shutdown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from proxy.config import Settings
from proxy.keys import BLOBS, FILLS, GUARDS, INDEX, LEDGER, PULL_THROUGH, ROUTER, SETTINGS
from proxy.middleware import access_log, problems
from proxy.routes import add_routes
from proxy.services import open_services


async def _services(app: web.Application) -> AsyncIterator[None]:
    async with open_services(app[SETTINGS]) as services:
        app[BLOBS] = services.blobs
        app[INDEX] = services.index
        app[LEDGER] = services.ledger
        app[ROUTER] = services.router
        app[GUARDS] = services.guards
        app[FILLS] = services.fills
        app[PULL_THROUGH] = services.pull_through
        yield


def create_app(settings: Settings) -> web.Application:
    app = web.Application(middlewares=[access_log, problems])
    app[SETTINGS] = settings
    app.cleanup_ctx.append(_services)
    add_routes(app)
    return app
