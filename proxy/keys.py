"""Typed application keys: the only way handlers and middleware reach app state."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from cache.blobs import BlobStore
from cache.index import MetadataIndex
from cache.ledger import Ledger
from proxy.config import Settings
from proxy.fills import FillGroup
from proxy.policy import UpstreamGuard
from proxy.pullthrough import PullThrough
from upstreams.routing import Router

SETTINGS = web.AppKey("settings", Settings)
BLOBS = web.AppKey("blobs", BlobStore)
INDEX = web.AppKey("index", MetadataIndex)
LEDGER = web.AppKey("ledger", Ledger)
ROUTER = web.AppKey("router", Router)
GUARDS = web.AppKey("guards", Mapping[str, UpstreamGuard])
FILLS = web.AppKey("fills", FillGroup)
PULL_THROUGH = web.AppKey("pull_through", PullThrough)
