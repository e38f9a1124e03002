"""Protocol edges: methods, login, conditional and range requests, caches in front of the proxy."""

from __future__ import annotations

import hashlib
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from proxy.app import create_app
from tests.support.git_http import GitHttpServer
from tests.support.http import JSON_ACCEPT, ZIP_ACCEPT, Client, ClientFactory, problem
from tests.support.proxy import proxy_settings
from tests.support.swift_packages import publish_linked_list


@pytest.fixture
async def client(
    tmp_path: Path, git_server: GitHttpServer, aiohttp_client: ClientFactory
) -> Client:
    publish_linked_list(git_server.root)
    return await aiohttp_client(create_app(proxy_settings(tmp_path / "data", git_server.url)))


async def _archive(client: Client) -> tuple[bytes, str]:
    response = await client.get("/mona/LinkedList/1.0.0.zip", headers=ZIP_ACCEPT)
    assert response.status == 200
    data = await response.read()
    return data, hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/mona/LinkedList/1.0.0", "GET, HEAD"),
        ("DELETE", "/mona/LinkedList", "GET, HEAD"),
        ("POST", "/identifiers", "GET, HEAD"),
        ("GET", "/login", "POST"),
        ("PATCH", "/availability", "GET, HEAD"),
    ],
)
async def test_405_names_the_methods_the_path_accepts(
    client: Client, method: str, path: str, allowed: str
) -> None:
    response = await client.request(method, path)

    body = await problem(response, 405)
    assert response.headers["Allow"] == allowed
    assert method in body["detail"] or "publishing" in body["detail"]


async def test_publishing_is_refused_with_a_reason(client: Client) -> None:
    body = await problem(await client.put("/mona/LinkedList/1.0.0", data=b"x"), 405)
    assert "publishing isn't supported" in body["detail"]


async def test_login_answers_501_until_clients_authenticate(client: Client) -> None:
    body = await problem(await client.post("/login"), 501)
    assert "login" in body["detail"]


async def test_the_archive_etag_is_its_checksum_and_revalidates(client: Client) -> None:
    data, checksum = await _archive(client)
    again = await client.get("/mona/LinkedList/1.0.0.zip", headers=ZIP_ACCEPT)
    assert again.headers["ETag"] == f'"{checksum}"'

    for etag in (f'"{checksum}"', f'W/"{checksum}"', f'"other", "{checksum}"', "*"):
        cached = await client.get(
            "/mona/LinkedList/1.0.0.zip", headers={**ZIP_ACCEPT, "If-None-Match": etag}
        )
        assert cached.status == 304, etag
        assert cached.headers["ETag"] == f'"{checksum}"'
        assert cached.headers["Content-Version"] == "1"
        assert await cached.read() == b""
    changed = await client.get(
        "/mona/LinkedList/1.0.0.zip", headers={**ZIP_ACCEPT, "If-None-Match": '"other"'}
    )
    assert changed.status == 200
    assert await changed.read() == data


async def test_if_match_and_if_range_use_the_checksum(client: Client) -> None:
    data, checksum = await _archive(client)

    matching = await client.get(
        "/mona/LinkedList/1.0.0.zip",
        headers={**ZIP_ACCEPT, "If-Match": f'"{checksum}"', "Range": "bytes=0-9"},
    )
    assert matching.status == 206
    assert await matching.read() == data[:10]
    failed = await client.get(
        "/mona/LinkedList/1.0.0.zip", headers={**ZIP_ACCEPT, "If-Match": '"other"'}
    )
    await problem(failed, 412)
    resumed = await client.get(
        "/mona/LinkedList/1.0.0.zip",
        headers={**ZIP_ACCEPT, "If-Range": f'"{checksum}"', "Range": "bytes=10-"},
    )
    assert (resumed.status, await resumed.read()) == (206, data[10:])
    stale = await client.get(
        "/mona/LinkedList/1.0.0.zip",
        headers={**ZIP_ACCEPT, "If-Range": '"other"', "Range": "bytes=10-"},
    )
    assert (stale.status, await stale.read()) == (200, data)


async def test_range_headers_are_read_as_rfc_9110_writes_them(client: Client) -> None:
    data, _ = await _archive(client)
    path = "/mona/LinkedList/1.0.0.zip"
    for headers in (
        # Field names and the range unit are case-insensitive (RFC 9110 5.1, 14.1);
        # proxies in front may send lower-case names.
        {"range": "bytes=10-"},
        {"Range": "BYTES=10-"},
        # A last position past the end means the end, however many digits it has.
        {"Range": "bytes=10-" + "9" * 5000},
    ):
        resumed = await client.get(path, headers={**ZIP_ACCEPT, **headers})
        assert (resumed.status, await resumed.read()) == (206, data[10:]), headers
    stale = await client.get(
        path, headers={**ZIP_ACCEPT, "if-range": '"other"', "range": "bytes=10-"}
    )
    assert (stale.status, await stale.read()) == (200, data)


@pytest.mark.parametrize(
    "ranges", ["bytes=999999999-", "bytes=5-2", "bytes=0-1,4-5", "pages=1", "bytes=-0"]
)
async def test_unsatisfiable_ranges_are_416_problems(client: Client, ranges: str) -> None:
    data, _ = await _archive(client)

    response = await client.get(
        "/mona/LinkedList/1.0.0.zip", headers={**ZIP_ACCEPT, "Range": ranges}
    )

    await problem(response, 416)
    assert response.headers["Content-Range"] == f"bytes */{len(data)}"


async def test_last_modified_is_never_later_than_date(client: Client) -> None:
    # A freshly filled archive: the file is seconds old; its publication time is older.
    response = await client.get("/mona/LinkedList/1.0.0.zip", headers=ZIP_ACCEPT)
    assert response.status == 200

    modified = parsedate_to_datetime(response.headers["Last-Modified"])
    sent = parsedate_to_datetime(response.headers["Date"])
    assert modified <= sent
    since = await client.get(
        "/mona/LinkedList/1.0.0.zip",
        headers={**ZIP_ACCEPT, "If-Modified-Since": response.headers["Last-Modified"]},
    )
    assert since.status == 304


@pytest.mark.parametrize(
    ("path", "accept"),
    [
        ("/mona/LinkedList", JSON_ACCEPT),
        ("/mona/LinkedList/1.0.0", JSON_ACCEPT),
        ("/mona/LinkedList/1.0.0.zip", ZIP_ACCEPT),
        ("/mona/LinkedList/1.0.0/Package.swift", {"Accept": "application/vnd.swift.registry"}),
        ("/identifiers?url=https://example.invalid/a/b", JSON_ACCEPT),
    ],
)
async def test_answers_that_depend_on_accept_say_so(
    client: Client, path: str, accept: dict[str, str]
) -> None:
    good = await client.get(path, headers=accept)
    refused = await client.get(path, headers={"Accept": "application/vnd.swift.registry.v2+json"})

    assert good.headers["Vary"] == "Accept"
    assert refused.status == 415
    assert refused.headers["Vary"] == "Accept"


async def test_availability_does_not_vary(client: Client) -> None:
    response = await client.get("/availability")
    assert response.status == 200
    assert "Vary" not in response.headers
