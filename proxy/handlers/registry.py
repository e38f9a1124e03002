"""The registry endpoints (SE-0292 section 4): parse, one service call, render.

Every status and header the specification names for these endpoints is
produced here or in the middleware.
"""

from __future__ import annotations

import json
from email.utils import formatdate
from typing import Any
from urllib.parse import quote

from aiohttp import web

from proxy import protocol
from proxy.handlers.files import send_archive
from proxy.keys import REGISTRY, SETTINGS
from proxy.protocol import ReleaseResource, Suffix
from proxy.service.errors import NotFound
from proxy.service.registry import ManifestAnswer, MetadataAnswer
from proxy.service.releases import CacheStatus
from upstreams.model import MANIFEST_NAME, PackageId, Version

# Lists and identifier mappings change when tags are pushed: clients must
# revalidate. Versioned resources never change (SE-0292 4.3, 4.4).
MUTABLE = "no-cache"
IMMUTABLE = "public, max-age=31536000, immutable"


def _base_url(request: web.Request) -> str:
    configured = request.app[SETTINGS].server.public_url
    return configured or f"{request.scheme}://{request.host}"


def _package_url(request: web.Request, package: PackageId) -> str:
    return f"{_base_url(request)}/{quote(package.scope)}/{quote(package.name)}"


def _version_url(package_url: str, version: Version) -> str:
    # A parsed SemVer version only holds [0-9A-Za-z.+-], all of them literal in
    # a path; `+` (build metadata) stays literal because SwiftPM sends it so.
    return f"{package_url}/{version}"


def _json(data: Any, status: CacheStatus, *, cache_control: str, links: list[str]) -> web.Response:
    headers = {protocol.CACHE_STATUS_HEADER: status.value, "Cache-Control": cache_control}
    if links:
        headers["Link"] = protocol.join_links(links)
    return web.Response(
        # Compact: with `indent` the json module falls back from its C encoder to
        # the pure-Python one, which costs more than the rest of a cached answer.
        body=json.dumps(data, separators=(",", ":")).encode("utf-8"),
        content_type=protocol.JSON,
        headers=headers,
    )


def _package(request: web.Request) -> PackageId:
    name = protocol.split_format_suffix(request.match_info["name"])
    return protocol.parse_package(request.match_info["scope"], name)


async def list_releases(request: web.Request) -> web.Response:
    protocol.check_accept(request.headers.get("Accept"), Suffix.JSON)
    package = _package(request)
    listed = await request.app[REGISTRY].release_list(package)
    release_list = listed.release_list
    package_url = _package_url(request, package)
    urls = {str(v): _version_url(package_url, v) for v in release_list.versions}
    body = protocol.release_list_body(release_list.versions, urls, release_list.problems)
    links: list[str] = []
    available = [v for v in release_list.versions if str(v) not in release_list.problems]
    if available:
        links.append(protocol.link(urls[str(max(available))], "latest-version"))
    if release_list.repository_urls:
        links.append(protocol.link(release_list.repository_urls[0], "canonical"))
        links.extend(protocol.link(url, "alternate") for url in release_list.repository_urls[1:])
    return _json(body, listed.status, cache_control=MUTABLE, links=links)


async def release(request: web.Request) -> web.StreamResponse:
    package = _package(request)
    version, resource = protocol.classify_release_segment(request.match_info["version"])
    if resource is ReleaseResource.ARCHIVE:
        return await _archive(request, package, version)
    protocol.check_accept(request.headers.get("Accept"), Suffix.JSON)
    answer = await request.app[REGISTRY].metadata(package, version)
    return _metadata(request, answer)


def _metadata(request: web.Request, answer: MetadataAnswer) -> web.Response:
    record = answer.record
    body = protocol.release_metadata_body(
        identity=str(record.package),
        version=str(record.version),
        checksum=record.archive_checksum,
        metadata=record.metadata,
        published_at=record.published_at,
        signing=record.signing,
    )
    links: list[str] = []
    if answer.neighbours is not None:
        package_url = _package_url(request, record.package)
        neighbours = answer.neighbours
        links.append(protocol.link(_version_url(package_url, neighbours.latest), "latest-version"))
        if neighbours.successor:
            url = _version_url(package_url, neighbours.successor)
            links.append(protocol.link(url, "successor-version"))
        if neighbours.predecessor:
            url = _version_url(package_url, neighbours.predecessor)
            links.append(protocol.link(url, "predecessor-version"))
    return _json(body, answer.status, cache_control=MUTABLE, links=links)


async def _archive(
    request: web.Request, package: PackageId, version: Version
) -> web.StreamResponse:
    protocol.check_accept(request.headers.get("Accept"), Suffix.ZIP)
    answer = await request.app[REGISTRY].archive(package, version)
    record = answer.record
    headers = {
        "Content-Type": protocol.ZIP,
        "Content-Disposition": f'attachment; filename="{package.name}-{version}.zip"',
        "Digest": protocol.digest_header(record.archive_checksum),
        "Accept-Ranges": "bytes",
        "Cache-Control": IMMUTABLE,
        "ETag": f'"{record.archive_checksum}"',
        "Last-Modified": formatdate(protocol.timestamp_seconds(record.published_at), usegmt=True),
        protocol.CACHE_STATUS_HEADER: answer.status.value,
    }
    if record.signing:
        # SE-0292 4.4: MUST for signed releases (SwiftPM itself reads the metadata).
        headers["X-Swift-Package-Signature-Format"] = record.signing["signatureFormat"]
        headers["X-Swift-Package-Signature"] = record.signing["signatureBase64Encoded"]
    return await send_archive(request, answer, headers)


async def manifest(request: web.Request) -> web.Response:
    protocol.check_accept(request.headers.get("Accept"), Suffix.SWIFT)
    package = _package(request)
    version = protocol.parse_version(request.match_info["version"])
    requested = request.query.get("swift-version")
    if requested is not None:
        protocol.parse_swift_version(requested)
    answer = await request.app[REGISTRY].manifest(package, version, requested)
    release_url = _version_url(_package_url(request, package), version)
    if not isinstance(answer, ManifestAnswer):
        # No version-specific manifest: send the client to the unqualified
        # one (SE-0292 4.3); URLSession follows the 303.
        return web.Response(
            status=303,
            headers={
                "Location": f"{release_url}/{MANIFEST_NAME}",
                "Content-Version": protocol.API_VERSION,
                "Cache-Control": IMMUTABLE,
            },
        )
    headers = {
        protocol.CACHE_STATUS_HEADER: answer.status.value,
        "Cache-Control": IMMUTABLE,
        "Content-Disposition": f'attachment; filename="{answer.filename}"',
    }
    links = [
        protocol.link(
            f"{release_url}/{MANIFEST_NAME}?swift-version={protocol.swift_version_of(m.filename)}",
            "alternate",
            filename=m.filename,
            swift_tools_version=m.tools_version or "",
        )
        for m in answer.alternates
    ]
    if answer.filename == MANIFEST_NAME and links:
        headers["Link"] = protocol.join_links(links)
    return web.Response(body=answer.content, content_type=protocol.SWIFT, headers=headers)


async def identifiers(request: web.Request) -> web.Response:
    protocol.check_accept(request.headers.get("Accept"), Suffix.JSON)
    # The raw query, not `request.query_string`: that one is already decoded,
    # with `+` as a space, and SwiftPM's client sends `+` unencoded
    # (Foundation's URLQueryItem encoding).
    url = protocol.repository_url_query(request.rel_url.raw_query_string)
    answer = await request.app[REGISTRY].identifiers(url)
    if not answer.identities:
        raise NotFound(f"no package is known for the repository {url}")
    return _json(
        {"identifiers": [str(package) for package in answer.identities]},
        answer.status,
        cache_control=MUTABLE,
        links=[],
    )


async def availability(request: web.Request) -> web.Response:
    # SwiftPM's availability probe, not part of SE-0292 (`checkAvailability` in
    # SwiftPM's RegistryClient.swift): any 200 means usable.
    return web.json_response({"status": "available"})


async def login(request: web.Request) -> web.Response:
    raise protocol.NotImplementedHere(
        "this registry does not authenticate clients yet: no login is needed to use it"
    )
