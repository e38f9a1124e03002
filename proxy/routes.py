"""The route table (SE-0292 section 4). GET routes answer HEAD too; other methods 405."""

from __future__ import annotations

from aiohttp import web

from proxy.handlers import registry


def add_routes(app: web.Application) -> None:
    app.router.add_get("/availability", registry.availability)
    app.router.add_get("/identifiers", registry.identifiers)
    # SE-0378 login: answered, so clients get a clear 501 rather than a 404.
    app.router.add_post("/login", registry.login)
    app.router.add_get("/{scope}/{name}", registry.list_releases)
    app.router.add_get("/{scope}/{name}/{version}", registry.release)
    app.router.add_get("/{scope}/{name}/{version}/Package.swift", registry.manifest)
