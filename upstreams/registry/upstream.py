"""`RegistryUpstream`: releases pulled from another SE-0292 registry.

Artifactory, Nexus, CodeArtifact or another spm-proxy. Bytes pass through
unchanged (archive, manifests, signing); the archive is verified against
the upstream's checksum before anyone may store it (SE-0292 4.4.1).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, NoReturn, TypeVar
from urllib.parse import quote

import structlog
from yarl import URL

from upstreams.base import ArchiveSink, DocumentStore
from upstreams.credentials import Credentials
from upstreams.errors import (
    ArchiveChecksumMismatch,
    InvalidRelease,
    InvalidUpstreamResponse,
    PackageNotFound,
    ReleaseNotFound,
    UpstreamUnavailable,
)
from upstreams.locations import lookup_form
from upstreams.model import (
    MANIFEST_NAME,
    FetchedRelease,
    InvalidIdentity,
    Manifest,
    PackageId,
    Provenance,
    ReleaseListing,
    Version,
    parse_tools_version,
    versioned_manifest_triple,
)
from upstreams.registry.client import NOT_FOUND, Answer, RegistryClient
from upstreams.registry.documents import (
    DocumentError,
    ReleaseMetadata,
    parse_identifiers,
    parse_list_page,
    parse_release_metadata,
)
from upstreams.registry.links import Link, manifest_links, parse_links
from upstreams.registry.media import (
    ACCEPT_JSON,
    ACCEPT_SWIFT,
    ACCEPT_ZIP,
    ALTERNATE_MANIFEST,
    ARCHIVE,
    JSON_DOCUMENT,
    MANIFEST,
)

# SwiftPM's client follows `next` (SE-0292 4.1) with no loop guard; we do guard.
MAX_PAGES = 100
_CHUNK = 64 * 1024
_GONE = frozenset({404, 410})

T = TypeVar("T")


def split_userinfo(
    base_url: str, credentials: Credentials | None
) -> tuple[URL, Credentials | None]:
    """The base URL without userinfo, and the credentials to use.

    `https://user:secret@host/...` is accepted as Basic credentials when no
    others are configured, and removed from the URL either way, so no URL we
    hold can leak it.
    """
    url = URL(base_url.rstrip("/"))
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError("registry upstream base_url must be an absolute http(s) URL")
    if url.user is not None and credentials is None:
        credentials = Credentials("basic", url.password or "", url.user)
    return url.with_user(None), credentials


class RegistryUpstream:
    def __init__(
        self,
        *,
        name: str,
        base_url: str,
        credentials: Credentials | None,
        connect_timeout: float,
        read_timeout: float,
        documents: DocumentStore,
        download_hosts: Iterable[str] = (),
    ) -> None:
        """`download_hosts`: origins (`https://cdn.example.com`, `https://*.cloudfront.net`)
        that redirects and links may lead to besides `base_url`'s own; they never
        get the credentials."""
        self._name = name
        self._documents = documents
        self._base, credentials = split_userinfo(base_url, credentials)
        self._client = RegistryClient(
            upstream=name,
            base_url=self._base,
            credentials=credentials,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            documents=documents,
            download_hosts=download_hosts,
        )
        self._log = structlog.get_logger().bind(upstream=name)

    def __repr__(self) -> str:
        return (
            f"RegistryUpstream(name={self._name!r}, base_url={self._client.display(self._base)!r})"
        )

    @property
    def name(self) -> str:
        return self._name

    @property
    def label(self) -> str:
        return f"HTTP revalidation copies of {self._name}"

    def serves(self, package: PackageId) -> bool:
        # Any identity may live in a registry; routing rules decide.
        return True

    def claims(self, url: str) -> list[PackageId] | None:
        # Only the registry knows which identities a repository URL has.
        return None

    async def usage(self) -> int:
        return await self._documents.size()

    async def sweep(self, older_than: float) -> int:
        return await self._documents.sweep(older_than)

    async def trim(self, to_free: int) -> int:
        # Revalidation copies only save a transfer: drop them all.
        return await self._documents.clear() if to_free > 0 else 0

    async def close(self) -> None:
        await self._client.close()

    # -- URLs -------------------------------------------------------------

    def _package_url(self, package: PackageId) -> URL:
        return self._base / package.scope / package.name

    def _release_url(self, package: PackageId, version: Version) -> URL:
        # `+` of build metadata stays literal in the path, as SwiftPM's client sends it.
        return self._package_url(package) / str(version)

    def _parsed(self, answer: Answer, parse: Callable[[bytes], T]) -> T:
        try:
            return parse(answer.body)
        except DocumentError as error:
            raise self._client.invalid(answer.url, str(error)) from None

    async def _document(
        self, url: URL, parse: Callable[[bytes], T], *, gone: frozenset[int] = NOT_FOUND
    ) -> tuple[Answer, T | None]:
        """A revalidated JSON document; None when the upstream's status is in `gone`."""
        answer = await self._client.get(
            url, accept=ACCEPT_JSON, expect=JSON_DOCUMENT, cached=True, passthrough=gone
        )
        if answer.status in gone:
            return answer, None
        try:
            return answer, self._parsed(answer, parse)
        except InvalidUpstreamResponse:
            # A stored copy must not be revalidated back into use.
            await self._client.forget(answer.url)
            raise

    # -- listing ----------------------------------------------------------

    async def list_releases(self, package: PackageId) -> ReleaseListing:
        url = self._package_url(package)
        seen = {url}
        versions: set[Version] = set()
        problems: dict[str, dict[str, Any]] = {}
        repository_urls: list[str] = []
        for page_number in range(1, MAX_PAGES + 1):
            answer, page = await self._document(url, parse_list_page)
            if page is None:
                if page_number == 1:
                    raise PackageNotFound(
                        self._name,
                        f"{self._name}: no package {package} at {self._client.display(url)}",
                        self._client.display(url),
                    )
                raise self._client.invalid(url, f"page {page_number} of the release list is gone")
            if page.dropped:
                self._log.info("release_keys_dropped", package=str(package), keys=page.dropped[:10])
            versions.update(page.versions)
            problems.update(page.problems)
            links = parse_links(answer.headers.getall("Link", []))
            for link in _repository_links(links):
                if link.target not in repository_urls:
                    repository_urls.append(link.target)
            next_url = self._next_page(answer, links)
            if next_url is None:
                break
            if next_url in seen:
                self._log.warning(
                    "release_list_pagination_loop",
                    package=str(package),
                    url=self._client.display(next_url),
                )
                break
            seen.add(next_url)
            url = next_url
        else:
            raise self._client.invalid(url, f"the release list has more than {MAX_PAGES} pages")
        return ReleaseListing(
            package,
            tuple(sorted(versions, reverse=True)),
            repository_urls=tuple(repository_urls),
            problems={key: problems[key] for key in sorted(problems)},
        )

    def _next_page(self, answer: Answer, links: list[Link]) -> URL | None:
        for link in links:
            if "next" in link.rels:
                # Relative links resolve against the page that carried them.
                return self._client.follow(answer.url, link.target, "next-page link")
        return None

    # -- fetching ---------------------------------------------------------

    async def fetch_release(
        self, package: PackageId, version: Version, archive: ArchiveSink
    ) -> FetchedRelease:
        release_url = self._release_url(package, version)
        _, metadata = await self._document(release_url, parse_release_metadata, gone=_GONE)
        if metadata is None:
            await self._not_found(package, version, release_url)
        manifests = await self._manifests(release_url / MANIFEST_NAME)
        archive_url = self._package_url(package) / f"{version}.zip"
        await self._download(archive_url, archive, metadata)
        self._log.info(
            "release_fetched",
            package=str(package),
            version=str(version),
            checksum=metadata.checksum,
            manifests=len(manifests),
        )
        return FetchedRelease(
            package=package,
            version=version,
            manifests=manifests,
            metadata=metadata.metadata,
            provenance=Provenance(upstream=self._name, url=self._client.display(archive_url)),
            upstream_checksum=metadata.checksum,
            signing=metadata.signing,
            published_at=metadata.published_at,
        )

    async def _not_found(self, package: PackageId, version: Version, url: URL) -> NoReturn:
        # Registries answer 404 for an unknown package and an unknown
        # version alike; the list tells them apart (it raises PackageNotFound).
        await self.list_releases(package)
        where = self._client.display(url)
        raise ReleaseNotFound(
            self._name, f"{self._name}: {package} has no version {version}", where
        )

    async def _manifests(self, url: URL) -> tuple[Manifest, ...]:
        answer = await self._client.get(url, accept=ACCEPT_SWIFT, expect=MANIFEST)
        where = self._client.display(url)
        if answer.status == 404:
            raise InvalidRelease(self._name, f"{self._name}: no {MANIFEST_NAME} at {where}", where)
        manifests = [Manifest(MANIFEST_NAME, answer.body, parse_tools_version(answer.body))]
        for link in manifest_links(parse_links(answer.headers.getall("Link", []))):
            if versioned_manifest_triple(link.filename) is None or any(
                known.filename == link.filename for known in manifests
            ):
                # The filename becomes a file name downstream: only the
                # `Package@swift-X[.Y[.Z]].swift` form is taken (SE-0292 4.3).
                self._log.warning("manifest_link_ignored", url=where, filename=link.filename[:100])
                continue
            target = self._client.follow(answer.url, link.target, f"link to {link.filename}")
            alternate = await self._client.get(
                target, accept=ACCEPT_SWIFT, expect=ALTERNATE_MANIFEST
            )
            if alternate.status == 404 or alternate.url == answer.url:
                # Advertised but not served (or redirected to Package.swift).
                raise self._client.invalid(target, f"{link.filename} is advertised but not served")
            manifests.append(Manifest(link.filename, alternate.body, link.tools_version))
        return tuple(manifests)

    async def _download(self, url: URL, archive: ArchiveSink, metadata: ReleaseMetadata) -> None:
        # Unverified bytes are never kept: the sink keeps nothing until its
        # owner commits it, and raising here makes sure the owner will not.
        await self._stream_archive(url, archive)
        self._verify(url, archive.digest, metadata.checksum)

    async def _stream_archive(self, url: URL, archive: ArchiveSink) -> None:
        where = self._client.display(url)
        async with self._client.stream(url, accept=ACCEPT_ZIP, expect=ARCHIVE) as response:
            if response.status == 404:
                raise InvalidRelease(
                    self._name, f"{self._name}: metadata but no archive at {where}", where
                )
            async for chunk in response.content.iter_chunked(_CHUNK):
                await archive.write(chunk)
            declared = response.content_length
            # Content-Length counts encoded bytes; only identity bodies compare.
            encoded = response.headers.get("Content-Encoding", "identity") != "identity"
        if declared is not None and not encoded and archive.size != declared:
            self._log.warning("archive_truncated", url=where, size=archive.size, expected=declared)
            raise UpstreamUnavailable(
                self._name,
                f"{self._name}: archive from {where} has {archive.size} of {declared} bytes",
                where,
            )

    def _verify(self, url: URL, actual: str, expected: str) -> None:
        if actual == expected:
            return
        where = self._client.display(url)
        self._log.error("archive_checksum_mismatch", url=where, expected=expected, actual=actual)
        raise ArchiveChecksumMismatch(
            self._name,
            f"{self._name}: archive from {where} has checksum {actual}, "
            f"the upstream's metadata says {expected}",
            where,
            expected=expected,
            actual=actual,
        )

    # -- identifiers ------------------------------------------------------

    async def identities_for(self, url: str) -> list[PackageId]:
        # Only repository URLs go out, with our credentials, and never the
        # client's: anything else is nothing a registry can map (SE-0292 4.5.1).
        forwarded = lookup_form(url)
        if forwarded is None:
            self._log.debug("identifiers_url_not_forwarded", reason="not a remote repository URL")
            return []
        # Otherwise as written, fully percent-encoded as a query value (RFC 3986 3.4).
        query = quote(forwarded, safe="")
        target = URL(f"{self._base / 'identifiers'}?url={query}", encoded=True)
        answer = await self._client.get(target, accept=ACCEPT_JSON, expect=JSON_DOCUMENT)
        if answer.status == 404:
            return []
        found: list[PackageId] = []
        for identifier in self._parsed(answer, parse_identifiers):
            try:
                package = PackageId.parse(identifier)
            except InvalidIdentity:
                self._log.info("upstream_identifier_invalid", identifier=identifier[:200])
                continue
            if package not in found:
                found.append(package)
        return found


def _repository_links(links: list[Link]) -> list[Link]:
    """`canonical` first, then `alternate`s (SE-0292 4.1)."""
    canonical = [link for link in links if "canonical" in link.rels]
    alternate = [
        link for link in links if "alternate" in link.rels and "canonical" not in link.rels
    ]
    return canonical + alternate
