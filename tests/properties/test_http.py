"""Hostile requests against a running app: a 4xx problem or a proper answer, never a 5xx.

Path segments, `swift-version`, `Accept`, `/identifiers?url=`, `Range` and
the conditional headers are drawn from arbitrary Unicode, bytes and near
misses of valid values. The app builds real releases from git repositories on
loopback (mona.LinkedList, and mona.Node with a `Package@swift-5.9.swift`), so
half of the requests name real packages and releases and reach the parsers
behind the path. Every error must be what SwiftPM can read (SE-0292 3.3,
RFC 9457): `application/problem+json`, `Content-Version: 1`, a `detail`.
"""

from __future__ import annotations

import unicodedata
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import ClientResponse
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from yarl import URL

from proxy.app import create_app
from tests.properties.strategies import (
    accept_headers,
    hostile,
    names,
    ranges,
    scopes,
    semantic_versions,
    swift_versions,
)
from tests.support.git_http import GitHttpServer
from tests.support.http import JSON_ACCEPT, SWIFT_ACCEPT, ZIP_ACCEPT, Client, ClientFactory
from tests.support.proxy import proxy_settings, registry_upstream
from tests.support.registry_server import RegistryServer
from tests.support.swift_packages import publish_linked_list, publish_node
from upstreams.locations import lookup_form

# One app serves every example of a test: what a request leaves behind (a cached
# release, a remembered miss) is what later requests meet in production too.
shared_app = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])

REAL_PACKAGES = [("mona", "LinkedList"), ("MONA", "linkedlist"), ("mona", "Node")]
REAL_VERSIONS = ["1.0.0", "1.1.0", "1.0.0.zip", "1.0.0.json"]
ARCHIVE = "/mona/LinkedList/1.0.0.zip"


@pytest.fixture
async def client(
    tmp_path: Path, git_server: GitHttpServer, aiohttp_client: ClientFactory
) -> Client:
    publish_node(git_server.root)
    publish_linked_list(git_server.root)
    return await aiohttp_client(create_app(proxy_settings(tmp_path / "data", git_server.url)))


def _segment(text: str) -> str:
    """A path segment as a client would encode it; invalid UTF-8 stays invalid."""
    return quote(text.encode("utf-8", "surrogatepass"), safe="+@:-._~!$&'()*,;=")


def _header_value(text: str) -> str:
    """`text` without what no header field can carry (RFC 9110 5.5): controls but
    HTAB, and lone surrogates, which have no UTF-8 form."""
    return "".join(
        char for char in text if char == "\t" or unicodedata.category(char) not in ("Cc", "Cs")
    )


async def get(client: Client, target: str, headers: dict[str, str]) -> ClientResponse:
    """GET an already encoded path and query, exactly as given (`//x` included)."""
    root = str(client.make_url("/")).removesuffix("/")
    url = URL(root + target, encoded=True)
    return await client.session.get(url, headers=headers, allow_redirects=False)


async def answered(response: ClientResponse, *allowed: int) -> None:
    """A status of `allowed`; an error as a problem SwiftPM can read; never a 5xx."""
    body = await response.read()
    assert response.status < 500, body[:500]
    assert response.status in allowed, (response.status, body[:500])
    assert response.headers.get("Content-Version") == "1"
    if response.status >= 400:
        assert response.headers["Content-Type"] == "application/problem+json"
        problem: dict[str, Any] = await response.json(content_type=None)
        assert isinstance(problem.get("detail"), str)
        assert problem["detail"]
        assert problem["status"] == response.status


segments = st.one_of(
    hostile(scopes),
    hostile(names),
    hostile(semantic_versions()),
    st.binary(max_size=12).map(lambda raw: raw.decode("utf-8", "surrogateescape")),
)
packages = st.one_of(st.sampled_from(REAL_PACKAGES), st.tuples(hostile(scopes), hostile(names)))
versions = st.one_of(st.sampled_from(REAL_VERSIONS), hostile(semantic_versions()), segments)


@shared_app
@given(packages, versions, st.sampled_from(["", ".json", "/Package.swift", "/"]))
@example(("mona", "LinkedList"), "1.1\u0665.0", "")
@example(("mona", "LinkedList"), "1.0." + "9" * 5000, "")
@example(("mon\u0430", "LinkedList"), "1.0.0", "")  # CYRILLIC SMALL LETTER A
async def test_registry_paths(
    client: Client, package: tuple[str, str], version: str, tail: str
) -> None:
    scope, name = package
    for path in (
        f"/{_segment(scope)}/{_segment(name)}{tail if tail == '.json' else ''}",
        f"/{_segment(scope)}/{_segment(name)}/{_segment(version)}{tail}",
    ):
        response = await get(client, path, JSON_ACCEPT)
        await answered(response, 200, 303, 400, 404, 405, 415)


@shared_app
@given(st.sampled_from(REAL_PACKAGES[1:]), hostile(swift_versions))
@example(("mona", "Node"), "5\u00b9")  # SUPERSCRIPT ONE: the 500 OpenAPI fuzzing found
@example(("mona", "Node"), "\u0665.\u0669")  # Arabic-Indic 5.9
@example(("mona", "Node"), "5.9.0")
@example(("mona", "Node"), "9" * 5000)
async def test_swift_version_queries(
    client: Client, package: tuple[str, str], swift_version: str
) -> None:
    scope, name = package
    query = quote(swift_version.encode("utf-8", "surrogatepass"), safe="")
    path = f"/{scope}/{name}/1.0.0/Package.swift?swift-version={query}"
    response = await get(client, path, SWIFT_ACCEPT)
    await answered(response, 200, 303, 400, 404)


ENDPOINTS = [
    "/mona/LinkedList",
    "/mona/LinkedList/1.0.0",
    "/mona/LinkedList/1.0.0.zip",
    "/mona/Node/1.0.0/Package.swift",
    "/identifiers?url=https://127.0.0.1/mona/LinkedList.git",
]


@shared_app
@given(st.sampled_from(ENDPOINTS), hostile(accept_headers).map(_header_value), st.text(max_size=40))
@example(ENDPOINTS[0], "application/vnd.\u017fwift.registry.v2+json", "")
async def test_accept_headers(client: Client, endpoint: str, accept: str, request_id: str) -> None:
    headers = {"Accept": accept, "X-Request-Id": _header_value(request_id)}
    response = await get(client, endpoint, headers)
    await answered(response, 200, 400, 404, 415)


conditional = st.one_of(
    st.none(),
    hostile(st.sampled_from(['"abc"', 'W/"abc"', "*", "Tue, 14 Nov 2023 22:15:00 GMT"])).map(
        _header_value
    ),
)


@shared_app
@given(hostile(ranges).map(_header_value), conditional, conditional, conditional, conditional)
@example("bytes=" + "9" * 5000 + "-", None, None, None, None)
@example("bytes=0-0", None, None, "Sun, 31 Dec 9999 23:59:59 -2359", None)
@example("bytes=0-0", None, None, "Mon, 01 Jan 0001 00:00:00 +2359", None)
async def test_archive_ranges_and_conditions(
    client: Client,
    byte_range: str,
    if_none_match: str | None,
    if_match: str | None,
    if_modified_since: str | None,
    if_range: str | None,
) -> None:
    headers = {**ZIP_ACCEPT, "Range": byte_range}
    for name, value in (
        ("If-None-Match", if_none_match),
        ("If-Match", if_match),
        ("If-Modified-Since", if_modified_since),
        ("If-Unmodified-Since", if_modified_since),
        ("If-Range", if_range),
    ):
        if value is not None:
            headers[name] = value
    response = await get(client, ARCHIVE, headers)
    await answered(response, 200, 206, 304, 412, 416)


# -- /identifiers ---------------------------------------------------------------


@pytest.fixture
async def registry() -> AsyncIterator[RegistryServer]:
    async with RegistryServer() as server:
        yield server


@pytest.fixture
async def registry_client(
    tmp_path: Path, registry: RegistryServer, aiohttp_client: ClientFactory
) -> Client:
    settings = proxy_settings(tmp_path / "data", upstreams=[registry_upstream(registry.url)])
    return await aiohttp_client(create_app(settings))


repository_urls = st.one_of(
    st.builds(
        lambda scheme, host, path: f"{scheme}{host}/{path}",
        st.sampled_from(["https://", "http://", "ssh://git@", ""]),
        st.sampled_from(["github.com", "git.example.com:8443", "[::1]"]),
        st.text(max_size=30),
    ),
    st.builds(lambda path: f"git@github.com:{path}.git", st.text(max_size=30)),
)


@shared_app
@given(hostile(repository_urls))
@example("https://github.com/mona/c++lib.git")  # `+` arrives unencoded from SwiftPM
@example("https://github.com/mona/100%25.git")
@example("https://github.com/mona/a%2526b.git")
async def test_identifiers_urls(
    registry_client: Client, registry: RegistryServer, url: str
) -> None:
    """The registry upstream is asked for exactly the URL the client sent, as
    Foundation's URLQueryItem encodes it (`+` left as is), or the proxy says 400."""
    encoded = quote(url.encode("utf-8", "surrogatepass"), safe=":/@+")
    registry.requests.clear()
    response = await get(registry_client, f"/identifiers?url={encoded}", JSON_ACCEPT)
    await answered(response, 400, 404)
    if response.status == 400:
        return
    forwarded = lookup_form(url)
    expected = [] if forwarded is None else [f"GET /identifiers?url={quote(forwarded, safe='')}"]
    assert registry.requests == expected


@shared_app
@given(hostile(repository_urls), st.sampled_from(["", "http://127.0.0.1/mona/Node.git"]))
@example("https://127.0.0.1/mona/LinkedList.git", "")
@example("git@127.0.0.1:MONA/linkedlist.git", "")
async def test_identifiers_urls_of_git_repositories(client: Client, url: str, real: str) -> None:
    """The git upstream matches any URL against its template, and may look the
    repository up on the loopback git server: an answer, never a 5xx."""
    encoded = quote((real or url).encode("utf-8", "surrogatepass"), safe=":/@+")
    response = await get(client, f"/identifiers?url={encoded}", JSON_ACCEPT)
    await answered(response, 200, 400, 404)


@shared_app
@given(st.binary(max_size=40))
@example(b"url=%FF%FE")
@example(b"url=%00")
@example(b"url=")
async def test_identifiers_raw_queries(registry_client: Client, query: bytes) -> None:
    encoded = quote(query, safe="=&%+:/@")
    response = await get(registry_client, f"/identifiers?{encoded}", JSON_ACCEPT)
    await answered(response, 400, 404)
