"""Registry upstreams seen over HTTP: the proxy fetches nothing from hosts
nobody configured, passes no client's credentials on, and says why an
upstream failed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import structlog

from proxy.app import create_app
from tests.support.http import JSON_ACCEPT, ZIP_ACCEPT, ClientFactory, problem
from tests.support.proxy import proxy_settings, registry_upstream
from tests.support.registry_server import RegistryServer

MANIFEST = "// swift-tools-version:5.7\nimport PackageDescription\n"
FILES: dict[str, str | bytes] = {"Package.swift": MANIFEST, "Sources/X/X.swift": "let x = 1\n"}
SIGNATURE = "X-Amz-Signature=d0-n0t-sh0w-me"


# These tests assert what was logged.
pytestmark = pytest.mark.usefixtures("structlog_defaults")


@pytest.fixture
async def elsewhere() -> AsyncIterator[RegistryServer]:
    """A host nobody configured: it must never see a connection."""
    async with RegistryServer() as server:
        server.publish("mona.Cdn", "1.0.0", FILES)
        yield server


async def test_an_archive_redirect_to_an_unconfigured_host_is_a_502_naming_the_upstream(
    tmp_path: Path, elsewhere: RegistryServer, aiohttp_client: ClientFactory
) -> None:
    async with RegistryServer() as cdn, RegistryServer(archive_host=cdn) as registry:
        registry.publish("mona.Cdn", "1.0.0", FILES)
        registry.publish("mona.Moved", "1.0.0", FILES)
        settings = proxy_settings(
            tmp_path / "data",
            upstreams=[registry_upstream(registry.url, download_hosts=[cdn.url])],
            fill_timeout_seconds=10,
        )
        client = await aiohttp_client(create_app(settings))

        # The configured download host is followed server-side (SE-0292 4.4.2).
        served = await client.get("/mona/Cdn/1.0.0.zip", headers=ZIP_ACCEPT)
        assert served.status == 200, await served.text()
        assert cdn.requests == ["GET /mona/Cdn/1.0.0.zip"]

        # Anything else is not.
        registry.archive_redirect = f"{elsewhere.url}/mona/Cdn/1.0.0.zip?{SIGNATURE}"
        refused = await client.get("/mona/Moved/1.0.0.zip", headers=ZIP_ACCEPT)
        body = await problem(refused, 502)

    assert body["upstream"] == "loopback-registry"
    assert "loopback-registry" in body["detail"]
    assert f"{elsewhere.url}/mona/Cdn/1.0.0.zip" in body["detail"]
    assert SIGNATURE not in body["detail"]
    assert elsewhere.connections == 0


async def test_a_next_page_on_another_origin_is_a_502(
    tmp_path: Path, elsewhere: RegistryServer, aiohttp_client: ClientFactory
) -> None:
    async with RegistryServer() as registry:
        registry.publish("mona.Paged", "1.0.0", FILES)
        registry.next_page = f"{elsewhere.url}/mona/Paged?page=2"
        settings = proxy_settings(tmp_path / "data", upstreams=[registry_upstream(registry.url)])
        client = await aiohttp_client(create_app(settings))

        body = await problem(await client.get("/mona/Paged", headers=JSON_ACCEPT), 502)

    assert body["upstream"] == "loopback-registry"
    assert f"{elsewhere.url}/mona/Paged" in body["detail"]
    assert elsewhere.connections == 0


async def test_identifiers_forward_repository_urls_without_the_clients_credentials(
    tmp_path: Path, aiohttp_client: ClientFactory
) -> None:
    password = "pa55-d0-n0t-f0rward"
    async with RegistryServer() as registry:
        registry.identifiers["https://github.com/mona/Cached.git"] = ["mona.Cached"]
        settings = proxy_settings(tmp_path / "data", upstreams=[registry_upstream(registry.url)])
        client = await aiohttp_client(create_app(settings))

        with structlog.testing.capture_logs() as logs:
            # As SwiftPM sends it: `:`, `/` and `@` unencoded (Foundation's URLQueryItem).
            found = await client.get(
                f"/identifiers?url=https://ci:{password}@github.com/mona/Cached.git",
                headers=JSON_ACCEPT,
            )
            assert found.status == 200, await found.text()
            assert (await found.json())["identifiers"] == ["mona.Cached"]
            # Not a repository URL: no identities, and the registry is not asked.
            local = await client.get("/identifiers?url=file:///etc/passwd", headers=JSON_ACCEPT)
            await problem(local, 404)

    assert registry.requests == [
        "GET /identifiers?url=https%3A%2F%2Fgithub.com%2Fmona%2FCached.git"
    ]
    assert [event["path"] for event in logs if event["event"] == "request_served"] == [
        "/identifiers?url=https://github.com/mona/Cached.git",
        "/identifiers?url=file:///etc/passwd",
    ]
    assert password not in str(logs)


async def test_an_unreachable_upstream_is_a_502_with_the_real_cause(
    tmp_path: Path, aiohttp_client: ClientFactory
) -> None:
    async with RegistryServer() as gone:
        host = gone.url.removeprefix("http://")
    settings = proxy_settings(tmp_path / "data", upstreams=[registry_upstream(gone.url)])
    client = await aiohttp_client(create_app(settings))

    body = await problem(await client.get("/mona/Gone", headers=JSON_ACCEPT), 502)

    assert body["upstream"] == "loopback-registry"
    assert body["detail"] == (
        "upstream 'loopback-registry' failed: "
        f"loopback-registry: cannot connect to host {host} (Connection refused)"
    )
