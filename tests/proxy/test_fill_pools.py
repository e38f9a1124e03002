"""Waiting and work pools: clients never wait longer than they may, lists never queue
behind builds, metadata never waits on a list, and an offline proxy starts no doomed work."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from proxy.app import create_app
from proxy.config import Settings, load_settings
from tests.support.git_http import GitHttpServer
from tests.support.http import JSON_ACCEPT, ZIP_ACCEPT, Client, ClientFactory, problem
from tests.support.proxy import proxy_settings, registry_upstream
from tests.support.registry_server import RegistryServer
from tests.support.swift_packages import publish_linked_list, publish_node

# Incompressible, so that the archive takes many paced pieces to send.
FILES: dict[str, str | bytes] = {
    "Package.swift": "// swift-tools-version:5.9\n",
    "Sources/A/a.bin": os.urandom(8000),
}


@pytest.fixture
async def registry() -> AsyncIterator[RegistryServer]:
    async with RegistryServer() as server:
        for version in ("1.0.0", "1.1.0", "1.2.0"):
            server.publish("mona.LinkedList", version, FILES)
        server.publish("mona.Other", "1.0.0", FILES)
        yield server


def _client_settings(data: Path, registry: RegistryServer, **cache: float) -> Settings:
    return load_settings(
        overrides={
            "server": {"data_dir": data},
            "cache": cache,
            "upstreams": [registry_upstream(registry.url, read_timeout_seconds=5)],
        }
    )


async def _until(condition: Callable[[], bool]) -> None:
    """Poll a condition the registry server's own thread makes true."""
    async with asyncio.timeout(10):
        while not condition():  # noqa: ASYNC110 - set by another server, no event to wait on
            await asyncio.sleep(0.02)


async def test_a_slow_upstream_gets_a_504_while_the_fill_goes_on(
    tmp_path: Path, registry: RegistryServer, aiohttp_client: ClientFactory
) -> None:
    # A live but crawling upstream: each piece arrives well within the read
    # timeout, so only the client-facing wait can end the request.
    registry.archive_pace = 0.05
    settings = _client_settings(tmp_path / "data", registry, client_wait_seconds=0.5)
    client: Client = await aiohttp_client(create_app(settings))

    started = time.monotonic()
    first = await client.get("/mona/LinkedList/1.0.0.zip", headers=ZIP_ACCEPT)
    body = await problem(first, 504)
    assert time.monotonic() - started < 3
    assert "still being fetched" in body["detail"]

    registry.archive_pace = None  # the upstream speeds up; the detached fill finishes
    for _ in range(100):
        retry = await client.get("/mona/LinkedList/1.0.0.zip", headers=ZIP_ACCEPT)
        if retry.status == 200:
            break
        await asyncio.sleep(0.1)
    assert retry.status == 200
    assert registry.requests.count("GET /mona/LinkedList/1.0.0.zip") == 1


async def test_list_refreshes_never_queue_behind_builds(
    tmp_path: Path, registry: RegistryServer, aiohttp_client: ClientFactory
) -> None:
    registry.archive_pace = 0.05
    settings = _client_settings(
        tmp_path / "data", registry, client_wait_seconds=30, max_concurrent_fills=1
    )
    client: Client = await aiohttp_client(create_app(settings))
    # Occupy the only build slot with a crawling fill, and queue another behind it.
    builds = [
        asyncio.create_task(client.get(f"/mona/LinkedList/{v}.zip", headers=ZIP_ACCEPT))
        for v in ("1.0.0", "1.1.0")
    ]
    await _until(lambda: "GET /mona/LinkedList/1.0.0.zip" in registry.requests)

    started = time.monotonic()
    listed = await client.get("/mona/Other", headers=JSON_ACCEPT)

    assert listed.status == 200
    assert time.monotonic() - started < 2
    assert not any(build.done() for build in builds)
    registry.archive_pace = None
    assert [(await build).status for build in builds] == [200, 200]


async def test_metadata_never_waits_on_a_list_refresh(
    tmp_path: Path, registry: RegistryServer, aiohttp_client: ClientFactory
) -> None:
    settings = _client_settings(tmp_path / "data", registry, list_ttl_seconds=0)
    client: Client = await aiohttp_client(create_app(settings))
    assert (await client.get("/mona/LinkedList", headers=JSON_ACCEPT)).status == 200
    assert (await client.get("/mona/LinkedList/1.0.0", headers=JSON_ACCEPT)).status == 200
    # The list is now expired and its upstream stalls; metadata answers from
    # the cached list at once, links included.
    registry.list_pace = 30.0

    started = time.monotonic()
    response = await client.get("/mona/LinkedList/1.0.0", headers=JSON_ACCEPT)

    assert response.status == 200
    assert time.monotonic() - started < 2
    assert 'rel="successor-version"' in response.headers["Link"]
    registry.list_pace = None


async def test_offline_serves_an_expired_list_without_starting_work(
    tmp_path: Path, git_server: GitHttpServer, aiohttp_client: ClientFactory
) -> None:
    publish_linked_list(git_server.root)
    publish_node(git_server.root)
    data = tmp_path / "data"
    online = await aiohttp_client(
        create_app(proxy_settings(data, git_server.url, list_ttl_seconds=0))
    )
    assert (await online.get("/mona/LinkedList", headers=JSON_ACCEPT)).status == 200
    await online.close()
    offline = await aiohttp_client(
        create_app(proxy_settings(data, git_server.url, list_ttl_seconds=0, offline=True))
    )
    with capture_logs() as logs:
        statuses = [
            (await offline.get("/mona/LinkedList", headers=JSON_ACCEPT)).headers["X-Cache-Status"]
            for _ in range(5)
        ]

    assert statuses == ["stale"] * 5
    assert [e["event"] for e in logs].count("stale_list_served") == 1
    # No refresh was started that could only fail.
    assert not any(e["event"] == "work_started" for e in logs)
