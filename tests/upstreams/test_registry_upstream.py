"""RegistryUpstream against real registries on loopback, well-behaved and not."""

from __future__ import annotations

import base64
import hashlib
import io
import time
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from structlog.testing import capture_logs

from cache.embedded import FilesystemBlobStore
from tests.support.registry_server import Fault, RegistryServer
from tests.support.storage import fetch_to
from tests.upstreams.conftest import MakeRegistry
from upstreams.credentials import Credentials
from upstreams.errors import (
    ArchiveChecksumMismatch,
    HostFailed,
    InvalidRelease,
    InvalidUpstreamResponse,
    PackageNotFound,
    ReleaseNotFound,
    Unreachable,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from upstreams.model import PackageId, Version

SECRET = "s3cr3t-t0ken-value"
PACKAGE = PackageId("mona", "LinkedList")
MANIFEST = b'// swift-tools-version:5.9\nimport PackageDescription\nlet package = Package(name: "LinkedList")\n'  # noqa: E501
MANIFEST_58 = b"// swift-tools-version:5.8\nimport PackageDescription\n// for 5.8\n"
MANIFEST_5 = b"// swift-tools-version: 5.0\r\nimport PackageDescription\n"
FILES: dict[str, str | bytes] = {
    "Package.swift": MANIFEST,
    "Sources/LinkedList/LinkedList.swift": "public struct LinkedList {}\n",
}
SIGNING = {"signatureBase64Encoded": "MIIB...==", "signatureFormat": "cms-1.0.0"}


@pytest.fixture
async def server() -> AsyncIterator[RegistryServer]:
    async with RegistryServer() as registry:
        yield registry


def _v(text: str) -> Version:
    return Version.parse(text)


def _no_secret(*texts: object) -> None:
    basic = base64.b64encode(f"user:{SECRET}".encode()).decode()
    for text in texts:
        assert SECRET not in str(text)
        assert basic not in str(text)


# -- listing ------------------------------------------------------------------


async def test_pages_are_followed_and_merged(make_registry: MakeRegistry) -> None:
    async with RegistryServer(page_size=2) as server:
        for version in ("1.0.0", "1.1.0", "1.2.0", "2.0.0", "2.0.1"):
            server.publish(str(PACKAGE), version, FILES)

        listing = await make_registry(server.url).list_releases(PACKAGE)

        assert listing.versions == tuple(
            _v(v) for v in ("2.0.1", "2.0.0", "1.2.0", "1.1.0", "1.0.0")
        )
        assert server.requests == [
            "GET /mona/LinkedList",
            "GET /mona/LinkedList?page=2",
            "GET /mona/LinkedList?page=3",
        ]


def _paged_app(pages: dict[str, tuple[dict[str, Any], str | None]]) -> web.Application:
    """A list endpoint whose pages and `next` targets are given verbatim."""

    async def handle(request: web.Request) -> web.Response:
        releases, next_link = pages[request.query.get("page", "1")]
        headers = {"Content-Version": "1"}
        if next_link is not None:
            headers["Link"] = f'<{next_link}>; rel="next"'
        return web.json_response({"releases": releases}, headers=headers)

    app = web.Application()
    app.router.add_get("/mona/LinkedList", handle)
    return app


async def test_a_next_link_pointing_back_ends_the_walk(
    aiohttp_server: Any, make_registry: MakeRegistry
) -> None:
    pages: dict[str, tuple[dict[str, Any], str | None]] = {}
    app = _paged_app(pages)
    registry = await aiohttp_server(app)
    base = str(registry.make_url("")).rstrip("/")
    # A relative `next`, then an absolute one back to the first page.
    pages["1"] = ({"1.0.0": {}}, "?page=2")
    pages["2"] = ({"2.0.0": {}}, f"{base}/mona/LinkedList")

    with capture_logs() as logs:
        listing = await make_registry(base).list_releases(PACKAGE)

    assert listing.versions == (_v("2.0.0"), _v("1.0.0"))
    assert any(entry["event"] == "release_list_pagination_loop" for entry in logs)


async def test_endless_pages_are_refused(aiohttp_server: Any, make_registry: MakeRegistry) -> None:
    async def handle(request: web.Request) -> web.Response:
        page = int(request.query.get("page", "1"))
        return web.json_response(
            {"releases": {f"1.0.{page}": {}}},
            headers={"Content-Version": "1", "Link": f'<?page={page + 1}>; rel="next"'},
        )

    app = web.Application()
    app.router.add_get("/mona/LinkedList", handle)
    registry = await aiohttp_server(app)

    with pytest.raises(InvalidUpstreamResponse, match="pages"):
        await make_registry(str(registry.make_url("")).rstrip("/")).list_releases(PACKAGE)


async def test_problems_are_kept_and_non_semver_keys_dropped(
    server: RegistryServer, make_registry: MakeRegistry
) -> None:
    gone = {"status": 410, "title": "Gone", "detail": "release removed", "instance": "x"}
    server.publish(str(PACKAGE), "1.0.0", FILES)
    server.publish(str(PACKAGE), "1.1.0", FILES, problem=gone)
    server.publish(str(PACKAGE), "1.2.0", FILES, problem={"title": "Withdrawn"})
    server.publish(str(PACKAGE), "v2.0.0", FILES)
    server.publish(str(PACKAGE), "2.0", FILES)

    listing = await make_registry(server.url).list_releases(PACKAGE)

    assert listing.versions == (_v("1.2.0"), _v("1.1.0"), _v("1.0.0"))
    assert listing.problems["1.1.0"] == gone
    # SwiftPM's client needs a string `detail` in every per-release problem.
    assert listing.problems["1.2.0"] == {"title": "Withdrawn", "detail": "Withdrawn"}
    assert set(listing.problems) == {"1.1.0", "1.2.0"}


async def test_repository_urls_come_from_canonical_and_alternate_links(
    server: RegistryServer, make_registry: MakeRegistry
) -> None:
    urls = ["https://github.com/mona/LinkedList", "git@github.com:mona/LinkedList.git"]
    server.publish(str(PACKAGE), "1.0.0", FILES, metadata={"repositoryURLs": urls})

    listing = await make_registry(server.url).list_releases(PACKAGE)

    assert listing.repository_urls == tuple(urls)


async def test_identity_is_sent_as_spelled_and_base_path_kept(
    aiohttp_server: Any, make_registry: MakeRegistry
) -> None:
    seen: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.json_response({"releases": {"1.0.0": {}}}, headers={"Content-Version": "1"})

    app = web.Application()
    app.router.add_get("/api/swift/remote/{scope}/{name}", handle)
    registry = await aiohttp_server(app)

    upstream = make_registry(f"{registry.make_url('/api/swift/remote/')}")
    await upstream.list_releases(PackageId("Mona", "linkedlist"))

    assert seen == ["/api/swift/remote/Mona/linkedlist"]


async def test_unknown_package_is_not_found(
    server: RegistryServer, make_registry: MakeRegistry
) -> None:
    with pytest.raises(PackageNotFound) as caught:
        await make_registry(server.url).list_releases(PACKAGE)
    assert caught.value.upstream == "corp-registry"


# -- fetching -----------------------------------------------------------------


async def test_manifests_and_alternates_pass_through_byte_for_byte(
    server: RegistryServer, make_registry: MakeRegistry, tmp_path: Path
) -> None:
    files = {**FILES, "Package@swift-5.8.swift": MANIFEST_58, "Package@swift-5.swift": MANIFEST_5}
    checksum = server.publish(str(PACKAGE), "1.0.0", files)
    archive = tmp_path / "a.zip"

    release = await fetch_to(make_registry(server.url), PACKAGE, _v("1.0.0"), archive)

    manifests = {m.filename: m for m in release.manifests}
    assert set(manifests) == {"Package.swift", "Package@swift-5.8.swift", "Package@swift-5.swift"}
    assert manifests["Package.swift"].content == MANIFEST
    assert manifests["Package.swift"].tools_version == "5.9"
    assert manifests["Package@swift-5.8.swift"].content == MANIFEST_58
    assert manifests["Package@swift-5.8.swift"].tools_version == "5.8"
    assert manifests["Package@swift-5.swift"].content == MANIFEST_5
    assert manifests["Package@swift-5.swift"].tools_version == "5.0"
    assert "GET /mona/LinkedList/1.0.0/Package.swift?swift-version=5.8" in server.requests
    assert hashlib.sha256(archive.read_bytes()).hexdigest() == checksum
    assert release.upstream_checksum == checksum
    assert release.provenance.upstream == "corp-registry"
    assert release.provenance.url == f"{server.url}/mona/LinkedList/1.0.0.zip"
    assert release.provenance.commit is None
    with zipfile.ZipFile(io.BytesIO(archive.read_bytes())) as zipped:
        assert zipped.read("mona.LinkedList/Package@swift-5.8.swift") == MANIFEST_58


async def test_signing_and_metadata_pass_through_with_dates_normalised(
    server: RegistryServer, make_registry: MakeRegistry, tmp_path: Path
) -> None:
    metadata = {
        "description": "A linked list",
        "author": {"name": "Mona"},
        "originalPublicationTime": "2021-01-01T00:00:00.5+01:00",
    }
    server.publish(
        str(PACKAGE),
        "1.0.0",
        FILES,
        metadata=metadata,
        signing=SIGNING,
        published_at="2023-02-16T04:00:00.123456Z",
    )

    release = await fetch_to(make_registry(server.url), PACKAGE, _v("1.0.0"), tmp_path / "a.zip")

    assert release.signing == SIGNING
    assert release.published_at == "2023-02-16T04:00:00Z"
    assert release.metadata == {
        "description": "A linked list",
        "author": {"name": "Mona"},
        "originalPublicationTime": "2020-12-31T23:00:00Z",
    }


async def test_unparseable_published_at_is_dropped(
    server: RegistryServer, make_registry: MakeRegistry, tmp_path: Path
) -> None:
    server.publish(str(PACKAGE), "1.0.0", FILES, published_at="last tuesday")

    release = await fetch_to(make_registry(server.url), PACKAGE, _v("1.0.0"), tmp_path / "a.zip")

    assert release.published_at is None
    assert release.signing is None


async def test_unknown_version_is_release_not_found(
    server: RegistryServer, make_registry: MakeRegistry, tmp_path: Path
) -> None:
    server.publish(str(PACKAGE), "1.0.0", FILES)
    with pytest.raises(ReleaseNotFound):
        await fetch_to(make_registry(server.url), PACKAGE, _v("9.9.9"), tmp_path / "a.zip")
    assert not (tmp_path / "a.zip").exists()


async def test_archive_redirect_to_another_host_drops_authorization(
    make_registry: MakeRegistry, tmp_path: Path
) -> None:
    async with (
        RegistryServer() as cdn,
        RegistryServer(token=SECRET, archive_host=cdn) as origin,
    ):
        checksum = origin.publish(str(PACKAGE), "1.0.0", FILES)
        archive = tmp_path / "a.zip"

        release = await fetch_to(
            make_registry(
                origin.url, credentials=Credentials("bearer", SECRET), download_hosts=(cdn.url,)
            ),
            PACKAGE,
            _v("1.0.0"),
            archive,
        )

        assert hashlib.sha256(archive.read_bytes()).hexdigest() == checksum
        assert release.upstream_checksum == checksum
        assert origin.authorization_headers == [f"Bearer {SECRET}"] * len(origin.requests)
        assert origin.requests[-1] == "GET /mona/LinkedList/1.0.0.zip"
        assert cdn.requests == ["GET /mona/LinkedList/1.0.0.zip"]
        assert cdn.authorization_headers == [None]
        # Provenance names the registry's URL, not the CDN's.
        assert release.provenance.url.startswith(origin.url)


async def test_redirect_loop_is_an_invalid_response(
    server: RegistryServer, make_registry: MakeRegistry, tmp_path: Path
) -> None:
    server.publish(str(PACKAGE), "1.0.0", FILES)
    server.faults.add(Fault.REDIRECT_LOOP)
    archive = tmp_path / "a.zip"

    with pytest.raises(InvalidUpstreamResponse, match="redirect"):
        await fetch_to(make_registry(server.url), PACKAGE, _v("1.0.0"), archive)

    assert not archive.exists()
    assert server.requests.count("GET /mona/LinkedList/1.0.0.zip") <= 6


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (Fault.SERVER_ERROR, HostFailed),
        (Fault.RATE_LIMITED, HostFailed),
        (Fault.HANG, UpstreamTimeout),
        (Fault.TRICKLE, UpstreamTimeout),
        (Fault.TRUNCATE, Unreachable),
        (Fault.WRONG_CHECKSUM, ArchiveChecksumMismatch),
        (Fault.INVALID_JSON, InvalidUpstreamResponse),
        (Fault.NO_CONTENT_VERSION, InvalidUpstreamResponse),
        (Fault.REDIRECT_LOOP, InvalidUpstreamResponse),
    ],
)
async def test_each_fault_fails_fast_and_leaves_no_archive(
    server: RegistryServer,
    make_registry: MakeRegistry,
    tmp_path: Path,
    fault: Fault,
    expected: type[UpstreamError],
) -> None:
    server.publish(str(PACKAGE), "1.0.0", FILES)
    server.faults.add(fault)
    store = FilesystemBlobStore(tmp_path / "blobs")
    upstream = make_registry(server.url, timeout=0.5)

    started = time.monotonic()
    with pytest.raises(expected) as caught:
        async with store.writer() as archive:
            await upstream.fetch_release(PACKAGE, _v("1.0.0"), archive)

    assert time.monotonic() - started < 5
    # Whatever arrived was never committed, and no partial file is left behind.
    assert [info async for info in store.digests()] == []
    assert list((tmp_path / "blobs").rglob("*.partial")) == []
    assert caught.value.upstream == "corp-registry"
    assert "corp-registry" in caught.value.detail
    assert server.url.removeprefix("http://") in caught.value.detail


async def test_server_error_detail_carries_status_and_problem(
    server: RegistryServer, make_registry: MakeRegistry
) -> None:
    server.faults.add(Fault.SERVER_ERROR)
    with pytest.raises(UpstreamUnavailable) as caught:
        await make_registry(server.url).list_releases(PACKAGE)
    assert not isinstance(caught.value, InvalidUpstreamResponse)
    assert "HTTP 500" in caught.value.detail
    assert "the registry is having a bad day" in caught.value.detail


async def test_checksum_mismatch_names_both_checksums(
    server: RegistryServer, make_registry: MakeRegistry, tmp_path: Path
) -> None:
    checksum = server.publish(str(PACKAGE), "1.0.0", FILES)
    server.faults.add(Fault.WRONG_CHECKSUM)

    with capture_logs() as logs, pytest.raises(ArchiveChecksumMismatch) as caught:
        await fetch_to(make_registry(server.url), PACKAGE, _v("1.0.0"), tmp_path / "a.zip")

    assert caught.value.actual == checksum
    assert caught.value.expected == hashlib.sha256(b"not the archive").hexdigest()
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["archive_checksum_mismatch"]


async def test_republished_bytes_are_fetched_with_their_new_checksum(
    server: RegistryServer, make_registry: MakeRegistry, tmp_path: Path
) -> None:
    # Refusing a changed release is the ledger's job; the upstream reports
    # faithfully what the registry vouches for now.
    first = server.publish(str(PACKAGE), "1.0.0", FILES)
    server.faults.add(Fault.CHANGED_BYTES)
    archive = tmp_path / "a.zip"

    release = await fetch_to(make_registry(server.url), PACKAGE, _v("1.0.0"), archive)

    assert release.upstream_checksum != first
    assert hashlib.sha256(archive.read_bytes()).hexdigest() == release.upstream_checksum


async def test_connection_refused_is_unavailable(
    make_registry: MakeRegistry, tmp_path: Path
) -> None:
    async with RegistryServer() as gone:
        url = gone.url
    with pytest.raises(UpstreamUnavailable) as caught:
        await fetch_to(make_registry(url), PACKAGE, _v("1.0.0"), tmp_path / "a.zip")
    assert not isinstance(caught.value, UpstreamTimeout)
    assert not (tmp_path / "a.zip").exists()


async def test_missing_package_swift_is_invalid_release(
    server: RegistryServer, make_registry: MakeRegistry, tmp_path: Path
) -> None:
    server.publish(str(PACKAGE), "1.0.0", {"README.md": "no manifest"})
    with pytest.raises(InvalidRelease):
        await fetch_to(make_registry(server.url), PACKAGE, _v("1.0.0"), tmp_path / "a.zip")


async def test_connections_are_reused(
    server: RegistryServer, make_registry: MakeRegistry, tmp_path: Path
) -> None:
    server.publish(str(PACKAGE), "1.0.0", {**FILES, "Package@swift-5.8.swift": MANIFEST_58})
    upstream = make_registry(server.url)

    await upstream.list_releases(PACKAGE)
    await fetch_to(upstream, PACKAGE, _v("1.0.0"), tmp_path / "a.zip")

    assert len(server.requests) == 5
    assert server.connections == 1


# -- credentials --------------------------------------------------------------


async def test_bearer_token_is_sent(make_registry: MakeRegistry) -> None:
    async with RegistryServer(token=SECRET) as server:
        server.publish(str(PACKAGE), "1.0.0", FILES)
        upstream = make_registry(server.url, credentials=Credentials("bearer", SECRET))

        await upstream.list_releases(PACKAGE)

        assert server.authorization_headers == [f"Bearer {SECRET}"]
        headers = server.request_headers[0]
        assert headers["Accept"] == "application/vnd.swift.registry.v1+json"


async def test_basic_credentials_are_sent(make_registry: MakeRegistry, tmp_path: Path) -> None:
    async with RegistryServer(username="user", password=SECRET) as server:
        server.publish(str(PACKAGE), "1.0.0", FILES)
        upstream = make_registry(server.url, credentials=Credentials("basic", SECRET, "user"))

        await fetch_to(upstream, PACKAGE, _v("1.0.0"), tmp_path / "a.zip")

        expected = "Basic " + base64.b64encode(f"user:{SECRET}".encode()).decode()
        assert server.authorization_headers == [expected] * 3
        accepts = [headers["Accept"] for headers in server.request_headers]
        assert accepts == [
            "application/vnd.swift.registry.v1+json",
            "application/vnd.swift.registry.v1+swift",
            "application/vnd.swift.registry.v1+zip",
        ]


async def test_userinfo_in_the_base_url_becomes_basic_credentials(
    make_registry: MakeRegistry,
) -> None:
    async with RegistryServer(username="user", password=SECRET) as server:
        server.publish(str(PACKAGE), "1.0.0", FILES)
        host = server.url.removeprefix("http://")
        upstream = make_registry(f"http://user:{SECRET}@{host}")

        listing = await upstream.list_releases(PACKAGE)

        assert listing.versions == (_v("1.0.0"),)
        _no_secret(repr(upstream))
        server.faults.add(Fault.SERVER_ERROR)
        with pytest.raises(UpstreamUnavailable) as caught:
            await upstream.list_releases(PACKAGE)
        _no_secret(caught.value, repr(caught.value), caught.value.url)


async def test_rejected_credentials_are_unavailable_not_not_found(
    make_registry: MakeRegistry, tmp_path: Path
) -> None:
    async with RegistryServer(token="the-right-one") as server:
        server.publish(str(PACKAGE), "1.0.0", FILES)
        upstream = make_registry(server.url, credentials=Credentials("bearer", SECRET))

        with capture_logs() as logs:
            with pytest.raises(UpstreamUnavailable) as listed:
                await upstream.list_releases(PACKAGE)
            with pytest.raises(UpstreamUnavailable) as fetched:
                await fetch_to(upstream, PACKAGE, _v("1.0.0"), tmp_path / "a.zip")

        for caught in (listed, fetched):
            assert not isinstance(caught.value, PackageNotFound | ReleaseNotFound)
            assert "upstream rejected our credentials" in caught.value.detail
            assert "401" in caught.value.detail
            _no_secret(caught.value, repr(caught.value), caught.value.detail, caught.value.url)
        _no_secret(*logs)


async def test_missing_credentials_are_named(
    make_registry: MakeRegistry,
) -> None:
    async with RegistryServer(token=SECRET) as server:
        with pytest.raises(UpstreamUnavailable, match="none are configured"):
            await make_registry(server.url).list_releases(PACKAGE)


async def test_credentials_never_reach_errors_or_logs(
    make_registry: MakeRegistry, tmp_path: Path
) -> None:
    async with RegistryServer(token=SECRET) as server:
        server.publish(str(PACKAGE), "1.0.0", FILES)
        upstream = make_registry(server.url, credentials=Credentials("bearer", SECRET), timeout=0.3)
        errors: list[UpstreamError] = []
        with capture_logs() as logs:
            for fault in (Fault.HANG, Fault.TRUNCATE, Fault.INVALID_JSON, Fault.WRONG_CHECKSUM):
                server.faults = {fault}
                with pytest.raises(UpstreamError) as caught:
                    await fetch_to(upstream, PACKAGE, _v("1.0.0"), tmp_path / "a.zip")
                errors.append(caught.value)
            server.faults = set()
            await fetch_to(upstream, PACKAGE, _v("1.0.0"), tmp_path / "a.zip")

        assert logs
        _no_secret(*logs, *errors, *(repr(e) for e in errors), repr(upstream))
        # Nor in the HTTP cache on disk.
        for stored in (tmp_path / "http-cache").rglob("*"):
            if stored.is_file():
                _no_secret(stored.read_text(errors="replace"))


# -- revalidation -------------------------------------------------------------


async def test_unchanged_list_is_revalidated_with_304(
    server: RegistryServer, make_registry: MakeRegistry, tmp_path: Path
) -> None:
    server.publish(str(PACKAGE), "1.0.0", FILES)
    upstream = make_registry(server.url)

    first = await upstream.list_releases(PACKAGE)
    second = await upstream.list_releases(PACKAGE)

    assert first == second
    etag = server.request_headers[0].get("If-None-Match")
    assert etag is None
    assert server.request_headers[1]["If-None-Match"].startswith('"')
    assert server.statuses == [200, 304]

    # The stored copy survives a restart: a new upstream revalidates too.
    restarted = make_registry(server.url, cache=tmp_path / "http-cache")
    assert await restarted.list_releases(PACKAGE) == first
    assert server.statuses == [200, 304, 304]


async def test_changed_list_is_downloaded_again(
    server: RegistryServer, make_registry: MakeRegistry
) -> None:
    server.publish(str(PACKAGE), "1.0.0", FILES)
    upstream = make_registry(server.url)
    await upstream.list_releases(PACKAGE)

    server.publish(str(PACKAGE), "1.1.0", FILES)
    listing = await upstream.list_releases(PACKAGE)

    assert listing.versions == (_v("1.1.0"), _v("1.0.0"))
    assert "If-None-Match" in server.request_headers[1]
    assert server.statuses == [200, 200]


async def test_metadata_is_revalidated_but_archives_are_not_cached(
    server: RegistryServer, make_registry: MakeRegistry, tmp_path: Path
) -> None:
    server.publish(str(PACKAGE), "1.0.0", FILES)
    upstream = make_registry(server.url)

    await fetch_to(upstream, PACKAGE, _v("1.0.0"), tmp_path / "a.zip")
    await fetch_to(upstream, PACKAGE, _v("1.0.0"), tmp_path / "b.zip")

    metadata = [
        status
        for request, status in zip(server.requests, server.statuses, strict=True)
        if request == "GET /mona/LinkedList/1.0.0"
    ]
    assert metadata == [200, 304]
    assert server.requests.count("GET /mona/LinkedList/1.0.0.zip") == 2
    assert server.requests.count("GET /mona/LinkedList/1.0.0/Package.swift") == 2
    assert (tmp_path / "b.zip").read_bytes() == (tmp_path / "a.zip").read_bytes()


async def test_an_invalid_document_is_not_kept_for_revalidation(
    server: RegistryServer, make_registry: MakeRegistry
) -> None:
    server.publish(str(PACKAGE), "1.0.0", FILES)
    upstream = make_registry(server.url)
    server.faults.add(Fault.INVALID_JSON)
    with pytest.raises(InvalidUpstreamResponse):
        await upstream.list_releases(PACKAGE)

    server.faults.clear()
    listing = await upstream.list_releases(PACKAGE)

    assert listing.versions == (_v("1.0.0"),)
    assert "If-None-Match" not in server.request_headers[1]


# -- identifiers --------------------------------------------------------------


async def test_identifiers_are_forwarded(
    server: RegistryServer, make_registry: MakeRegistry
) -> None:
    url = "git@github.com:mona/LinkedList.git"
    server.identifiers[url] = ["mona.LinkedList", "not an identifier", "Mona.linkedlist"]

    found = await make_registry(server.url).identities_for(url)

    assert found == [PACKAGE]
    assert server.requests == [
        "GET /identifiers?url=git%40github.com%3Amona%2FLinkedList.git",
    ]


async def test_unknown_url_has_no_identifiers(
    server: RegistryServer, make_registry: MakeRegistry
) -> None:
    assert await make_registry(server.url).identities_for("https://x.invalid/a/b") == []


async def test_identifier_failures_are_raised(
    server: RegistryServer, make_registry: MakeRegistry
) -> None:
    server.faults.add(Fault.SERVER_ERROR)
    with pytest.raises(UpstreamUnavailable):
        await make_registry(server.url).identities_for("https://github.com/mona/LinkedList")


async def test_serves_everything(make_registry: MakeRegistry) -> None:
    upstream = make_registry("https://registry.example/api")
    assert upstream.serves(PACKAGE)
    # Nothing is opened until the first request, so closing unused is fine.
    await upstream.close()


async def test_a_list_that_loses_content_version_is_refused_after_caching(
    server: RegistryServer, make_registry: MakeRegistry
) -> None:
    server.publish(str(PACKAGE), "1.0.0", FILES)
    upstream = make_registry(server.url)
    await upstream.list_releases(PACKAGE)

    server.faults.add(Fault.NO_CONTENT_VERSION)
    with pytest.raises(InvalidUpstreamResponse, match="Content-Version"):
        await upstream.list_releases(PACKAGE)
