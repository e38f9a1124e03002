"""`spm-proxy warm --resolved` with git pins at a public host the proxy reaches
only through a mirror: the pins map to identities like `/identifiers` does."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from proxy.cli import main
from proxy.config import load_settings
from proxy.service.releases import CacheStatus
from proxy.wiring import open_registry
from tests.support.git_http import GitHttpServer
from tests.support.public_host import PublicHost
from tests.support.public_packages import publish_mirrored_graph
from upstreams.model import PackageId, Version


@pytest.fixture
def public() -> Iterator[PublicHost]:
    with PublicHost() as host:
        yield host


@pytest.fixture
def config(tmp_path: Path, git_server: GitHttpServer, public: PublicHost) -> Path:
    publish_mirrored_graph(git_server.root / "github", f"https://{public.host}")
    path = tmp_path / "spm-proxy.toml"
    path.write_text(
        f'[server]\ndata_dir = "{tmp_path / "data"}"\n'
        '[[upstreams]]\nname = "github"\ntype = "git"\n'
        f'url_template = "{public.url("{scope}/{name}")}"\n'
        f'fetch_url_template = "{git_server.url}/github/{{scope}}/{{name}}.git"\n'
    )
    return path


def _archived(config: Path, *releases: tuple[str, str]) -> list[CacheStatus]:
    async def look() -> list[CacheStatus]:
        async with open_registry(load_settings(config, {"offline": True})) as wired:
            return [
                (await wired.registry.archive(PackageId.parse(i), Version.parse(v))).status
                for i, v in releases
            ]

    return asyncio.run(look())


@pytest.mark.parametrize("format_version", [1, 3])
def test_warm_fetches_every_public_git_pin_through_the_mirror(
    config: Path,
    tmp_path: Path,
    public: PublicHost,
    format_version: int,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # How Package.resolved records them: the URL as the manifest wrote it.
    pins = [
        ("linkedlist", public.url("mona/LinkedList.git"), "1.1.0"),
        ("node", f"git@{public.address}:mona/Node.git", "1.0.0"),
    ]
    resolved = tmp_path / "Package.resolved"
    if format_version == 1:
        document: dict[str, object] = {
            "object": {
                "pins": [
                    {"package": name, "repositoryURL": url, "state": {"version": version}}
                    for name, url, version in pins
                ]
            },
            "version": 1,
        }
    else:
        document = {
            "pins": [
                {
                    "identity": name,
                    "kind": "remoteSourceControl",
                    "location": url,
                    "state": {"revision": "0" * 40, "version": version},
                }
                for name, url, version in pins
            ],
            "version": 3,
        }
    resolved.write_text(json.dumps(document))

    assert main(["warm", "--config", str(config), "--resolved", str(resolved)]) == 0

    assert capsys.readouterr().out.strip() == (
        "warm: 2 fetched, 0 already present, 0 failed, 0 skipped"
    )
    served = _archived(config, ("mona.LinkedList", "1.1.0"), ("mona.Node", "1.0.0"))
    assert served == [CacheStatus.HIT] * 2
    assert public.connections == 0
