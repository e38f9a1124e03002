"""The route table (protocol.md section 4). GET routes answer HEAD too."""

from __future__ import annotations

from aiohttp import web

from proxy import handlers


def add_routes(app: web.Application) -> None:
    app.router.add_get("/availability", handlers.availability)
    app.router.add_get("/identifiers", handlers.identifiers)
    app.router.add_get("/{scope}/{name}", handlers.list_releases)
    app.router.add_get("/{scope}/{name}/{version}", handlers.release)
    app.router.add_put("/{scope}/{name}/{version}", handlers.publish)
    app.router.add_get("/{scope}/{name}/{version}/Package.swift", handlers.manifest)
