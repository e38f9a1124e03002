"""Build settings for a proxy under test whose upstreams run on loopback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from proxy.config import Settings, load_settings


def git_upstream(url: str, name: str = "loopback-git", **options: Any) -> dict[str, Any]:
    return {
        "name": name,
        "type": "git",
        "url_template": f"{url}/{{scope}}/{{name}}.git",
        "read_timeout_seconds": 10,
        **options,
    }


def registry_upstream(url: str, name: str = "loopback-registry", **options: Any) -> dict[str, Any]:
    return {
        "name": name,
        "type": "registry",
        "url": url,
        "connect_timeout_seconds": 2,
        "read_timeout_seconds": 5,
        **options,
    }


def proxy_settings(
    data_dir: Path,
    git_url: str | None = None,
    *,
    upstreams: list[dict[str, Any]] | None = None,
    routes: list[dict[str, Any]] | None = None,
    offline: bool = False,
    **cache: Any,
) -> Settings:
    configured = list(upstreams or [])
    if git_url is not None:
        configured.append(git_upstream(git_url))
    return load_settings(
        overrides={
            "server": {"data_dir": data_dir},
            "cache": cache,
            "upstreams": configured,
            "routes": routes or [],
            "offline": offline,
        }
    )
