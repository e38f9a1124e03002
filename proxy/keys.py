"""Typed application keys: only what handlers and middleware read."""

from __future__ import annotations

from aiohttp import web

from proxy.config import Settings
from proxy.service.registry import Registry

SETTINGS = web.AppKey("settings", Settings)
REGISTRY = web.AppKey("registry", Registry)
