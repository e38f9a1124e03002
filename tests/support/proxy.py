"""Build settings for a proxy under test that pulls from a loopback git server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from proxy.config import Settings, load_settings


def proxy_settings(data_dir: Path, git_url: str, **cache: Any) -> Settings:
    return load_settings(
        overrides={
            "server": {"data_dir": data_dir},
            "cache": cache,
            "upstreams": [
                {
                    "name": "loopback-git",
                    "type": "git",
                    "url_template": f"{git_url}/{{scope}}/{{name}}.git",
                    "timeout_seconds": 10,
                }
            ],
        }
    )
