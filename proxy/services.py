"""Everything the registry runs on, opened and closed in dependency order.

The HTTP app (`create_app`) and the offline commands (`warm`, `export`,
`import`, `verify`, `gc`) share this one construction, so they see the same
cache, ledger, upstreams and policies.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from cache.blobs import FilesystemBlobStore
from cache.index import MetadataIndex
from cache.ledger import SqliteLedger
from proxy.config import Settings
from proxy.fills import FillGroup
from proxy.policy import UpstreamGuard
from proxy.pullthrough import PullThrough
from proxy.wiring import build_upstreams
from upstreams.routing import Router


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    blobs: FilesystemBlobStore
    index: MetadataIndex
    ledger: SqliteLedger
    router: Router
    guards: Mapping[str, UpstreamGuard]
    fills: FillGroup
    pull_through: PullThrough


@asynccontextmanager
async def open_services(
    settings: Settings, environ: Mapping[str, str] | None = None
) -> AsyncIterator[Services]:
    data_dir = settings.server.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    async with AsyncExitStack() as stack:
        blobs = FilesystemBlobStore(data_dir / "blobs")
        index = MetadataIndex(data_dir / "index")
        stack.callback(index.close)
        ledger = SqliteLedger(data_dir / "ledger.sqlite3")
        stack.push_async_callback(ledger.close)
        wiring = build_upstreams(settings, dict(os.environ if environ is None else environ))
        for upstream in wiring.router.upstreams:
            stack.push_async_callback(upstream.close)
        fills = FillGroup(
            timeout=settings.cache.fill_timeout_seconds,
            concurrency=settings.cache.max_concurrent_fills,
        )
        # Detached fills may outlive their requests; they stop before the
        # upstreams and storage they use are closed (callbacks unwind in reverse).
        stack.push_async_callback(fills.close)
        pull_through = PullThrough(
            router=wiring.router,
            guards=wiring.guards,
            blobs=blobs,
            index=index,
            ledger=ledger,
            fills=fills,
        )
        yield Services(
            settings, blobs, index, ledger, wiring.router, wiring.guards, fills, pull_through
        )
