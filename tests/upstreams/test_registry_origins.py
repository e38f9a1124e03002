"""A registry upstream fetches only from its own origin and its configured download hosts.

Redirects, `rel="next"` pages and alternate manifest links are the registry's
to choose; a target anywhere else is refused before a connection is opened.
The "elsewhere" servers below count connections to prove it.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from structlog.testing import capture_logs
from yarl import URL

from cache.embedded import FileDocuments
from tests.support.registry_server import RegistryServer
from tests.support.storage import fetch_to
from tests.upstreams.conftest import MakeRegistry
from upstreams.credentials import Credentials
from upstreams.errors import RedirectRefused
from upstreams.model import PackageId, Version
from upstreams.registry.client import RegistryClient
from upstreams.registry.media import ACCEPT_JSON, JSON_DOCUMENT
from upstreams.registry.origins import Origin

PACKAGE = PackageId("mona", "LinkedList")
VERSION = Version.parse("1.0.0")
MANIFEST = b"// swift-tools-version:5.9\nimport PackageDescription\n"
MANIFEST_58 = b"// swift-tools-version:5.8\nimport PackageDescription\n"
FILES: dict[str, str | bytes] = {"Package.swift": MANIFEST, "Sources/L/L.swift": "struct L {}\n"}
SECRET = "s3cr3t-t0ken-value"
SIGNATURE = "X-Amz-Signature=d0-n0t-l0g-me"


# These tests assert what was logged.
pytestmark = pytest.mark.usefixtures("structlog_defaults")


@pytest.fixture
async def elsewhere() -> AsyncIterator[RegistryServer]:
    """A host nobody configured: it must never see a connection."""
    async with RegistryServer() as server:
        server.publish(str(PACKAGE), "1.0.0", FILES)
        yield server


def _port(server: RegistryServer) -> int:
    port = URL(server.url).port
    assert port is not None
    return port


def _assert_refused(error: RedirectRefused, target: str, *secrets: str) -> None:
    assert error.upstream == "corp-registry"
    assert error.detail.startswith("corp-registry: ")
    assert target in error.detail
    assert error.url is not None
    assert target in error.url
    for secret in secrets:
        assert secret not in error.detail
        assert secret not in error.url


# -- redirects ----------------------------------------------------------------


async def test_archive_redirect_to_another_port_is_refused_and_nothing_is_fetched(
    make_registry: MakeRegistry, elsewhere: RegistryServer, tmp_path: Path
) -> None:
    archive = tmp_path / "a.zip"
    host = elsewhere.url.removeprefix("http://")
    async with RegistryServer(token=SECRET) as origin:
        origin.publish(str(PACKAGE), "1.0.0", FILES)
        # Userinfo and a signed query: neither may reach an error or a log.
        origin.archive_redirect = f"http://ci:pa55w0rd@{host}/mona/LinkedList/1.0.0.zip?{SIGNATURE}"
        upstream = make_registry(origin.url, credentials=Credentials("bearer", SECRET))

        with capture_logs() as logs, pytest.raises(RedirectRefused) as caught:
            await fetch_to(upstream, PACKAGE, VERSION, archive)

    _assert_refused(
        caught.value, f"http://{host}/mona/LinkedList/1.0.0.zip", "pa55w0rd", "ci:", SIGNATURE
    )
    assert elsewhere.connections == 0
    assert not archive.exists()
    [refusal] = [entry for entry in logs if entry["event"] == "redirect_refused"]
    assert refusal["target"] == f"http://{host}/mona/LinkedList/1.0.0.zip"
    for secret in ("pa55w0rd", SIGNATURE, SECRET):
        assert secret not in str(logs)


async def test_credentials_in_a_redirect_on_the_own_origin_are_dropped(
    aiohttp_server: Any, tmp_path: Path
) -> None:
    seen: list[str | None] = []

    async def moved(request: web.Request) -> web.Response:
        host = request.host
        return web.Response(status=302, headers={"Location": f"http://intruder:pw@{host}/real"})

    async def real(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization"))
        return web.json_response({"identifiers": []}, headers={"Content-Version": "1"})

    app = web.Application()
    app.router.add_get("/moved", moved)
    app.router.add_get("/real", real)
    server = await aiohttp_server(app)
    base = server.make_url("")
    client = RegistryClient(
        upstream="corp-registry",
        base_url=base,
        credentials=Credentials("bearer", SECRET),
        connect_timeout=2,
        read_timeout=2,
        documents=FileDocuments(tmp_path / "http-cache"),
    )
    try:
        answer = await client.get(base / "moved", accept=ACCEPT_JSON, expect=JSON_DOCUMENT)
    finally:
        await client.close()

    assert answer.status == 200
    # Our own credentials went to our own origin; the Location's did not.
    assert seen == [f"Bearer {SECRET}"]


@pytest.mark.parametrize(
    "location",
    [
        # The same server under another host name is another origin.
        "http://localhost:{port}/mona/LinkedList/1.0.0.zip",
        # Scheme-relative and non-HTTP targets.
        "//localhost:{port}/mona/LinkedList/1.0.0.zip",
        "file:///etc/passwd",
    ],
)
async def test_redirects_outside_the_origin_are_refused(
    make_registry: MakeRegistry, tmp_path: Path, location: str
) -> None:
    async with RegistryServer() as origin:
        origin.publish(str(PACKAGE), "1.0.0", FILES)
        origin.archive_redirect = location.format(port=_port(origin))

        with pytest.raises(RedirectRefused):
            await fetch_to(make_registry(origin.url), PACKAGE, VERSION, tmp_path / "a.zip")

        # Only the registry's own 303 was answered; the target was never asked.
        assert origin.requests.count("GET /mona/LinkedList/1.0.0.zip") == 1


async def test_a_configured_download_host_is_followed_but_each_hop_is_checked(
    make_registry: MakeRegistry, elsewhere: RegistryServer, tmp_path: Path
) -> None:
    async with RegistryServer() as cdn, RegistryServer(archive_host=cdn) as origin:
        origin.publish(str(PACKAGE), "1.0.0", FILES)
        upstream = make_registry(origin.url, download_hosts=(cdn.url,))

        release = await fetch_to(upstream, PACKAGE, VERSION, tmp_path / "a.zip")
        assert release.upstream_checksum
        assert cdn.requests == ["GET /mona/LinkedList/1.0.0.zip"]

        # The download host may not pass us on to a host nobody configured.
        cdn.archive_redirect = f"{elsewhere.url}/mona/LinkedList/1.0.0.zip"
        with pytest.raises(RedirectRefused) as caught:
            await fetch_to(upstream, PACKAGE, VERSION, tmp_path / "b.zip")

    assert "from " + cdn.url in caught.value.detail
    assert elsewhere.connections == 0


# -- links --------------------------------------------------------------------


async def test_a_next_page_on_another_origin_is_refused(
    make_registry: MakeRegistry, elsewhere: RegistryServer
) -> None:
    async with RegistryServer() as origin:
        origin.publish(str(PACKAGE), "1.0.0", FILES)
        origin.next_page = f"{elsewhere.url}/mona/LinkedList?page=2&token=abc"

        with capture_logs() as logs, pytest.raises(RedirectRefused) as caught:
            await make_registry(origin.url).list_releases(PACKAGE)

    _assert_refused(caught.value, f"{elsewhere.url}/mona/LinkedList", "token=abc")
    assert "next-page link" in caught.value.detail
    assert [entry["event"] for entry in logs if entry["log_level"] == "warning"] == ["link_refused"]
    assert elsewhere.connections == 0


async def test_an_alternate_manifest_on_another_host_is_refused(
    make_registry: MakeRegistry, tmp_path: Path
) -> None:
    async with RegistryServer() as origin:
        origin.publish(str(PACKAGE), "1.0.0", {**FILES, "Package@swift-5.8.swift": MANIFEST_58})
        # `localhost` reaches the same server, but it is not the configured host.
        origin.manifest_link = (
            f"http://localhost:{_port(origin)}/mona/LinkedList/1.0.0/Package.swift"
        )
        archive = tmp_path / "a.zip"

        with pytest.raises(RedirectRefused) as caught:
            await fetch_to(make_registry(origin.url), PACKAGE, VERSION, archive)

        assert "Package@swift-5.8.swift" in caught.value.detail
        assert not any("swift-version" in request for request in origin.requests)
        assert not archive.exists()


async def test_a_next_page_on_a_download_host_is_followed(
    make_registry: MakeRegistry,
) -> None:
    async with RegistryServer() as mirror, RegistryServer() as origin:
        origin.publish(str(PACKAGE), "1.0.0", FILES)
        mirror.publish(str(PACKAGE), "2.0.0", FILES)
        origin.next_page = f"{mirror.url}/mona/LinkedList"

        listing = await make_registry(origin.url, download_hosts=(mirror.url,)).list_releases(
            PACKAGE
        )

    assert [str(version) for version in listing.versions] == ["2.0.0", "1.0.0"]


# -- origins ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "normal"),
    [
        ("https://cdn.example.com", "https://cdn.example.com"),
        ("https://CDN.Example.com/", "https://cdn.example.com"),
        ("cdn.example.com", "https://cdn.example.com"),
        ("https://objects.example.com:8443", "https://objects.example.com:8443"),
        ("https://objects.example.com:443", "https://objects.example.com"),
        ("http://minio.internal:9000", "http://minio.internal:9000"),
        ("https://*.cloudfront.net", "https://*.cloudfront.net"),
        ("*.s3.eu-west-1.amazonaws.com", "https://*.s3.eu-west-1.amazonaws.com"),
        ("https://[::1]:8443", "https://[::1]:8443"),
        ("https://bücher.example", "https://xn--bcher-kva.example"),
    ],
)
def test_download_host_shapes(written: str, normal: str) -> None:
    assert str(Origin.parse(written)) == normal


@pytest.mark.parametrize(
    ("written", "complaint"),
    [
        ("ftp://cdn.example.com", "https://"),
        ("https://cdn.example.com/archives", "without path"),
        ("https://cdn.example.com?x=1", "without path"),
        ("https://user:pw@cdn.example.com", "credentials"),
        ("https://cdn.*.example.com", "leading"),
        ("https://*cdn.example.com", "leading"),
        ("https://*", "host"),
        ("https://*.com", "two labels"),
        ("https://*.0.0.1", "two labels"),
        ("https://cdn.example.com:99999", "not a valid origin"),
        ("https://", "host"),
    ],
)
def test_download_host_mistakes_are_named(written: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=re.escape(complaint)):
        Origin.parse(written)


@pytest.mark.parametrize(
    ("pattern", "url", "admitted"),
    [
        ("https://cdn.example.com", "https://cdn.example.com/a.zip?sig=1", True),
        ("https://cdn.example.com", "https://CDN.example.com./a.zip", True),
        ("https://cdn.example.com", "http://cdn.example.com/a.zip", False),
        ("https://cdn.example.com", "https://cdn.example.com:8443/a.zip", False),
        ("https://cdn.example.com", "https://evil-cdn.example.com/a.zip", False),
        ("https://cdn.example.com", "https://cdn.example.com.evil.net/a.zip", False),
        ("https://*.cloudfront.net", "https://d111.cloudfront.net/a.zip", True),
        ("https://*.cloudfront.net", "https://a.b.cloudfront.net/a.zip", True),
        ("https://*.cloudfront.net", "https://cloudfront.net/a.zip", False),
        ("https://*.cloudfront.net", "https://evilcloudfront.net/a.zip", False),
        ("https://*.cloudfront.net", "https://d111.cloudfront.net:8443/a.zip", False),
        ("http://minio.internal:9000", "http://minio.internal:9000/a.zip", True),
        ("http://minio.internal:9000", "https://minio.internal:9000/a.zip", False),
    ],
)
def test_download_host_matching(pattern: str, url: str, admitted: bool) -> None:
    assert Origin.parse(pattern).admits(URL(url)) is admitted
