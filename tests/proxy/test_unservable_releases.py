"""No release listed that cannot be served: once a fill finds a tag without a
`Package.swift` at its root, the release list marks it with a problem."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from proxy.app import create_app
from tests.support.git_http import GitHttpServer
from tests.support.git_repos import GitRepo
from tests.support.http import JSON_ACCEPT, ZIP_ACCEPT, Client, ClientFactory, problem
from tests.support.proxy import proxy_settings
from tests.support.registry_server import RegistryServer
from tests.support.swift_packages import GREETER_MANIFEST

GREETER = 'public func greeting() -> String {\n    "greeter"\n}\n'


def publish_tool(root: Path) -> GitRepo:
    """`mona.Tool`: 0.9.0 and 2.0.0 have no Package.swift at the root, 1.0.0 has."""
    repo = GitRepo.init(root / "mona" / "Tool")
    repo.write("Sources/Tool/Tool.swift", GREETER)
    repo.commit("before SwiftPM", when=1_700_000_000)
    repo.tag("0.9.0")
    repo.write("Package.swift", GREETER_MANIFEST)
    repo.commit("SwiftPM support", when=1_700_000_100)
    repo.tag("1.0.0")
    repo.remove("Package.swift")
    repo.write("Tool/Package.swift", GREETER_MANIFEST)
    repo.commit("moved into a subdirectory", when=1_700_000_200)
    repo.tag("2.0.0")
    return repo


async def _list(client: Client) -> tuple[dict[str, Any], str]:
    response = await client.get("/mona/Tool", headers=JSON_ACCEPT)
    assert response.status == 200, await response.text()
    releases: dict[str, Any] = (await response.json())["releases"]
    return releases, response.headers.get("Link", "")


@pytest.fixture
async def client(
    tmp_path: Path, git_server: GitHttpServer, aiohttp_client: ClientFactory
) -> Client:
    publish_tool(tmp_path / "git-root")
    settings = proxy_settings(tmp_path / "data", git_server.url, list_ttl_seconds=0)
    return await aiohttp_client(create_app(settings))


async def test_a_tag_without_a_manifest_is_listed_with_a_problem_once_known(
    client: Client,
) -> None:
    before, _ = await _list(client)
    assert list(before) == ["2.0.0", "1.0.0", "0.9.0"]
    assert all("problem" not in entry for entry in before.values())  # not known yet

    refused = await problem(await client.get("/mona/Tool/2.0.0", headers=JSON_ACCEPT), 404)
    after, links = await _list(client)

    assert list(after) == ["2.0.0", "1.0.0", "0.9.0"]
    noted = after["2.0.0"]["problem"]
    assert (noted["status"], noted["title"]) == (404, "Not Found")
    assert noted["detail"].startswith("mona.Tool 2.0.0 cannot be served: ")
    assert "tag 2.0.0 of" in noted["detail"]
    assert "has no Package.swift at its root" in noted["detail"]
    assert "has no Package.swift at its root" in refused["detail"]
    # The newest release SwiftPM may pick is the one that can be served.
    assert str(client.make_url("/mona/Tool/1.0.0")) + '>; rel="latest-version"' in links
    assert "problem" not in after["0.9.0"]  # not asked for yet, so not known
    archive = await client.get("/mona/Tool/1.0.0.zip", headers=ZIP_ACCEPT)
    assert archive.status == 200


async def test_the_note_survives_list_refreshes_and_restarts(
    tmp_path: Path, client: Client, git_server: GitHttpServer, aiohttp_client: ClientFactory
) -> None:
    await _list(client)
    await problem(await client.get("/mona/Tool/0.9.0.zip", headers=ZIP_ACCEPT), 404)
    await _list(client)  # a refresh (list_ttl_seconds = 0)
    await client.close()

    settings = proxy_settings(tmp_path / "data", git_server.url, list_ttl_seconds=0)
    restarted = await aiohttp_client(create_app(settings))
    releases, _ = await _list(restarted)

    assert "problem" in releases["0.9.0"]
    assert "problem" not in releases["2.0.0"]


async def test_a_registry_release_without_a_manifest_is_noted_too(
    tmp_path: Path, aiohttp_client: ClientFactory
) -> None:
    async with RegistryServer() as registry:
        registry.publish("acme.Broken", "1.0.0", {"Package.swift": GREETER_MANIFEST})
        registry.publish("acme.Broken", "1.1.0", {"Sources/X/X.swift": GREETER})
        upstream = {
            "name": "loopback-registry",
            "type": "registry",
            "url": registry.url,
            "read_timeout_seconds": 5,
        }
        settings = proxy_settings(tmp_path / "data", upstreams=[upstream])
        client = await aiohttp_client(create_app(settings))
        assert (await client.get("/acme/Broken", headers=JSON_ACCEPT)).status == 200

        await problem(await client.get("/acme/Broken/1.1.0.zip", headers=ZIP_ACCEPT), 404)
        listed = await (await client.get("/acme/Broken", headers=JSON_ACCEPT)).json()

    assert "no Package.swift" in listed["releases"]["1.1.0"]["problem"]["detail"]
    assert "problem" not in listed["releases"]["1.0.0"]
