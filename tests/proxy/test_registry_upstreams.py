"""The proxy in front of upstream registries: real aiohttp registries on loopback,
some of them misbehaving on purpose."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import structlog

from proxy.app import create_app
from tests.support.git_http import GitHttpServer
from tests.support.http import JSON_ACCEPT, SWIFT_ACCEPT, ZIP_ACCEPT, Client, ClientFactory, problem
from tests.support.proxy import git_upstream, proxy_settings, registry_upstream
from tests.support.registry_server import Fault, RegistryServer
from tests.support.swift_packages import publish_linked_list, publish_node

MANIFEST = (
    '// swift-tools-version:5.7\nimport PackageDescription\nlet package = Package(name: "X")\n'
)
SECRET = "s3cr3t-t0ken-do-not-leak"


def _files(marker: str) -> dict[str, str | bytes]:
    return {"Package.swift": MANIFEST, "Sources/X/X.swift": f"let marker = {marker!r}\n"}


@pytest.fixture
async def registry() -> AsyncIterator[RegistryServer]:
    async with RegistryServer() as server:
        server.publish("mona.Cached", "1.0.0", _files("cached"))
        server.publish("mona.Fresh", "1.0.0", _files("fresh"))
        yield server


def _ledger_rows(data_dir: Path, identity: str) -> list[tuple[str, str, str]]:
    path = data_dir / "ledger.sqlite3"
    if not path.exists():
        return []
    with sqlite3.connect(path) as db:
        return db.execute(
            "SELECT version, resource, checksum FROM ledger WHERE identity = ?", (identity,)
        ).fetchall()


def _blob_count(data_dir: Path) -> int:
    return sum(1 for path in (data_dir / "blobs" / "sha256").rglob("*") if path.is_file())


async def _warm(client: Client) -> bytes:
    listing = await client.get("/mona/Cached", headers=JSON_ACCEPT)
    assert listing.status == 200, await listing.text()
    archive = await client.get("/mona/Cached/1.0.0.zip", headers=ZIP_ACCEPT)
    assert archive.status == 200, await archive.text()
    return await archive.read()


@pytest.mark.parametrize(
    ("fault", "statuses", "mentions"),
    [
        (Fault.SERVER_ERROR, (502,), "500"),
        (Fault.HANG, (504,), "time"),
        (Fault.TRICKLE, (502, 504), ""),
        (Fault.TRUNCATE, (502,), ""),
        (Fault.WRONG_CHECKSUM, (502,), "checksum"),
        (Fault.INVALID_JSON, (502,), "JSON"),
        (Fault.NO_CONTENT_VERSION, (502,), "Content-Version"),
        (Fault.REDIRECT_LOOP, (502,), "redirect"),
    ],
)
async def test_misbehaving_upstream_stores_nothing_and_cached_content_still_works(
    tmp_path: Path,
    registry: RegistryServer,
    aiohttp_client: ClientFactory,
    fault: Fault,
    statuses: tuple[int, ...],
    mentions: str,
) -> None:
    data = tmp_path / "data"
    settings = proxy_settings(
        data,
        upstreams=[
            registry_upstream(
                registry.url, list_ttl_seconds=0, failure_threshold=100, read_timeout_seconds=1
            )
        ],
        fill_timeout_seconds=10,
    )
    client = await aiohttp_client(create_app(settings))
    cached_archive = await _warm(client)
    blobs_before = _blob_count(data)

    registry.faults.add(fault)
    failed = await client.get("/mona/Fresh/1.0.0.zip", headers=ZIP_ACCEPT)
    body = await problem(failed, *statuses)
    assert "loopback-registry" in body["detail"]
    assert mentions.lower() in body["detail"].lower()

    # Nothing about the failed release was stored or recorded.
    assert _blob_count(data) == blobs_before
    assert _ledger_rows(data, "mona.fresh") == []
    # Cached content still works: the archive, and the list (served stale).
    again = await client.get("/mona/Cached/1.0.0.zip", headers=ZIP_ACCEPT)
    assert again.status == 200
    assert await again.read() == cached_archive
    listing = await client.get("/mona/Cached", headers=JSON_ACCEPT)
    assert listing.status == 200
    if fault not in (Fault.TRICKLE, Fault.TRUNCATE, Fault.WRONG_CHECKSUM, Fault.REDIRECT_LOOP):
        # These faults only touch archives; the list itself still revalidates.
        assert listing.headers["X-Cache-Status"] == "stale"


async def test_changed_upstream_bytes_never_replace_a_served_release(
    tmp_path: Path, registry: RegistryServer, aiohttp_client: ClientFactory
) -> None:
    data = tmp_path / "data"
    client = await aiohttp_client(
        create_app(proxy_settings(data, upstreams=[registry_upstream(registry.url)]))
    )
    original = await _warm(client)
    recorded = hashlib.sha256(original).hexdigest()

    registry.faults.add(Fault.CHANGED_BYTES)
    served = await client.get("/mona/Cached/1.0.0.zip", headers=ZIP_ACCEPT)
    assert await served.read() == original

    for blob in (data / "blobs" / "sha256").rglob(recorded):
        blob.unlink()
    body = await problem(await client.get("/mona/Cached/1.0.0.zip", headers=ZIP_ACCEPT), 502)
    assert recorded in body["detail"]
    assert body["recorded_checksum"] == recorded
    assert body["actual_checksum"] != recorded
    assert [row[2] for row in _ledger_rows(data, "mona.cached") if row[1] == "source-archive"] == [
        recorded
    ]


async def test_passthrough_of_lists_problems_signatures_and_manifests(
    tmp_path: Path, aiohttp_client: ClientFactory
) -> None:
    signing = {"signatureBase64Encoded": "c2lnbmF0dXJl", "signatureFormat": "cms-1.0.0"}
    alternate = "// swift-tools-version:5.9\nimport PackageDescription\n// 5.9 flavour\n"
    async with RegistryServer(page_size=2) as registry:
        for version in ("1.0.0", "1.1.0", "1.2.0", "2.0.0"):
            registry.publish("mona.Paged", version, _files(version))
        registry.publish(
            "mona.Paged",
            "2.1.0",
            {**_files("2.1.0"), "Package@swift-5.9.swift": alternate},
            signing=signing,
            metadata={"description": "signed one", "author": {"name": "Mona"}},
        )
        registry.publish(
            "mona.Paged",
            "0.9.0",
            _files("0.9.0"),
            problem={"status": 410, "title": "Gone", "detail": "withdrawn by its author"},
        )
        client = await aiohttp_client(
            create_app(
                proxy_settings(tmp_path / "data", upstreams=[registry_upstream(registry.url)])
            )
        )
        listing = await client.get("/mona/Paged", headers=JSON_ACCEPT)
        body = await listing.json()
        assert list(body["releases"]) == ["2.1.0", "2.0.0", "1.2.0", "1.1.0", "1.0.0", "0.9.0"]
        proxy_base = str(client.make_url("/mona/Paged"))
        # Every page was merged; URLs point at the proxy, never at the upstream.
        assert body["releases"]["2.0.0"]["url"] == f"{proxy_base}/2.0.0"
        assert registry.url not in json.dumps(body)
        assert 'rel="next"' not in listing.headers.get("Link", "")
        assert body["releases"]["0.9.0"]["problem"]["detail"] == "withdrawn by its author"

        metadata = await (await client.get("/mona/Paged/2.1.0", headers=JSON_ACCEPT)).json()
        assert metadata["resources"][0]["signing"] == signing
        assert metadata["metadata"]["description"] == "signed one"
        archive = await client.get("/mona/Paged/2.1.0.zip", headers=ZIP_ACCEPT)
        assert archive.headers["X-Swift-Package-Signature-Format"] == "cms-1.0.0"
        assert archive.headers["X-Swift-Package-Signature"] == "c2lnbmF0dXJl"
        assert (
            metadata["resources"][0]["checksum"] == hashlib.sha256(await archive.read()).hexdigest()
        )

        manifest = await client.get("/mona/Paged/2.1.0/Package.swift", headers=SWIFT_ACCEPT)
        assert await manifest.text() == MANIFEST
        assert 'filename="Package@swift-5.9.swift"' in manifest.headers["Link"]
        assert str(client.make_url("/mona/Paged/2.1.0/Package.swift")) in manifest.headers["Link"]
        variant = await client.get(
            "/mona/Paged/2.1.0/Package.swift?swift-version=5.9.0", headers=SWIFT_ACCEPT
        )
        assert await variant.text() == alternate


async def test_archive_redirected_to_another_host_is_fetched_by_the_proxy(
    tmp_path: Path, aiohttp_client: ClientFactory
) -> None:
    async with RegistryServer() as cdn, RegistryServer(token=SECRET, archive_host=cdn) as registry:
        checksum = registry.publish("mona.Cdn", "1.0.0", _files("cdn"))
        cdn.publish("mona.Cdn", "1.0.0", _files("cdn"))
        client = await aiohttp_client(
            create_app(
                proxy_settings(
                    tmp_path / "data",
                    upstreams=[
                        registry_upstream(
                            registry.url,
                            auth={"type": "bearer", "token_env": "T"},
                            download_hosts=[cdn.url],
                        )
                    ],
                )
            )
        )
        archive = await client.get("/mona/Cdn/1.0.0.zip", headers=ZIP_ACCEPT)
        assert archive.status == 200, await archive.text()
        assert hashlib.sha256(await archive.read()).hexdigest() == checksum
        assert any(line.endswith("/mona/Cdn/1.0.0.zip") for line in cdn.requests)
        # The credentials for the registry were not handed to the other host.
        assert cdn.authorization_headers
        assert all(header is None for header in cdn.authorization_headers)


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T", SECRET)


async def test_routing_fall_through_private_scopes_and_identifiers(
    tmp_path: Path,
    registry: RegistryServer,
    git_server: GitHttpServer,
    aiohttp_client: ClientFactory,
) -> None:
    git_root = tmp_path / "git-root"
    publish_node(git_root)
    publish_linked_list(git_root)
    registry.identifiers["https://github.com/mona/Cached.git"] = ["mona.Cached"]
    settings = proxy_settings(
        tmp_path / "data",
        upstreams=[registry_upstream(registry.url), git_upstream(git_server.url)],
        routes=[
            {"scopes": ["internal"], "private": True},
            {"packages": ["mona.Node"], "upstreams": ["loopback-git"]},
            {"scopes": ["mona"], "upstreams": ["loopback-registry", "loopback-git"]},
        ],
    )
    client = await aiohttp_client(create_app(settings))

    # In the registry: served from it.
    assert (await client.get("/mona/Cached", headers=JSON_ACCEPT)).status == 200
    # Not in the registry (404): falls through to git.
    registry.requests.clear()
    linked = await client.get("/mona/LinkedList", headers=JSON_ACCEPT)
    assert list((await linked.json())["releases"]) == ["1.1.0", "1.0.0"]
    assert any("/mona/LinkedList" in line for line in registry.requests)
    # A package rule beats the scope rule: the registry is never asked.
    registry.requests.clear()
    assert (await client.get("/mona/Node", headers=JSON_ACCEPT)).status == 200
    assert registry.requests == []
    # A private scope never leaves the proxy.
    body = await problem(await client.get("/internal/Secret", headers=JSON_ACCEPT), 404)
    assert "private" in body["detail"]
    assert not any("internal" in line for line in registry.requests)
    # No scope rule matches: nothing is asked, 404.
    await problem(await client.get("/other/Thing", headers=JSON_ACCEPT), 404)

    # A failing registry does not let the next upstream answer in its place.
    registry.faults.add(Fault.SERVER_ERROR)
    await problem(await client.get("/mona/Brand-New", headers=JSON_ACCEPT), 502)
    registry.faults.clear()

    # /identifiers answers from the registry and from the git mapping together.
    by_registry = await client.get(
        "/identifiers", params={"url": "https://github.com/mona/Cached.git"}
    )
    assert (await by_registry.json())["identifiers"] == ["mona.Cached"]
    by_git = await client.get(
        "/identifiers", params={"url": f"{git_server.url}/mona/LinkedList.git"}
    )
    assert [i.lower() for i in (await by_git.json())["identifiers"]] == ["mona.linkedlist"]


async def test_offline_switch_never_opens_a_connection(
    tmp_path: Path, registry: RegistryServer, aiohttp_client: ClientFactory
) -> None:
    data = tmp_path / "data"
    online = await aiohttp_client(
        create_app(proxy_settings(data, upstreams=[registry_upstream(registry.url)]))
    )
    archive = await _warm(online)
    await online.close()

    registry.connections = 0
    registry.requests.clear()
    offline = await aiohttp_client(
        create_app(proxy_settings(data, upstreams=[registry_upstream(registry.url)], offline=True))
    )
    listing = await offline.get("/mona/Cached", headers=JSON_ACCEPT)
    assert listing.status == 200
    assert list((await listing.json())["releases"]) == ["1.0.0"]
    assert await (await offline.get("/mona/Cached/1.0.0.zip", headers=ZIP_ACCEPT)).read() == archive
    body = await problem(await offline.get("/mona/Fresh", headers=JSON_ACCEPT), 503)
    assert "offline" in body["detail"]
    await problem(await offline.get("/mona/Fresh/1.0.0.zip", headers=ZIP_ACCEPT), 503)
    assert registry.connections == 0
    assert registry.requests == []


async def test_repeated_failures_stop_calling_the_upstream_but_cache_serves(
    tmp_path: Path, registry: RegistryServer, aiohttp_client: ClientFactory
) -> None:
    settings = proxy_settings(
        tmp_path / "data",
        upstreams=[
            registry_upstream(
                registry.url, list_ttl_seconds=0, failure_threshold=2, offline_window_seconds=60
            )
        ],
    )
    client = await aiohttp_client(create_app(settings))
    await _warm(client)
    registry.faults.add(Fault.SERVER_ERROR)
    for _ in range(2):
        await problem(await client.get("/mona/Fresh", headers=JSON_ACCEPT), 502)
    registry.connections = 0
    registry.requests.clear()
    body = await problem(await client.get("/mona/Fresh", headers=JSON_ACCEPT), 503)
    assert "assumed offline" in body["detail"]
    stale = await client.get("/mona/Cached", headers=JSON_ACCEPT)
    assert stale.status == 200
    assert stale.headers["X-Cache-Status"] == "stale"
    assert registry.requests == []


async def test_online_policy_does_not_serve_stale_lists(
    tmp_path: Path, registry: RegistryServer, aiohttp_client: ClientFactory
) -> None:
    settings = proxy_settings(
        tmp_path / "data",
        upstreams=[
            registry_upstream(
                registry.url, network="online", list_ttl_seconds=0, failure_threshold=100
            )
        ],
    )
    client = await aiohttp_client(create_app(settings))
    await _warm(client)
    registry.faults.add(Fault.SERVER_ERROR)
    await problem(await client.get("/mona/Cached", headers=JSON_ACCEPT), 502)
    # Immutable releases are still served from the cache.
    assert (await client.get("/mona/Cached/1.0.0.zip", headers=ZIP_ACCEPT)).status == 200


async def test_credentials_never_appear_in_logs_or_responses(
    tmp_path: Path, aiohttp_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    basic_password = "b4sic-pa55word-do-not-leak"
    monkeypatch.setenv("REGISTRY_PASSWORD", basic_password)
    async with (
        RegistryServer(token=SECRET) as bearer,
        RegistryServer(username="ci", password=basic_password) as basic,
        RegistryServer(username="ci", password="another-password") as strict,
    ):
        bearer.publish("mona.Tok", "1.0.0", _files("tok"))
        basic.publish("acme.Pwd", "1.0.0", _files("pwd"))
        settings = proxy_settings(
            tmp_path / "data",
            upstreams=[
                registry_upstream(
                    bearer.url, name="bearer", auth={"type": "bearer", "token_env": "T"}
                ),
                registry_upstream(
                    basic.url,
                    name="basic",
                    auth={"type": "basic", "username": "ci", "password_env": "REGISTRY_PASSWORD"},
                ),
                registry_upstream(
                    strict.url,
                    name="strict",
                    auth={"type": "basic", "username": "ci", "password_env": "REGISTRY_PASSWORD"},
                ),
            ],
            routes=[
                {"scopes": ["acme"], "upstreams": ["basic"]},
                {"scopes": ["strict"], "upstreams": ["strict"]},
                {"scopes": ["*"], "upstreams": ["bearer"]},
            ],
        )
        client = await aiohttp_client(create_app(settings))
        texts: list[str] = []
        with structlog.testing.capture_logs() as logs:
            for path in (
                "/mona/Tok",
                "/mona/Tok/1.0.0",
                "/mona/Tok/1.0.0.zip",
                "/acme/Pwd",
                "/acme/Pwd/1.0.0.zip",
            ):
                response = await client.get(path)
                assert response.status == 200, await response.text()
                texts.append(str(dict(response.headers)))
            # An upstream that rejects our credentials: the problem must not echo them.
            rejected = await client.get("/strict/Other", headers=JSON_ACCEPT)
            body = await problem(rejected, 502)
            assert "credentials" in body["detail"]
            texts.append(json.dumps(body))
        texts.extend(json.dumps(event, default=str) for event in logs)
        everything = "\n".join(texts)
        for secret in (SECRET, basic_password):
            assert secret not in everything
        assert bearer.authorization_headers[-1] == f"Bearer {SECRET}"
