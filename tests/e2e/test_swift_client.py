"""The real `swift` client resolving and building through spm-proxy.

Upstream packages are git repositories made here and served over smart HTTP on
loopback; the proxy runs in-process on loopback; every SwiftPM location
(cache, security, config, scratch, HOME) is private to the test, so nothing is
answered from a local cache.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from proxy.app import create_app
from tests.support.git_http import GitHttpServer
from tests.support.proxy import proxy_settings
from tests.support.swift_client import SwiftClient, record_requests, registry_url
from tests.support.swift_packages import (
    configure_registry,
    publish_linked_list,
    publish_node,
    write_consumer,
)

pytestmark = pytest.mark.e2e

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]


async def _start_proxy(
    tmp_path: Path, git_server: GitHttpServer, aiohttp_server: ServerFactory
) -> tuple[TestServer, list[str]]:
    app = create_app(proxy_settings(tmp_path / "proxy-data", git_server.url))
    seen = record_requests(app)
    return await aiohttp_server(app), seen


async def test_resolves_and_builds_transitive_registry_dependencies(
    swift: str, tmp_path: Path, git_server: GitHttpServer, aiohttp_server: ServerFactory
) -> None:
    publish_node(tmp_path / "git-root")
    publish_linked_list(tmp_path / "git-root")
    server, seen = await _start_proxy(tmp_path, git_server, aiohttp_server)
    consumer = write_consumer(
        tmp_path / "App", '.package(id: "mona.LinkedList", from: "1.0.0")', "mona.LinkedList"
    )
    configure_registry(consumer, registry_url(server))
    client = SwiftClient(swift, tmp_path / "client")
    scratch = tmp_path / "scratch"

    output = await client.build_and_run(consumer, scratch)

    # v1.1.0 (a v-prefixed tag) is the newest release; Node was built from its
    # Package@swift-5.9.swift alternate.
    assert "linked-list 1.1.0 with node 1.0.0 built from Package@swift-5.9.swift" in output
    resolved = json.loads((consumer / "Package.resolved").read_text())
    pins = {pin["identity"].lower(): pin for pin in resolved["pins"]}
    assert pins["mona.linkedlist"]["kind"] == "registry"
    assert pins["mona.linkedlist"]["state"]["version"] == "1.1.0"
    assert pins["mona.node"]["kind"] == "registry"
    # The client asked for the alternate manifest in its X.Y.Z form and got it.
    assert "GET /mona/Node/1.0.0/Package.swift?swift-version=5.9.0 200" in seen
    assert "GET /mona/LinkedList/1.1.0.zip 200" in seen
    assert "GET /mona/Node/1.0.0.zip 200" in seen
    # The client recorded the proxy's checksum as the release fingerprint.
    fingerprint = json.loads(
        (client.home / "security" / "fingerprints" / "mona.LinkedList.json").read_text()
    )
    assert "1.1.0" in fingerprint["versionFingerprints"]


async def test_replace_scm_with_registry_turns_git_urls_into_registry_pins(
    swift: str, tmp_path: Path, git_server: GitHttpServer, aiohttp_server: ServerFactory
) -> None:
    publish_node(tmp_path / "git-root")
    publish_linked_list(tmp_path / "git-root")
    server, seen = await _start_proxy(tmp_path, git_server, aiohttp_server)
    git_url = f"{git_server.url}/mona/LinkedList.git"
    consumer = write_consumer(
        tmp_path / "App", f'.package(url: "{git_url}", from: "1.0.0")', "LinkedList"
    )
    client = SwiftClient(swift, tmp_path / "client")

    await client.run(
        "package",
        "resolve",
        *client.state,
        "--scratch-path",
        str(tmp_path / "scratch"),
        "--default-registry-url",
        registry_url(server),
        "--replace-scm-with-registry",
        cwd=consumer,
    )

    resolved = json.loads((consumer / "Package.resolved").read_text())
    pins = {pin["identity"].lower(): pin for pin in resolved["pins"]}
    assert pins["mona.linkedlist"]["kind"] == "registry", resolved
    assert pins["mona.linkedlist"]["state"]["version"] == "1.1.0"
    # --default-registry-url makes SwiftPM probe availability first.
    assert any(line.startswith("GET /availability 200") for line in seen)
    assert any(line.startswith("GET /identifiers?url=") and line.endswith(" 200") for line in seen)
