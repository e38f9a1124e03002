"""The offline build cache, end to end with the real `swift` client.

Connected side: resolve a project through the proxy, `warm` from its
Package.resolved, `export` a bundle. Air-gapped side: a second proxy with a
fresh data directory and no reachable upstream `import`s the bundle and serves
the same project to `swift build`.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from proxy.app import create_app
from proxy.config import load_settings
from tests.support.git_http import GitHttpServer
from tests.support.swift_client import SwiftClient, record_requests, registry_url
from tests.support.swift_packages import (
    configure_registry,
    publish_linked_list,
    publish_node,
    write_consumer,
)

pytestmark = pytest.mark.e2e

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]
SPM_PROXY = str(Path(sys.executable).with_name("spm-proxy"))


def _config(path: Path, data_dir: Path, git_url: str) -> Path:
    path.write_text(
        f'[server]\ndata_dir = "{data_dir}"\n'
        '[[upstreams]]\nname = "git"\ntype = "git"\n'
        f'url_template = "{git_url}/{{scope}}/{{name}}.git"\n'
    )
    return path


def _closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


async def _spm_proxy(*args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        SPM_PROXY, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await asyncio.wait_for(process.communicate(), 300)
    text = output.decode()
    assert process.returncode == 0, f"spm-proxy {' '.join(args)}:\n{text}"
    return text


async def test_warm_export_import_then_build_with_no_network(
    swift: str, tmp_path: Path, git_server: GitHttpServer, aiohttp_server: ServerFactory
) -> None:
    git_root = tmp_path / "git-root"
    publish_node(git_root)
    publish_linked_list(git_root)
    connected = _config(tmp_path / "connected.toml", tmp_path / "connected-data", git_server.url)

    # Connected side: the project resolves through the proxy.
    online = await aiohttp_server(create_app(load_settings(connected)))
    consumer = write_consumer(
        tmp_path / "App", '.package(id: "mona.LinkedList", from: "1.0.0")', "mona.LinkedList"
    )
    configure_registry(consumer, registry_url(online))
    first_client = SwiftClient(swift, tmp_path / "client-1")
    await first_client.run("package", "resolve", *first_client.state, cwd=consumer)
    resolved = consumer / "Package.resolved"
    assert resolved.exists()
    await online.close()

    warmed = await _spm_proxy("warm", "--config", str(connected), "--resolved", str(resolved))
    assert "failed" not in warmed.replace("0 failed", "")
    bundle = tmp_path / "cache.spmbundle"
    await _spm_proxy(
        "export", "--config", str(connected), "--resolved", str(resolved), "-o", str(bundle)
    )

    # Air-gapped side: fresh data, an upstream nobody answers at, offline.
    gapped = _config(tmp_path / "gapped.toml", tmp_path / "gapped-data", _closed_port_url())
    imported = await _spm_proxy("import", "--config", str(gapped), str(bundle))
    assert "releases added" in imported
    git_server.reset_counters()
    app = create_app(load_settings(gapped, {"offline": True}))
    seen = record_requests(app)
    offline = await aiohttp_server(app)
    configure_registry(consumer, registry_url(offline))

    client = SwiftClient(swift, tmp_path / "client-2")
    scratch = tmp_path / "scratch"
    output = await client.build_and_run(consumer, scratch)

    assert "linked-list 1.1.0 with node 1.0.0 built from Package@swift-5.9.swift" in output
    assert "GET /mona/LinkedList/1.1.0.zip 200" in seen
    assert git_server.ref_advertisements == 0
    assert git_server.upload_pack_requests == 0
