"""/identifiers asks only the upstreams routing allows, and says whether it asked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import pytest

from proxy.app import create_app
from tests.support.git_http import GitHttpServer
from tests.support.http import JSON_ACCEPT, Client, ClientFactory, problem
from tests.support.proxy import git_upstream, proxy_settings, registry_upstream
from tests.support.registry_server import RegistryServer
from tests.support.swift_packages import publish_linked_list, publish_node


@pytest.fixture
async def registry() -> AsyncIterator[RegistryServer]:
    async with RegistryServer() as server:
        yield server


@pytest.fixture
async def client(
    tmp_path: Path,
    git_server: GitHttpServer,
    registry: RegistryServer,
    aiohttp_client: ClientFactory,
) -> Client:
    publish_linked_list(git_server.root)
    publish_node(git_server.root)
    settings = proxy_settings(
        tmp_path / "data",
        upstreams=[registry_upstream(registry.url), git_upstream(git_server.url)],
        routes=[
            {"scopes": ["mona"], "upstreams": ["loopback-registry"]},
            {"scopes": ["*"], "upstreams": ["loopback-git"]},
        ],
    )
    return await aiohttp_client(create_app(settings))


async def test_a_git_url_whose_identity_routes_elsewhere_is_not_answered_by_git(
    client: Client, git_server: GitHttpServer, registry: RegistryServer
) -> None:
    url = f"{git_server.url}/mona/LinkedList.git"
    before = git_server.ref_advertisements

    response = await client.get(f"/identifiers?url={url}", headers=JSON_ACCEPT)

    # mona.* comes from the registry alone; the git upstream is never asked,
    # and the registry does not know the URL.
    await problem(response, 404)
    assert git_server.ref_advertisements == before
    assert registry.requests == [f"GET /identifiers?url={_encoded(url)}"]


async def test_a_registry_answer_for_an_identity_routed_elsewhere_is_dropped(
    client: Client, registry: RegistryServer
) -> None:
    url = "https://github.com/apple/swift-nio.git"
    registry.identifiers[url] = ["apple.swift-nio", "mona.nio"]

    response = await client.get(f"/identifiers?url={url}", headers=JSON_ACCEPT)

    # apple.* routes to git only: the registry may not speak for it.
    assert response.status == 200
    assert (await response.json())["identifiers"] == ["mona.nio"]


async def test_answers_are_kept_and_served_without_asking_again(
    tmp_path: Path, git_server: GitHttpServer, aiohttp_client: ClientFactory
) -> None:
    publish_linked_list(git_server.root)
    client = await aiohttp_client(create_app(proxy_settings(tmp_path / "d", git_server.url)))
    url = f"{git_server.url}/mona/LinkedList.git"

    first = await client.get(f"/identifiers?url={url}", headers=JSON_ACCEPT)
    asked = git_server.ref_advertisements
    second = await client.get(f"/identifiers?url={url}", headers=JSON_ACCEPT)

    assert first.headers["X-Cache-Status"] == "miss"
    assert second.headers["X-Cache-Status"] == "hit"
    assert git_server.ref_advertisements == asked
    assert (await second.json())["identifiers"] == ["mona.LinkedList"]


def _encoded(url: str) -> str:
    return quote(url, safe="")
