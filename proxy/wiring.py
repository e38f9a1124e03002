"""Turn validated settings into upstream instances and the routing table."""

from __future__ import annotations

from pathlib import Path

from proxy.config import Settings
from upstreams.base import Upstream
from upstreams.git import GitUpstream
from upstreams.routing import Route, Router


def build_router(settings: Settings, data_dir: Path) -> Router:
    routes: list[Route] = []
    for config in settings.upstreams:
        upstream: Upstream = GitUpstream(
            name=config.name,
            url_template=config.url_template,
            mirror_root=data_dir / "git" / config.name,
            overrides=config.packages,
            timeout=config.timeout_seconds,
        )
        routes.append(Route(tuple(config.scopes), upstream))
    return Router(routes)
