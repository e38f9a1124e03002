"""Thin request handlers: parse with `protocol`, ask the `PullThrough`, render.

Paths and headers follow protocol.md section 4; every status and header named
there is produced here or in the middleware.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, unquote

from aiohttp import web

from proxy import protocol
from proxy.keys import PULL_THROUGH, SETTINGS
from proxy.middleware import CACHE_STATUS_HEADER
from proxy.problems import BadRequest, MethodNotAllowed, NotFound
from proxy.protocol import ManifestChoice, ReleaseResource, Suffix
from proxy.records import CacheStatus
from upstreams.model import MANIFEST_NAME, PackageId, Version

# Lists and identifier mappings change when tags are pushed: clients must
# revalidate. Versioned resources never change (spec 4.3, 4.4).
MUTABLE = "no-cache"
IMMUTABLE = "public, max-age=31536000, immutable"


def _base_url(request: web.Request) -> str:
    configured = request.app[SETTINGS].server.public_url
    return configured or f"{request.scheme}://{request.host}"


def _package_url(request: web.Request, package: PackageId) -> str:
    return f"{_base_url(request)}/{quote(package.scope)}/{quote(package.name)}"


def _release_url(request: web.Request, package: PackageId, version: Version) -> str:
    return _version_url(_package_url(request, package), version)


def _version_url(package_url: str, version: Version) -> str:
    # A parsed SemVer version only holds [0-9A-Za-z.+-], all of them literal in
    # a path; `+` (build metadata) stays literal because SwiftPM sends it so.
    return f"{package_url}/{version}"


def _json(data: Any, status: CacheStatus, *, cache_control: str, links: list[str]) -> web.Response:
    headers = {CACHE_STATUS_HEADER: status.value, "Cache-Control": cache_control}
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
    listed = await request.app[PULL_THROUGH].release_list(package)
    listing = listed.listing
    package_url = _package_url(request, package)
    urls = {str(v): _version_url(package_url, v) for v in listing.versions}
    body = protocol.release_list_body(listing.versions, urls, listing.problems)
    links: list[str] = []
    available = [v for v in listing.versions if str(v) not in listing.problems]
    if available:
        links.append(protocol.link(urls[str(max(available))], "latest-version"))
    if listing.repository_urls:
        links.append(protocol.link(listing.repository_urls[0], "canonical"))
        links.extend(protocol.link(url, "alternate") for url in listing.repository_urls[1:])
    return _json(body, listed.status, cache_control=MUTABLE, links=links)


async def release(request: web.Request) -> web.StreamResponse:
    package = _package(request)
    version, resource = protocol.classify_release_segment(request.match_info["version"])
    if resource is ReleaseResource.ARCHIVE:
        return await _archive(request, package, version)
    protocol.check_accept(request.headers.get("Accept"), Suffix.JSON)
    service = request.app[PULL_THROUGH]
    released = await service.release(package, version)
    stored = released.release
    body = protocol.release_metadata_body(
        identity=stored.identity,
        version=str(stored.version),
        checksum=stored.archive_checksum,
        metadata=stored.metadata,
        published_at=stored.published_at,
        signing=stored.signing,
    )
    links: list[str] = []
    try:
        listed = await service.release_list(package)
    except Exception:  # noqa: BLE001 - the links are a courtesy; metadata still answers
        listed = None
    if listed is not None:
        latest, predecessor, successor = protocol.neighbours(listed.listing.versions, version)
        package_url = _package_url(request, package)
        links.append(protocol.link(_version_url(package_url, latest), "latest-version"))
        if successor:
            links.append(protocol.link(_version_url(package_url, successor), "successor-version"))
        if predecessor:
            links.append(
                protocol.link(_version_url(package_url, predecessor), "predecessor-version")
            )
    return _json(body, released.status, cache_control=MUTABLE, links=links)


async def _archive(
    request: web.Request, package: PackageId, version: Version
) -> web.StreamResponse:
    protocol.check_accept(request.headers.get("Accept"), Suffix.ZIP)
    released, path = await request.app[PULL_THROUGH].archive(package, version)
    stored = released.release
    headers = {
        "Content-Type": protocol.ZIP,
        "Content-Disposition": f'attachment; filename="{package.name}-{version}.zip"',
        "Digest": protocol.digest_header(stored.archive_checksum),
        "Accept-Ranges": "bytes",
        "Cache-Control": IMMUTABLE,
        "ETag": f'"{stored.archive_checksum}"',
        CACHE_STATUS_HEADER: released.status.value,
    }
    if stored.signing:
        # Spec 4.4: MUST for signed releases (SwiftPM itself reads the metadata).
        headers["X-Swift-Package-Signature-Format"] = stored.signing["signatureFormat"]
        headers["X-Swift-Package-Signature"] = stored.signing["signatureBase64Encoded"]
    # FileResponse streams with sendfile and answers Range and conditional
    # requests; the whole archive is never read into memory.
    return web.FileResponse(path, headers=headers)


async def manifest(request: web.Request) -> web.Response:
    protocol.check_accept(request.headers.get("Accept"), Suffix.SWIFT)
    package = _package(request)
    version = protocol.parse_version(request.match_info["version"])
    service = request.app[PULL_THROUGH]
    released = await service.release(package, version)
    stored = released.release
    filename = MANIFEST_NAME
    requested = request.query.get("swift-version")
    if requested is not None:
        choices = [ManifestChoice(m.filename, m.tools_version) for m in stored.manifests]
        chosen = protocol.select_manifest(choices, requested)
        if chosen is None:
            # No version-specific manifest: send the client to the unqualified
            # one (spec 4.3); URLSession follows the 303.
            raise web.HTTPSeeOther(
                location=f"{_release_url(request, package, version)}/{MANIFEST_NAME}",
                headers={"Content-Version": protocol.API_VERSION},
            )
        filename = chosen
    released, content = await service.manifest(package, version, filename)
    links = [
        protocol.link(
            f"{_release_url(request, package, version)}/{MANIFEST_NAME}"
            f"?swift-version={m.filename.removeprefix('Package@swift-').removesuffix('.swift')}",
            "alternate",
            filename=m.filename,
            swift_tools_version=m.tools_version or "",
        )
        for m in stored.manifests
        if m.filename != MANIFEST_NAME and m.tools_version
    ]
    headers = {
        CACHE_STATUS_HEADER: released.status.value,
        "Cache-Control": IMMUTABLE,
        "Content-Disposition": f'attachment; filename="{filename}"',
    }
    if filename == MANIFEST_NAME and links:
        headers["Link"] = protocol.join_links(links)
    return web.Response(body=content, content_type=protocol.SWIFT, headers=headers)


async def identifiers(request: web.Request) -> web.Response:
    protocol.check_accept(request.headers.get("Accept"), Suffix.JSON)
    # Parse the raw query ourselves: SwiftPM leaves `+` unencoded, and a form
    # decoder would turn it into a space (protocol.md 7).
    url = _raw_query_value(request.query_string, "url")
    if not url:
        raise BadRequest("the url query parameter is required, e.g. /identifiers?url=https://...")
    found = await request.app[PULL_THROUGH].identities(url)
    if not found:
        raise NotFound(f"no package is known for the repository {url}")
    return _json(
        {"identifiers": [str(package) for package in found]},
        CacheStatus.HIT,
        cache_control=MUTABLE,
        links=[],
    )


def _raw_query_value(query_string: str, name: str) -> str | None:
    for pair in query_string.split("&"):
        key, _, value = pair.partition("=")
        if unquote(key) == name:
            return unquote(value)
    return None


async def availability(request: web.Request) -> web.Response:
    # SwiftPM's availability probe (protocol.md 4.8): any 200 means usable.
    return web.json_response({"status": "available"})


async def publish(request: web.Request) -> web.Response:
    _package(request)
    raise MethodNotAllowed(
        "publishing isn't supported: spm-proxy serves packages from its upstreams",
        headers={"Allow": "GET, HEAD"},
    )
