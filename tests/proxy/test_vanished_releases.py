"""A mirror never forgets: held releases stay listed and served when upstreams delete them.

Git repositories and registries run on loopback and then lose tags, releases
and whole packages; the `vanished` policy (keep, withdraw, forget), per
upstream or per route, decides only how the list shows what the proxy holds.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from collections.abc import AsyncIterator, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from proxy.app import create_app
from tests.support.git_http import GitHttpServer
from tests.support.git_repos import GitRepo
from tests.support.http import JSON_ACCEPT, SWIFT_ACCEPT, ZIP_ACCEPT, Client, ClientFactory, problem
from tests.support.proxy import git_upstream, proxy_settings, registry_upstream
from tests.support.registry_server import RegistryServer
from tests.support.swift_packages import publish_linked_list, publish_node

POLICIES = ["keep", "withdraw", "forget"]
MANIFEST = (
    '// swift-tools-version:5.7\nimport PackageDescription\nlet package = Package(name: "X")\n'
)


@dataclass(frozen=True)
class Served:
    """Everything a client can fetch of one release, as bytes."""

    metadata: dict[str, Any]
    manifest: bytes
    archive: bytes
    metadata_status: str


async def _fetch(client: Client, path: str) -> Served:
    metadata = await client.get(path, headers=JSON_ACCEPT)
    assert metadata.status == 200, await metadata.text()
    manifest = await client.get(f"{path}/Package.swift", headers=SWIFT_ACCEPT)
    assert manifest.status == 200, await manifest.text()
    archive = await client.get(f"{path}.zip", headers=ZIP_ACCEPT)
    assert archive.status == 200, await archive.text()
    body = await metadata.json()
    data = await archive.read()
    assert body["resources"][0]["checksum"] == hashlib.sha256(data).hexdigest()
    return Served(body, await manifest.read(), data, metadata.headers["X-Cache-Status"])


async def _releases(client: Client, path: str) -> tuple[dict[str, Any], str]:
    response = await client.get(path, headers=JSON_ACCEPT)
    assert response.status == 200, await response.text()
    body = await response.json()
    releases: dict[str, Any] = body["releases"]
    return releases, response.headers["X-Cache-Status"]


def _ledger(data_dir: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(data_dir / "ledger.sqlite3") as db:
        return db.execute("SELECT * FROM ledger ORDER BY identity, version, resource").fetchall()


def _blobs(data_dir: Path) -> dict[str, bytes]:
    root = data_dir / "blobs" / "sha256"
    return {path.name: path.read_bytes() for path in root.rglob("*") if path.is_file()}


def _events(logs: list[MutableMapping[str, Any]], name: str) -> list[MutableMapping[str, Any]]:
    return [entry for entry in logs if entry["event"] == name]


# -- git upstreams ----------------------------------------------------------------------


@pytest.fixture
def repos(tmp_path: Path, git_server: GitHttpServer) -> dict[str, GitRepo]:
    root = tmp_path / "git-root"
    return {"node": publish_node(root), "linked_list": publish_linked_list(root)}


async def _git_proxy(
    tmp_path: Path,
    git_server: GitHttpServer,
    aiohttp_client: ClientFactory,
    routes: list[dict[str, Any]] | None = None,
    **upstream: Any,
) -> Client:
    settings = proxy_settings(
        tmp_path / "data",
        upstreams=[git_upstream(git_server.url, **upstream)],
        routes=routes,
        list_ttl_seconds=0,
    )
    return await aiohttp_client(create_app(settings))


@pytest.mark.usefixtures("structlog_defaults")
async def test_a_deleted_tag_stays_listed_and_served_under_keep(
    tmp_path: Path,
    repos: dict[str, GitRepo],
    git_server: GitHttpServer,
    aiohttp_client: ClientFactory,
) -> None:
    client = await _git_proxy(tmp_path, git_server, aiohttp_client)
    assert list((await _releases(client, "/mona/LinkedList"))[0]) == ["1.1.0", "1.0.0"]
    before = await _fetch(client, "/mona/LinkedList/1.1.0")

    repos["linked_list"].delete_tag("v1.1.0")
    with capture_logs() as logs:
        releases, status = await _releases(client, "/mona/LinkedList")
        again, _ = await _releases(client, "/mona/LinkedList")

    assert list(releases) == ["1.1.0", "1.0.0"]
    assert releases == again
    assert "problem" not in releases["1.1.0"]
    assert status == "miss"  # the list itself is fresh from the upstream
    [vanished] = _events(logs, "upstream_release_vanished")  # once, not per refresh
    assert (vanished["package"], vanished["version"]) == ("mona.LinkedList", "1.1.0")
    assert vanished["log_level"] == "warning"
    after = await _fetch(client, "/mona/LinkedList/1.1.0")
    assert (after.metadata, after.manifest, after.archive) == (
        before.metadata,
        before.manifest,
        before.archive,
    )
    assert after.metadata_status == "held"


@pytest.mark.usefixtures("structlog_defaults")
async def test_a_deleted_repository_is_answered_from_what_is_held(
    tmp_path: Path,
    repos: dict[str, GitRepo],
    git_server: GitHttpServer,
    aiohttp_client: ClientFactory,
) -> None:
    client = await _git_proxy(tmp_path, git_server, aiohttp_client)
    await _releases(client, "/mona/LinkedList")
    before = await _fetch(client, "/mona/LinkedList/1.0.0")  # 1.1.0 is never fetched

    shutil.rmtree(repos["linked_list"].path)
    with capture_logs() as logs:
        releases, status = await _releases(client, "/mona/LinkedList")
        await _releases(client, "/MONA/linkedlist")

    # Only what the proxy holds can still be served, so only that is listed.
    assert list(releases) == ["1.0.0"]
    assert status == "held"
    [gone] = _events(logs, "upstream_package_vanished")
    assert gone["package"] == "mona.LinkedList"
    assert gone["held"] == ["1.0.0"]
    assert "no repository for mona.LinkedList" in gone["reason"]
    after = await _fetch(client, "/mona/LinkedList/1.0.0")
    assert (after.archive, after.manifest) == (before.archive, before.manifest)
    assert after.metadata_status == "held"
    missing = await client.get("/mona/LinkedList/1.1.0", headers=JSON_ACCEPT)
    await problem(missing, 404)


@pytest.mark.parametrize("policy", POLICIES)
async def test_the_vanished_policy_decides_only_how_the_list_shows_it(
    tmp_path: Path,
    repos: dict[str, GitRepo],
    git_server: GitHttpServer,
    aiohttp_client: ClientFactory,
    policy: str,
) -> None:
    client = await _git_proxy(tmp_path, git_server, aiohttp_client, vanished=policy)
    await _releases(client, "/mona/LinkedList")
    before = await _fetch(client, "/mona/LinkedList/1.1.0")
    repos["linked_list"].delete_tag("v1.1.0")

    releases, _ = await _releases(client, "/mona/LinkedList")

    if policy == "forget":
        assert list(releases) == ["1.0.0"]
    else:
        assert list(releases) == ["1.1.0", "1.0.0"]
    if policy == "withdraw":
        gone = releases["1.1.0"]["problem"]
        assert (gone["status"], gone["title"]) == (410, "Gone")
        assert "mona.LinkedList 1.1.0 is withdrawn" in gone["detail"]
        assert "no longer lists 1.1.0" in gone["detail"]
        assert "builds pinned to it" in gone["detail"]
    else:
        assert all("problem" not in entry for entry in releases.values())
    # Pinned builds fetch the same bytes under every policy.
    after = await _fetch(client, "/mona/LinkedList/1.1.0")
    assert (after.archive, after.manifest) == (before.archive, before.manifest)


async def test_a_route_overrides_its_upstreams_policy(
    tmp_path: Path,
    repos: dict[str, GitRepo],
    git_server: GitHttpServer,
    aiohttp_client: ClientFactory,
) -> None:
    routes: list[dict[str, Any]] = [
        {"packages": ["mona.LinkedList"], "upstreams": ["loopback-git"], "vanished": "withdraw"},
        {"scopes": ["*"], "upstreams": ["loopback-git"]},
    ]
    client = await _git_proxy(tmp_path, git_server, aiohttp_client, routes, vanished="forget")
    for path in ("/mona/LinkedList", "/mona/Node"):
        await _releases(client, path)
    await _fetch(client, "/mona/LinkedList/1.1.0")
    await _fetch(client, "/mona/Node/1.0.0")
    repos["linked_list"].delete_tag("v1.1.0")
    shutil.rmtree(repos["node"].path)

    linked_list, _ = await _releases(client, "/mona/LinkedList")
    node, status = await _releases(client, "/mona/Node")

    assert linked_list["1.1.0"]["problem"]["status"] == 410  # the route says withdraw
    assert (node, status) == ({}, "held")  # the upstream says forget
    await _fetch(client, "/mona/Node/1.0.0")


@pytest.mark.usefixtures("structlog_defaults")
async def test_what_was_noticed_is_logged_once_across_restarts(
    tmp_path: Path,
    repos: dict[str, GitRepo],
    git_server: GitHttpServer,
    aiohttp_client: ClientFactory,
) -> None:
    client = await _git_proxy(tmp_path, git_server, aiohttp_client)
    await _releases(client, "/mona/LinkedList")
    await _fetch(client, "/mona/LinkedList/1.1.0")
    repos["linked_list"].delete_tag("v1.1.0")
    await _releases(client, "/mona/LinkedList")
    await client.close()

    restarted = await _git_proxy(tmp_path, git_server, aiohttp_client, vanished="withdraw")
    with capture_logs() as logs:
        releases, _ = await _releases(restarted, "/mona/LinkedList")

    assert _events(logs, "upstream_release_vanished") == []
    assert "problem" in releases["1.1.0"]


async def test_a_lost_index_is_rebuilt_from_the_ledger_when_the_upstream_is_gone(
    tmp_path: Path,
    repos: dict[str, GitRepo],
    git_server: GitHttpServer,
    aiohttp_client: ClientFactory,
) -> None:
    client = await _git_proxy(tmp_path, git_server, aiohttp_client)
    await _releases(client, "/mona/LinkedList")
    before = await _fetch(client, "/mona/LinkedList/1.0.0")
    await client.close()
    shutil.rmtree(tmp_path / "data" / "index")
    shutil.rmtree(repos["linked_list"].path)

    restarted = await _git_proxy(tmp_path, git_server, aiohttp_client)
    releases, status = await _releases(restarted, "/mona/LinkedList")
    after = await _fetch(restarted, "/mona/LinkedList/1.0.0")

    assert (list(releases), status) == (["1.0.0"], "held")
    assert (after.archive, after.manifest) == (before.archive, before.manifest)
    assert after.metadata["resources"] == before.metadata["resources"]


# -- registry upstreams -----------------------------------------------------------------


@pytest.fixture
async def registry() -> AsyncIterator[RegistryServer]:
    async with RegistryServer() as server:
        for version in ("1.0.0", "1.1.0", "2.0.0"):
            server.publish("acme.Lib", version, {"Package.swift": MANIFEST, "v.txt": version})
        yield server


async def _registry_proxy(
    tmp_path: Path, registry: RegistryServer, aiohttp_client: ClientFactory, policy: str
) -> Client:
    settings = proxy_settings(
        tmp_path / "data",
        upstreams=[registry_upstream(registry.url, vanished=policy)],
        list_ttl_seconds=0,
    )
    return await aiohttp_client(create_app(settings))


@pytest.mark.parametrize("policy", POLICIES)
async def test_a_registry_losing_releases_changes_nothing_held(
    tmp_path: Path, registry: RegistryServer, aiohttp_client: ClientFactory, policy: str
) -> None:
    client = await _registry_proxy(tmp_path, registry, aiohttp_client, policy)
    await _releases(client, "/acme/Lib")
    before = {v: await _fetch(client, f"/acme/Lib/{v}") for v in ("1.0.0", "1.1.0")}
    ledger, blobs = _ledger(tmp_path / "data"), _blobs(tmp_path / "data")

    registry.unpublish("acme.Lib", "1.1.0")
    dropped, _ = await _releases(client, "/acme/Lib")
    registry.unpublish("acme.Lib")
    gone, status = await _releases(client, "/acme/Lib")

    assert status == "held"
    expected = {"keep": ["1.1.0"], "withdraw": ["1.1.0"], "forget": []}[policy]
    assert list(dropped) == ["2.0.0", *expected, "1.0.0"]
    assert list(gone) == {"forget": []}.get(policy, ["1.1.0", "1.0.0"])
    if policy == "withdraw":
        assert {entry["problem"]["status"] for entry in gone.values()} == {410}
        assert "no longer has acme.Lib" in gone["1.0.0"]["problem"]["detail"]
        assert "no longer lists 1.1.0" in gone["1.1.0"]["problem"]["detail"]
    for version, served in before.items():
        after = await _fetch(client, f"/acme/Lib/{version}")
        assert (after.metadata, after.manifest, after.archive) == (
            served.metadata,
            served.manifest,
            served.archive,
        )
    assert _ledger(tmp_path / "data") == ledger
    assert _blobs(tmp_path / "data") == blobs


async def test_identifiers_keep_answering_for_held_packages_a_registry_forgot(
    tmp_path: Path, registry: RegistryServer, aiohttp_client: ClientFactory
) -> None:
    registry.publish("acme.Other", "1.0.0", {"Package.swift": MANIFEST})
    registry.identifiers["https://git.example/acme/lib.git"] = ["acme.Lib"]
    registry.identifiers["https://git.example/acme/other.git"] = ["acme.Other"]
    client = await _registry_proxy(tmp_path, registry, aiohttp_client, "keep")
    lib = "/identifiers?url=https://git.example/acme/lib.git"
    other = "/identifiers?url=https://git.example/acme/other.git"
    for path in (lib, other):
        assert (await client.get(path, headers=JSON_ACCEPT)).status == 200
    await _fetch(client, "/acme/Lib/1.0.0")  # acme.Other is never fetched

    registry.identifiers.clear()
    registry.unpublish("acme.Lib")
    registry.unpublish("acme.Other")
    answer = await client.get(lib, headers=JSON_ACCEPT)

    assert answer.status == 200, await answer.text()
    assert (await answer.json())["identifiers"] == ["acme.Lib"]
    assert answer.headers["X-Cache-Status"] == "held"
    await problem(await client.get(other, headers=JSON_ACCEPT), 404)  # nothing held


async def test_a_registrys_own_problem_entries_pass_through_and_delete_nothing(
    tmp_path: Path, registry: RegistryServer, aiohttp_client: ClientFactory
) -> None:
    client = await _registry_proxy(tmp_path, registry, aiohttp_client, "keep")
    await _releases(client, "/acme/Lib")
    before = await _fetch(client, "/acme/Lib/2.0.0")
    withdrawn = {"status": 410, "title": "Gone", "detail": "yanked by its author: CVE-2026-1"}

    registry.mark("acme.Lib", "2.0.0", withdrawn)
    releases, _ = await _releases(client, "/acme/Lib")

    assert releases["2.0.0"]["problem"] == withdrawn
    after = await _fetch(client, "/acme/Lib/2.0.0")
    assert (after.archive, after.manifest) == (before.archive, before.manifest)
