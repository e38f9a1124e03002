"""The composition root: `create_app(settings)` builds everything.

Nothing is created at import time. Every long-lived resource is opened and
closed by a `cleanup_ctx` entry, in dependency order (aiohttp unwinds them in
reverse on shutdown).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

from aiohttp import web

from cache.blobs import FilesystemBlobStore
from cache.index import MetadataIndex
from cache.ledger import SqliteLedger
from proxy.config import Settings
from proxy.fills import FillGroup
from proxy.keys import BLOBS, FILLS, GUARDS, INDEX, LEDGER, PULL_THROUGH, ROUTER, SETTINGS
from proxy.middleware import access_log, problems
from proxy.pullthrough import PullThrough
from proxy.routes import add_routes
from proxy.wiring import build_upstreams


async def _storage(app: web.Application) -> AsyncIterator[None]:
    data_dir = app[SETTINGS].server.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    app[BLOBS] = FilesystemBlobStore(data_dir / "blobs")
    index = MetadataIndex(data_dir / "index")
    app[INDEX] = index
    ledger = SqliteLedger(data_dir / "ledger.sqlite3")
    app[LEDGER] = ledger
    yield
    await ledger.close()
    index.close()


async def _upstreams(app: web.Application) -> AsyncIterator[None]:
    wiring = build_upstreams(app[SETTINGS], dict(os.environ))
    app[ROUTER] = wiring.router
    app[GUARDS] = wiring.guards
    yield
    for upstream in wiring.router.upstreams:
        await upstream.close()


async def _fills(app: web.Application) -> AsyncIterator[None]:
    cache = app[SETTINGS].cache
    fills = FillGroup(timeout=cache.fill_timeout_seconds, concurrency=cache.max_concurrent_fills)
    app[FILLS] = fills
    yield
    # Detached fills may outlive their requests; stop them before storage closes.
    await fills.close()


async def _pull_through(app: web.Application) -> AsyncIterator[None]:
    app[PULL_THROUGH] = PullThrough(
        router=app[ROUTER],
        guards=app[GUARDS],
        blobs=app[BLOBS],
        index=app[INDEX],
        ledger=app[LEDGER],
        fills=app[FILLS],
    )
    yield


def create_app(settings: Settings) -> web.Application:
    app = web.Application(middlewares=[access_log, problems])
    app[SETTINGS] = settings
    app.cleanup_ctx.extend([_storage, _upstreams, _fills, _pull_through])
    add_routes(app)
    return app
