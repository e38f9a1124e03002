"""The registry API over HTTP, against real git repositories served on loopback."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest

from proxy.app import create_app
from tests.support.git_http import GitHttpServer
from tests.support.git_repos import GitRepo
from tests.support.http import JSON_ACCEPT, SWIFT_ACCEPT, ZIP_ACCEPT, Client, ClientFactory, problem
from tests.support.proxy import proxy_settings
from tests.support.swift_packages import (
    NODE_MANIFEST,
    NODE_MANIFEST_5_9,
    publish_linked_list,
    publish_node,
)


@pytest.fixture
def git_root(tmp_path: Path, git_server: GitHttpServer) -> Path:
    root = tmp_path / "git-root"
    publish_node(root)
    publish_linked_list(root)
    return root


@pytest.fixture
async def client(
    tmp_path: Path, git_root: Path, git_server: GitHttpServer, aiohttp_client: ClientFactory
) -> Client:
    return await aiohttp_client(create_app(proxy_settings(tmp_path / "data", git_server.url)))


async def test_list_releases(client: Client) -> None:
    response = await client.get("/mona/LinkedList", headers=JSON_ACCEPT)
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.headers["Content-Version"] == "1"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Cache-Status"] == "miss"
    body = await response.json()
    assert list(body["releases"]) == ["1.1.0", "1.0.0"]
    base = str(client.make_url("/mona/LinkedList"))
    assert body["releases"]["1.1.0"]["url"] == f"{base}/1.1.0"
    links = response.headers["Link"]
    assert f'<{base}/1.1.0>; rel="latest-version"' in links
    assert 'rel="canonical"' in links
    assert 'rel="alternate"' in links

    again = await client.get("/MONA/linkedlist.json", headers=JSON_ACCEPT)
    assert again.headers["X-Cache-Status"] == "hit"
    assert list((await again.json())["releases"]) == ["1.1.0", "1.0.0"]


async def test_release_metadata(client: Client) -> None:
    # SwiftPM lists releases before it asks for one; neighbour links come from that list.
    assert (await client.get("/mona/LinkedList", headers=JSON_ACCEPT)).status == 200
    response = await client.get("/mona/LinkedList/1.0.0", headers=JSON_ACCEPT)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Version"] == "1"
    body = await response.json()
    assert body["id"] == "mona.LinkedList"
    assert body["version"] == "1.0.0"
    [resource] = body["resources"]
    assert resource["name"] == "source-archive"
    assert resource["type"] == "application/zip"
    archive = await (await client.get("/mona/LinkedList/1.0.0.zip", headers=ZIP_ACCEPT)).read()
    assert resource["checksum"] == hashlib.sha256(archive).hexdigest()
    metadata = body["metadata"]
    assert metadata["repositoryURLs"][0].endswith("/mona/LinkedList.git")
    assert metadata["originalPublicationTime"] == "2023-11-14T22:15:00Z"  # commit time
    assert len(metadata["sourceControl"]["commit"]) == 40
    assert body["publishedAt"].endswith("Z")
    base = str(client.make_url("/mona/LinkedList"))
    links = response.headers["Link"]
    assert f'<{base}/1.1.0>; rel="latest-version"' in links
    assert f'<{base}/1.1.0>; rel="successor-version"' in links
    assert "predecessor-version" not in links


async def test_annotated_v_tag_uses_tagger_time(client: Client) -> None:
    body = await (await client.get("/mona/LinkedList/1.1.0", headers=JSON_ACCEPT)).json()
    assert body["metadata"]["originalPublicationTime"] == "2023-11-14T22:18:20Z"
    assert body["metadata"]["sourceControl"]["tag"] == "v1.1.0"


async def test_source_archive(client: Client) -> None:
    response = await client.get("/mona/Node/1.0.0.zip", headers=ZIP_ACCEPT)
    assert response.status == 200
    data = await response.read()
    assert response.headers["Content-Type"] == "application/zip"
    assert int(response.headers["Content-Length"]) == len(data)
    assert response.headers["Content-Disposition"] == 'attachment; filename="Node-1.0.0.zip"'
    assert response.headers["Accept-Ranges"] == "bytes"
    assert "immutable" in response.headers["Cache-Control"]
    assert response.headers["Content-Version"] == "1"
    digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert response.headers["Digest"] == f"sha-256={digest}"
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        assert {name.split("/")[0] for name in names} == {"mona.node"}
        assert archive.read("mona.node/Package.swift").decode() == NODE_MANIFEST

    ranged = await client.get("/mona/Node/1.0.0.zip", headers={**ZIP_ACCEPT, "Range": "bytes=0-9"})
    assert ranged.status == 206
    assert await ranged.read() == data[:10]

    head = await client.head("/mona/Node/1.0.0.zip", headers=ZIP_ACCEPT)
    assert head.status == 200
    assert int(head.headers["Content-Length"]) == len(data)


async def test_manifest_and_alternates(client: Client) -> None:
    response = await client.get("/mona/Node/1.0.0/Package.swift", headers=SWIFT_ACCEPT)
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/x-swift")
    assert response.headers["Content-Version"] == "1"
    assert response.headers["Content-Disposition"] == 'attachment; filename="Package.swift"'
    assert await response.text() == NODE_MANIFEST
    base = str(client.make_url("/mona/Node/1.0.0/Package.swift"))
    assert response.headers["Link"] == (
        f'<{base}?swift-version=5.9>; rel="alternate"; '
        'filename="Package@swift-5.9.swift"; swift-tools-version="5.9"'
    )

    # SwiftPM's client asks in X.Y.Z form (SE-0292 4.3.1; its RegistryClient.swift).
    variant = await client.get(
        "/mona/Node/1.0.0/Package.swift?swift-version=5.9.0", headers=SWIFT_ACCEPT
    )
    assert variant.status == 200
    assert await variant.text() == NODE_MANIFEST_5_9
    assert (
        variant.headers["Content-Disposition"] == 'attachment; filename="Package@swift-5.9.swift"'
    )

    fallback = await client.get(
        "/mona/Node/1.0.0/Package.swift?swift-version=6.0",
        headers=SWIFT_ACCEPT,
        allow_redirects=False,
    )
    assert fallback.status == 303
    assert fallback.headers["Location"].endswith("/mona/Node/1.0.0/Package.swift")
    assert fallback.headers["Content-Version"] == "1"


async def test_identifiers_accept_every_url_form(
    client: Client,
    git_server: GitHttpServer,
) -> None:
    host_port = git_server.url.removeprefix("http://")
    host = host_port.split(":")[0]
    forms = [
        f"{git_server.url}/mona/LinkedList.git",
        f"{git_server.url}/mona/LinkedList",
        f"{git_server.url}/mona/LinkedList/",
        f"https://{host}/mona/LinkedList.git",
        f"ssh://git@{host}/mona/LinkedList.git",
        f"git@{host}:mona/LinkedList.git",
        f"HTTP://{host_port.upper()}/mona/LinkedList.GIT",
    ]
    for form in forms:
        response = await client.get("/identifiers", params={"url": form}, headers=JSON_ACCEPT)
        assert response.status == 200, form
        assert response.headers["Content-Version"] == "1"
        identifiers = (await response.json())["identifiers"]
        assert [i.lower() for i in identifiers] == ["mona.linkedlist"], form


async def test_identifiers_for_unknown_hosts_never_leave_the_proxy(
    client: Client,
    git_server: GitHttpServer,
) -> None:
    git_server.reset_counters()
    response = await client.get(
        "/identifiers", params={"url": "https://elsewhere.example/mona/LinkedList.git"}
    )
    await problem(response, 404)
    assert git_server.ref_advertisements == 0
    assert git_server.upload_pack_requests == 0
    await problem(await client.get("/identifiers"), 400)


@pytest.mark.parametrize(
    "path",
    [
        "/-bad/LinkedList",
        "/mona/Linked..List",
        "/mona/LinkedList/1.0",
        "/mona/LinkedList/v1.0.0.zip",
        "/mona/LinkedList/1.0.0.0/Package.swift",
        "/mona/LinkedList/1.0.0/Package.swift?swift-version=x",
    ],
)
async def test_bad_input_is_a_400problem(client: Client, path: str) -> None:
    await problem(await client.get(path), 400)


async def test_unknown_package_and_release_are_404(client: Client) -> None:
    await problem(await client.get("/mona/Missing", headers=JSON_ACCEPT), 404)
    await problem(await client.get("/mona/LinkedList/9.9.9", headers=JSON_ACCEPT), 404)
    await problem(await client.get("/mona/LinkedList/9.9.9.zip", headers=ZIP_ACCEPT), 404)
    await problem(await client.get("/no/such/route/here/at/all"), 404)


async def test_accept_negotiation(client: Client) -> None:
    v2 = {"Accept": "application/vnd.swift.registry.v2+json"}
    await problem(await client.get("/mona/LinkedList", headers=v2), 415)
    bad = {"Accept": "application/vnd.swift.registry.vX+json"}
    await problem(await client.get("/mona/LinkedList", headers=bad), 400)
    plain = await client.get("/mona/LinkedList", headers={"Accept": "application/json"})
    assert plain.status == 200


async def test_head_answers_like_get(client: Client) -> None:
    head = await client.head("/mona/LinkedList", headers=JSON_ACCEPT)
    assert head.status == 200
    assert head.headers["Content-Version"] == "1"
    assert await head.read() == b""
    head = await client.head("/mona/LinkedList/1.0.0/Package.swift", headers=SWIFT_ACCEPT)
    assert head.status == 200
    problem = await client.head("/mona/LinkedList/9.9.9", headers=JSON_ACCEPT)
    assert problem.status == 404
    assert problem.headers["Content-Version"] == "1"


async def test_publish_is_not_supported(client: Client) -> None:
    body = await problem(await client.put("/mona/LinkedList/2.0.0", data=b"x"), 405)
    assert "publishing" in str(body["detail"])


async def test_availability(client: Client) -> None:
    response = await client.get("/availability")
    assert response.status == 200
    assert response.headers["Content-Version"] == "1"


async def test_concurrent_requests_for_one_release_cause_one_fetch(
    client: Client,
    git_server: GitHttpServer,
) -> None:
    git_server.reset_counters()
    responses = await asyncio.gather(
        *(client.get("/mona/LinkedList/1.0.0", headers=JSON_ACCEPT) for _ in range(50))
    )
    bodies = [await response.json() for response in responses]
    assert {response.status for response in responses} == {200}
    assert len({body["resources"][0]["checksum"] for body in bodies}) == 1
    assert git_server.upload_pack_requests == 1


async def test_same_tag_gives_identical_bytes_across_proxies(
    tmp_path: Path, git_root: Path, git_server: GitHttpServer, aiohttp_client: ClientFactory
) -> None:
    archives = []
    for data_dir in ("one", "two"):
        proxy = await aiohttp_client(
            create_app(proxy_settings(tmp_path / data_dir, git_server.url))
        )
        response = await proxy.get("/mona/LinkedList/1.1.0.zip", headers=ZIP_ACCEPT)
        archives.append(await response.read())
    assert archives[0] == archives[1]
    # The same proxy building the same tag again (blob gone) gives the same bytes too.
    blobs = list((tmp_path / "one" / "blobs" / "sha256").rglob("*"))
    digest = hashlib.sha256(archives[0]).hexdigest()
    [blob] = [path for path in blobs if path.name == digest]
    blob.unlink()
    proxy = await aiohttp_client(create_app(proxy_settings(tmp_path / "one", git_server.url)))
    rebuilt = await proxy.get("/mona/LinkedList/1.1.0.zip", headers=ZIP_ACCEPT)
    assert rebuilt.status == 200
    assert await rebuilt.read() == archives[0]


async def test_moved_tag_never_changes_a_served_release(
    tmp_path: Path, git_root: Path, git_server: GitHttpServer, aiohttp_client: ClientFactory
) -> None:
    proxy = await aiohttp_client(create_app(proxy_settings(tmp_path / "data", git_server.url)))
    original = await (await proxy.get("/mona/Node/1.0.0.zip", headers=ZIP_ACCEPT)).read()
    recorded = hashlib.sha256(original).hexdigest()

    repo = GitRepo(git_root / "mona" / "Node")
    repo.write("Sources/Node/Extra.swift", "public let extra = 1\n")
    repo.commit("sneaky change", when=1_700_009_999)
    repo.tag("1.0.0", force=True)

    again = await proxy.get("/mona/Node/1.0.0.zip", headers=ZIP_ACCEPT)
    assert await again.read() == original

    for blob in (tmp_path / "data" / "blobs" / "sha256").rglob(recorded):
        blob.unlink()
    refused = await proxy.get("/mona/Node/1.0.0.zip", headers=ZIP_ACCEPT)
    body = await problem(refused, 502)
    assert recorded in str(body["detail"])
    assert body["recorded_checksum"] == recorded
    assert body["actual_checksum"] != recorded
    assert str(body["actual_checksum"]) in str(body["detail"])
    # Metadata keeps announcing the recorded checksum.
    metadata = await (await proxy.get("/mona/Node/1.0.0", headers=JSON_ACCEPT)).json()
    assert metadata["resources"][0]["checksum"] == recorded


async def test_unreachable_upstream_is_a_problem_and_cached_lists_still_serve(
    tmp_path: Path, git_root: Path, aiohttp_client: ClientFactory
) -> None:
    server = GitHttpServer(git_root)
    server.start()
    url_with_secret = server.url.replace("http://", "http://deploy:hunter2@")
    settings = proxy_settings(tmp_path / "data", url_with_secret, list_ttl_seconds=0)
    proxy = await aiohttp_client(create_app(settings))
    first = await proxy.get("/mona/LinkedList", headers=JSON_ACCEPT)
    assert first.status == 200
    server.stop()

    stale = await proxy.get("/mona/LinkedList", headers=JSON_ACCEPT)
    assert stale.status == 200
    assert stale.headers["X-Cache-Status"] == "stale"
    assert list((await stale.json())["releases"]) == ["1.1.0", "1.0.0"]

    failed = await proxy.get("/mona/Node", headers=JSON_ACCEPT)
    body = await problem(failed, failed.status)
    assert failed.status in (502, 504)
    assert "loopback-git" in str(body["detail"])
    assert "hunter2" not in json.dumps(body)


async def test_private_scope_serves_only_what_the_proxy_holds(
    tmp_path: Path, git_root: Path, git_server: GitHttpServer, aiohttp_client: ClientFactory
) -> None:
    data = tmp_path / "data"
    filler = await aiohttp_client(create_app(proxy_settings(data, git_server.url)))
    archive = await (await filler.get("/mona/Node/1.0.0.zip", headers=ZIP_ACCEPT)).read()
    assert (await filler.get("/mona/Node", headers=JSON_ACCEPT)).status == 200
    await filler.close()

    # The same data, now with `mona` private and lists long expired.
    private = proxy_settings(
        data, git_server.url, list_ttl_seconds=0, routes=[{"scopes": ["mona"], "private": True}]
    )
    proxy = await aiohttp_client(create_app(private))
    git_server.reset_counters()
    listing = await proxy.get("/mona/Node", headers=JSON_ACCEPT)
    assert listing.status == 200
    assert list((await listing.json())["releases"]) == ["1.0.0"]
    assert await (await proxy.get("/mona/Node/1.0.0.zip", headers=ZIP_ACCEPT)).read() == archive
    body = await problem(await proxy.get("/mona/LinkedList", headers=JSON_ACCEPT), 404)
    assert "private" in str(body["detail"])
    assert git_server.ref_advertisements == 0
    # No rule for the scope at all: nothing to ask, 404 naming the scope.
    body = await problem(await proxy.get("/other/Thing", headers=JSON_ACCEPT), 404)
    assert "'other'" in str(body["detail"])


async def test_a_miscased_miss_does_not_hide_the_package(
    client: Client, git_server: GitHttpServer
) -> None:
    # The loopback git host is case-sensitive, like some corporate servers.
    await problem(await client.get("/Mona/node/1.0.0", headers=JSON_ACCEPT), 404)
    await problem(await client.get("/Mona/node", headers=JSON_ACCEPT), 404)
    assert (await client.get("/mona/Node/1.0.0", headers=JSON_ACCEPT)).status == 200
    # Once found, every spelling reaches the same repository.
    assert (await client.get("/MONA/NODE", headers=JSON_ACCEPT)).status == 200
    misspelt = await client.get(
        "/identifiers", params={"url": f"{git_server.url}/MONA/linkedlist.git"}
    )
    await problem(misspelt, 404)
    assert (await client.get("/mona/LinkedList", headers=JSON_ACCEPT)).status == 200
