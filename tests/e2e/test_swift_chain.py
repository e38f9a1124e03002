"""The real `swift` client through a chain of proxies.

client -> spm-proxy A -> (scope `mona`) spm-proxy B as a registry upstream -> git
                      -> (scope `acme`) git directly
Then B goes away and A keeps serving everything it cached; then A runs with the
offline switch and contacts no upstream at all.
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
from tests.support.proxy import git_upstream, proxy_settings, registry_upstream
from tests.support.swift_client import SwiftClient, record_requests, registry_url
from tests.support.swift_packages import (
    configure_registry,
    publish_greeter,
    publish_linked_list,
    publish_node,
    write_consumer,
)

pytestmark = pytest.mark.e2e

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]
EXPECTED = "linked-list 1.1.0 with node 1.0.0 built from Package@swift-5.9.swift and greeter 2.0.0"


def _proxy_a(
    data_dir: Path, proxy_b: str, git_url: str, *, offline: bool = False
) -> web.Application:
    settings = proxy_settings(
        data_dir,
        upstreams=[
            registry_upstream(proxy_b, name="proxy-b", list_ttl_seconds=0),
            git_upstream(git_url, name="acme-git", list_ttl_seconds=0),
        ],
        routes=[
            {"scopes": ["acme"], "upstreams": ["acme-git"]},
            {"scopes": ["*"], "upstreams": ["proxy-b"]},
        ],
        offline=offline,
    )
    return create_app(settings)


async def test_chain_of_proxies_with_scoped_routing_fallback_and_offline(
    swift: str, tmp_path: Path, git_server: GitHttpServer, aiohttp_server: ServerFactory
) -> None:
    git_root = tmp_path / "git-root"
    publish_node(git_root)
    publish_linked_list(git_root)
    publish_greeter(git_root)

    app_b = create_app(proxy_settings(tmp_path / "b-data", git_server.url))
    seen_b = record_requests(app_b)
    proxy_b = await aiohttp_server(app_b)
    app_a = _proxy_a(tmp_path / "a-data", registry_url(proxy_b), git_server.url)
    seen_a = record_requests(app_a)
    proxy_a = await aiohttp_server(app_a)

    consumer = write_consumer(
        tmp_path / "App",
        '.package(id: "mona.LinkedList", from: "1.0.0")',
        "mona.LinkedList",
        extra=('.package(id: "acme.Greeter", from: "2.0.0")', "Greeter", "acme.Greeter"),
    )
    configure_registry(consumer, registry_url(proxy_a))

    # 1. Everything flows: mona.* through B, acme.* straight from git.
    output = await SwiftClient(swift, tmp_path / "client-1").build_and_run(
        consumer, tmp_path / "scratch-1"
    )
    assert EXPECTED in output
    assert "GET /mona/LinkedList/1.1.0.zip 200" in seen_b
    # The client asks A in X.Y.Z form; A fetched the alternate from B by B's own Link.
    assert "GET /mona/Node/1.0.0/Package.swift?swift-version=5.9.0 200" in seen_a
    assert "GET /mona/Node/1.0.0/Package.swift?swift-version=5.9 200" in seen_b
    assert not any("/acme/" in line for line in seen_b), "acme must not be routed to B"
    assert "GET /acme/Greeter/2.0.0.zip 200" in seen_a
    resolved = json.loads((consumer / "Package.resolved").read_text())
    assert {pin["identity"].lower(): pin["kind"] for pin in resolved["pins"]} == {
        "mona.linkedlist": "registry",
        "mona.node": "registry",
        "acme.greeter": "registry",
    }

    # 2. B goes away: A serves its cached lists stale and its cached releases.
    await proxy_b.close()
    seen_a.clear()
    (consumer / "Package.resolved").unlink()
    output = await SwiftClient(swift, tmp_path / "client-2").build_and_run(
        consumer, tmp_path / "scratch-2"
    )
    assert EXPECTED in output
    assert "GET /mona/LinkedList 200" in seen_a

    # 3. A restarted with the offline switch: B is back, but is never asked.
    await proxy_a.close()
    app_b_again = create_app(proxy_settings(tmp_path / "b-data", git_server.url))
    seen_b_again = record_requests(app_b_again)
    proxy_b_again = await aiohttp_server(app_b_again)
    offline_a = _proxy_a(
        tmp_path / "a-data", registry_url(proxy_b_again), git_server.url, offline=True
    )
    proxy_a_offline = await aiohttp_server(offline_a)
    configure_registry(consumer, registry_url(proxy_a_offline))
    git_server.reset_counters()
    (consumer / "Package.resolved").unlink()
    output = await SwiftClient(swift, tmp_path / "client-3").build_and_run(
        consumer, tmp_path / "scratch-3"
    )
    assert EXPECTED in output
    assert seen_b_again == []
    assert git_server.ref_advertisements == 0
    assert git_server.upload_pack_requests == 0
