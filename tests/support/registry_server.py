"""A real SE-0292 registry on loopback, able to misbehave on purpose.

Answers like a conforming registry (SE-0292 section 4): lists with
absolute `url`s and `Link`s, metadata with the source-archive checksum,
manifests with 4-attribute alternate links, archives with `Content-Length`,
`/identifiers`, `/availability`; every response carries `Content-Version: 1`
and problems are `application/problem+json` with a `detail`. Lists and
metadata have an `ETag` and answer `304` to a matching `If-None-Match`, so
revalidation can be tested.

`faults` switch on misbehaviour per request; `archive_redirect`,
`next_page` and `manifest_link` send clients to any URL a test names;
`requests`, `authorization_headers`, `request_headers`, `statuses` and
`connections` record what clients did.
"""

from __future__ import annotations

import asyncio
import base64
import enum
import hashlib
import io
import json
import zipfile
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from upstreams.model import (
    InvalidVersion,
    Version,
    is_manifest_filename,
    parse_tools_version,
    versioned_manifest_triple,
)

_ZIP_TIME = (2023, 2, 16, 4, 0, 0)
_DEFAULT_PUBLISHED_AT = "2023-02-16T04:00:00Z"


class Fault(enum.Enum):
    SERVER_ERROR = "server_error"  # 500 problem on every endpoint
    RATE_LIMITED = "rate_limited"  # 429 problem with Retry-After on every endpoint
    HANG = "hang"  # accept, never answer
    TRICKLE = "trickle"  # archive: send a few bytes, then stall
    TRUNCATE = "truncate"  # archive: Content-Length says N, sends N/2 then closes
    WRONG_CHECKSUM = "wrong_checksum"  # metadata announces a checksum the zip does not have
    INVALID_JSON = "invalid_json"  # list/metadata bodies are not JSON
    NO_CONTENT_VERSION = "no_content_version"  # list/metadata/manifest without Content-Version
    REDIRECT_LOOP = "redirect_loop"  # archive answers 303 to itself forever
    CHANGED_BYTES = "changed_bytes"  # archive bytes and checksum both change


@dataclass
class _Release:
    identity: str
    version: str
    archive: bytes
    manifests: dict[str, bytes]
    metadata: dict[str, Any]
    signing: dict[str, str] | None
    problem: dict[str, Any] | None
    published_at: str
    changed_archive: bytes = field(default=b"")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.archive).hexdigest()


def build_zip(top: str, files: dict[str, str | bytes], *, extra: bytes = b"") -> bytes:
    """A zip with one top-level directory `top`, deterministic bytes.

    SwiftPM's client strips exactly one top-level directory when it extracts
    an archive (`stripFirstLevel` in its FileSystem+Extensions.swift).
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        entries = dict(files)
        if extra:
            entries["CHANGED"] = extra
        for path in sorted(entries):
            content = entries[path]
            data = content.encode() if isinstance(content, str) else content
            info = zipfile.ZipInfo(f"{top}/{path}", date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def _problem(status: int, detail: str, headers: dict[str, str] | None = None) -> web.Response:
    body = {"status": status, "title": "Error", "detail": detail}
    response = web.Response(
        status=status, body=json.dumps(body).encode(), content_type="application/problem+json"
    )
    response.headers["Content-Version"] = "1"
    response.headers.update(headers or {})
    return response


def _is_list(path: str) -> bool:
    segments = path.strip("/").split("/")
    return len(segments) == 2 and segments[0] != "identifiers"


def _basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


class RegistryServer:
    def __init__(
        self,
        *,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        page_size: int | None = None,
        archive_host: RegistryServer | None = None,
    ) -> None:
        self._expected_auth: str | None = None
        if token is not None:
            self._expected_auth = f"Bearer {token}"
        elif username is not None:
            self._expected_auth = _basic(username, password or "")
        self._page_size = page_size
        self._archive_host = archive_host
        self._releases: dict[str, dict[str, _Release]] = {}
        self.faults: set[Fault] = set()
        # Misdirection: the archive answers 303 to this URL; the list's
        # rel="next" and the alternate manifests' links point to these.
        self.archive_redirect: str | None = None
        self.next_page: str | None = None
        self.manifest_link: str | None = None
        self.identifiers: dict[str, list[str]] = {}
        # Seconds between 64-byte pieces of an archive: a slow but live upstream
        # (set to None mid-transfer to let it finish at full speed).
        self.archive_pace: float | None = None
        # Seconds a release list answer is held back: an upstream slow to list.
        self.list_pace: float | None = None
        self.requests: list[str] = []
        self.authorization_headers: list[str | None] = []
        self.request_headers: list[CIMultiDict[str]] = []
        # The status answered to each request (a 304 proves revalidation).
        self.statuses: list[int] = []
        self.connections = 0
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.Server | None = None
        self._stopping: asyncio.Event | None = None
        self._port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    # -- publishing -------------------------------------------------------

    def publish(
        self,
        identity: str,
        version: str,
        files: dict[str, str | bytes],
        *,
        metadata: dict[str, Any] | None = None,
        signing: dict[str, str] | None = None,
        problem: dict[str, Any] | None = None,
        published_at: str = _DEFAULT_PUBLISHED_AT,
    ) -> str:
        """Publish a release; returns the sha256 hex of its archive."""
        manifests = {
            path: content.encode() if isinstance(content, str) else content
            for path, content in files.items()
            if is_manifest_filename(path)
        }
        release = _Release(
            identity=identity,
            version=version,
            archive=build_zip(identity, files),
            manifests=manifests,
            metadata=dict(metadata or {}),
            signing=signing,
            problem=problem,
            published_at=published_at,
            changed_archive=build_zip(identity, files, extra=b"re-published\n"),
        )
        self._store(release)
        if self._archive_host is not None:
            # The CDN serves the same bytes under the same path.
            self._archive_host._store(release)
        return release.checksum

    def unpublish(self, identity: str, version: str | None = None) -> None:
        """Drop one release from the list, or (no version) the whole package."""
        releases = self._releases.get(identity.lower(), {})
        if version is None:
            releases.clear()
        else:
            releases.pop(version, None)

    def mark(self, identity: str, version: str, problem: dict[str, Any] | None) -> None:
        """Give a published release a per-release `problem` in the list (or take it away)."""
        self._releases[identity.lower()][version].problem = problem

    def _store(self, release: _Release) -> None:
        self._releases.setdefault(release.identity.lower(), {})[release.version] = release

    # -- lifecycle --------------------------------------------------------

    async def start(self) -> None:
        self._stopping = asyncio.Event()
        app = web.Application(middlewares=[self._record, self._misbehave, self._authenticate])
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        protocol_factory = self._runner.server
        assert protocol_factory is not None

        def counting_factory() -> asyncio.BaseProtocol:
            # Counted at the socket level: a connection that never sends a
            # request still shows up here.
            self.connections += 1
            return protocol_factory()

        loop = asyncio.get_running_loop()
        self._listener = await loop.create_server(counting_factory, "127.0.0.1", 0)
        self._port = self._listener.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()
        if self._listener is not None:
            self._listener.close()
            await self._listener.wait_closed()
            self._listener = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> RegistryServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _stall(self) -> None:
        assert self._stopping is not None
        await self._stopping.wait()

    # -- middlewares ------------------------------------------------------

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append(f"{request.method} {request.raw_path}")
        self.authorization_headers.append(request.headers.get("Authorization"))
        self.request_headers.append(CIMultiDict(request.headers))
        response: web.StreamResponse = await handler(request)
        self.statuses.append(response.status)
        return response

    @web.middleware
    async def _misbehave(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if Fault.HANG in self.faults:
            await self._stall()
            return _problem(503, "shutting down")
        if Fault.SERVER_ERROR in self.faults:
            return _problem(500, "the registry is having a bad day")
        if Fault.RATE_LIMITED in self.faults:
            return _problem(429, "too many requests", {"Retry-After": "30"})
        if self.list_pace is not None and _is_list(request.path):
            await asyncio.sleep(self.list_pace)
        response: web.StreamResponse = await handler(request)
        return response

    @web.middleware
    async def _authenticate(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if (
            self._expected_auth is not None
            and request.path != "/availability"
            and request.headers.get("Authorization") != self._expected_auth
        ):
            return _problem(
                401,
                "missing or invalid authentication credentials",
                {"WWW-Authenticate": 'Basic realm="registry"'},
            )
        response: web.StreamResponse = await handler(request)
        return response

    # -- routing ----------------------------------------------------------

    async def _dispatch(  # noqa: PLR0911 - one return per endpoint reads best here
        self, request: web.Request
    ) -> web.StreamResponse:
        if request.method not in ("GET", "HEAD"):
            return _problem(405, "publishing isn't supported")
        path = request.path
        if path == "/availability":
            return self._json({})
        if path == "/identifiers":
            return self._identifiers(request)
        parts = path.strip("/").split("/")
        if len(parts) == 2:
            return self._list(request, parts[0], parts[1].removesuffix(".json"))
        if len(parts) == 3 and parts[2].endswith(".zip"):
            return await self._archive(request, parts[0], parts[1], parts[2].removesuffix(".zip"))
        if len(parts) == 3:
            return self._metadata(request, parts[0], parts[1], parts[2].removesuffix(".json"))
        if len(parts) == 4 and parts[3] == "Package.swift":
            return self._manifest(request, parts[0], parts[1], parts[2])
        return _problem(404, f"no route for {path}")

    def _package(self, scope: str, name: str) -> dict[str, _Release] | None:
        return self._releases.get(f"{scope}.{name}".lower())

    def _release(self, scope: str, name: str, version: str) -> _Release | None:
        releases = self._package(scope, name)
        return None if releases is None else releases.get(version)

    def _headers(self, *, versioned: bool = True) -> dict[str, str]:
        if versioned and Fault.NO_CONTENT_VERSION not in self.faults:
            return {"Content-Version": "1"}
        return {}

    def _json(
        self,
        body: Any,
        *,
        request: web.Request | None = None,
        links: list[str] | None = None,
        document: bool = False,
    ) -> web.Response:
        """A JSON answer; `document` ones (list, metadata) get ETag/304 and faults."""
        payload = json.dumps(body, indent=2).encode()
        headers = self._headers(versioned=document) if document else {"Content-Version": "1"}
        if links:
            headers["Link"] = ", ".join(links)
        if document:
            if Fault.INVALID_JSON in self.faults:
                payload = b"<html>this is not json</html>"
            # The ETag names the representation, headers included: a registry
            # that stops sending Content-Version changed what it serves.
            tag = hashlib.sha256(payload + headers.get("Content-Version", "-").encode())
            etag = '"' + tag.hexdigest()[:32] + '"'
            headers["ETag"] = etag
            if request is not None and etag in request.headers.get("If-None-Match", ""):
                return web.Response(status=304, headers=headers)
        return web.Response(body=payload, content_type="application/json", headers=headers)

    def _versions(self, releases: dict[str, _Release]) -> list[str]:
        """Newest first; keys that are not SemVer (published to test clients) go last."""
        valid: list[tuple[Version, str]] = []
        invalid: list[str] = []
        for key in releases:
            try:
                valid.append((Version.parse(key), key))
            except InvalidVersion:
                invalid.append(key)
        return [key for _, key in sorted(valid, reverse=True)] + sorted(invalid)

    def _list(self, request: web.Request, scope: str, name: str) -> web.StreamResponse:
        releases = self._package(scope, name)
        if not releases:
            return _problem(404, f"package {scope}.{name} not found")
        versions = self._versions(releases)
        base = f"{self.url}/{scope}/{name}"
        links = [f'<{base}/{versions[0]}>; rel="latest-version"']
        repository_urls = releases[versions[0]].metadata.get("repositoryURLs") or []
        for index, repository in enumerate(repository_urls):
            links.append(f'<{repository}>; rel="{"canonical" if index == 0 else "alternate"}"')
        page_versions = versions
        if self._page_size is not None:
            page = int(request.query.get("page", "1"))
            start = (page - 1) * self._page_size
            page_versions = versions[start : start + self._page_size]
            if start + self._page_size < len(versions):
                links.append(f'<{base}?page={page + 1}>; rel="next"')
        if self.next_page is not None:
            links.append(f'<{self.next_page}>; rel="next"')
        body: dict[str, Any] = {"releases": {}}
        for version in page_versions:
            entry: dict[str, Any] = {"url": f"{base}/{version}"}
            problem = releases[version].problem
            if problem is not None:
                entry["problem"] = problem
            body["releases"][version] = entry
        return self._json(body, request=request, links=links, document=True)

    def _metadata(
        self, request: web.Request, scope: str, name: str, version: str
    ) -> web.StreamResponse:
        release = self._release(scope, name, version)
        if release is None:
            return _problem(404, f"release {scope}.{name} {version} not found")
        checksum = release.checksum
        if Fault.CHANGED_BYTES in self.faults:
            checksum = hashlib.sha256(release.changed_archive).hexdigest()
        if Fault.WRONG_CHECKSUM in self.faults:
            checksum = hashlib.sha256(b"not the archive").hexdigest()
        resource: dict[str, Any] = {
            "name": "source-archive",
            "type": "application/zip",
            "checksum": checksum,
        }
        if release.signing is not None:
            resource["signing"] = release.signing
        body = {
            "id": release.identity,
            "version": release.version,
            "resources": [resource],
            "metadata": release.metadata,
            "publishedAt": release.published_at,
        }
        versions = self._versions(self._package(scope, name) or {})
        base = f"{self.url}/{scope}/{name}"
        links = [f'<{base}/{versions[0]}>; rel="latest-version"']
        position = versions.index(version)
        if position > 0:
            links.append(f'<{base}/{versions[position - 1]}>; rel="successor-version"')
        if position + 1 < len(versions):
            links.append(f'<{base}/{versions[position + 1]}>; rel="predecessor-version"')
        return self._json(body, request=request, links=links, document=True)

    def _manifest(
        self, request: web.Request, scope: str, name: str, version: str
    ) -> web.StreamResponse:
        release = self._release(scope, name, version)
        if release is None or "Package.swift" not in release.manifests:
            return _problem(404, f"release {scope}.{name} {version} not found")
        unqualified = f"{self.url}/{scope}/{name}/{version}/Package.swift"
        requested = request.query.get("swift-version")
        if requested is not None:
            # `5.9.0` must find `Package@swift-5.9.swift`: SwiftPM's client asks in
            # X.Y.Z form (SE-0292 4.3.1).
            parts = [int(part) for part in requested.split(".") if part.isdigit()]
            triple = (*parts, 0, 0, 0)[:3]
            for filename, content in release.manifests.items():
                if versioned_manifest_triple(filename) == triple:
                    return self._swift(filename, content, self._headers())
            return web.Response(status=303, headers={"Location": unqualified, **self._headers()})
        headers = self._headers()
        links = []
        for filename, content in sorted(release.manifests.items()):
            if filename == "Package.swift":
                continue
            swift_version = filename.removeprefix("Package@swift-").removesuffix(".swift")
            tools = parse_tools_version(content) or swift_version
            target = self.manifest_link or unqualified
            links.append(
                f'<{target}?swift-version={swift_version}>; rel="alternate"; '
                f'filename="{filename}"; swift-tools-version="{tools}"'
            )
        if links:
            headers["Link"] = ", ".join(links)
        return self._swift("Package.swift", release.manifests["Package.swift"], headers)

    @staticmethod
    def _swift(filename: str, content: bytes, headers: dict[str, str]) -> web.Response:
        headers = {**headers, "Content-Disposition": f'attachment; filename="{filename}"'}
        return web.Response(body=content, content_type="text/x-swift", headers=headers)

    async def _archive(
        self, request: web.Request, scope: str, name: str, version: str
    ) -> web.StreamResponse:
        location = self.archive_redirect
        if Fault.REDIRECT_LOOP in self.faults:
            location = f"{self.url}{request.raw_path}"
        if location is not None:
            return web.Response(status=303, headers={"Location": location})
        release = self._release(scope, name, version)
        if release is None:
            return _problem(404, f"release {scope}.{name} {version} not found")
        if self._archive_host is not None:
            return web.Response(
                status=303,
                headers={"Location": f"{self._archive_host.url}{request.raw_path}"},
            )
        data = release.changed_archive if Fault.CHANGED_BYTES in self.faults else release.archive
        digest = base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")
        response = web.StreamResponse(
            headers={
                "Content-Type": "application/zip",
                "Content-Version": "1",
                "Content-Disposition": f'attachment; filename="{name}-{version}.zip"',
                "Digest": f"sha-256={digest}",
            }
        )
        if release.signing is not None:
            response.headers["X-Swift-Package-Signature-Format"] = release.signing.get(
                "signatureFormat", ""
            )
            response.headers["X-Swift-Package-Signature"] = release.signing.get(
                "signatureBase64Encoded", ""
            )
        response.content_length = len(data)
        await response.prepare(request)
        if Fault.TRICKLE in self.faults:
            await response.write(data[:16])
            await self._stall()
            return response
        if Fault.TRUNCATE in self.faults:
            await response.write(data[: len(data) // 2])
            assert request.transport is not None
            request.transport.close()
            return response
        sent = 0
        while self.archive_pace is not None and sent < len(data):
            await response.write(data[sent : sent + 64])
            sent += 64
            await asyncio.sleep(self.archive_pace)
        await response.write(data[sent:])
        await response.write_eof()
        return response

    def _identifiers(self, request: web.Request) -> web.StreamResponse:
        url = request.query.get("url")
        if url is None:
            return _problem(400, "missing url parameter")
        found = self.identifiers.get(url)
        if not found:
            return _problem(404, f"no identifiers for {url}")
        return self._json({"identifiers": found})


__all__ = ["Fault", "RegistryServer", "build_zip"]
