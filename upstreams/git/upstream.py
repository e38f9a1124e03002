"""`GitUpstream`: releases built from the SemVer tags of git repositories."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from upstreams.credentials import Credentials
from upstreams.errors import InvalidRelease, PackageNotFound, ReleaseNotFound
from upstreams.git import mirror
from upstreams.git.archive import find_manifests, write_archive
from upstreams.git.identities import IdentityMap
from upstreams.git.naming import RepositoryTemplate, repository_name_candidates
from upstreams.git.tags import ReleaseTag, release_tags
from upstreams.git.transport import TransportOptions, ls_remote
from upstreams.git.tree import collect_files
from upstreams.locations import canonical_location, redact, ssh_form
from upstreams.model import (
    MANIFEST_NAME,
    FetchedRelease,
    InvalidIdentity,
    Manifest,
    PackageId,
    Provenance,
    ReleaseListing,
    Version,
    utc_timestamp,
)


@dataclass(frozen=True, slots=True)
class _Built:
    manifests: tuple[Manifest, ...]
    metadata: dict[str, Any]
    commit: str


def public_urls(url: str) -> tuple[str, ...]:
    """The repository URLs clients may see: credentials removed, plus the ssh form."""
    https = redact(url)
    ssh = ssh_form(https)
    return (https, ssh) if ssh else (https,)


class GitUpstream:
    def __init__(
        self,
        *,
        name: str,
        url_template: str,
        mirror_root: Path,
        overrides: Mapping[str, str],
        timeout: float,
        credentials: Credentials | None = None,
    ) -> None:
        self._name = name
        self._template = RepositoryTemplate(url_template)
        self._mirror_root = mirror_root
        # Identities compare case-insensitively; keep the spelling configured
        # for answering `/identifiers`.
        self._overrides: dict[str, tuple[str, str]] = {
            identity.lower(): (identity, url) for identity, url in overrides.items()
        }
        self._transport = TransportOptions(timeout=timeout, credentials=credentials)
        self._identities = IdentityMap(mirror_root / "identities.json")
        # One lock per mirror: fetches into one repository are serialised.
        self._locks: dict[str, asyncio.Lock] = {}

    @property
    def name(self) -> str:
        return self._name

    def serves(self, package: PackageId) -> bool:
        # Routing by scope is decided by the rules that own this upstream.
        return True

    async def repository_url(self, package: PackageId) -> str:
        """The repository a package is fetched from (credentials included)."""
        return (await self._candidate_urls(package))[0]

    async def _candidate_urls(self, package: PackageId) -> list[str]:
        override = self._overrides.get(package.key)
        if override is not None:
            return [override[1]]
        remembered = await asyncio.to_thread(self._identities.get, package.key)
        if remembered is not None:
            return [remembered]
        return [
            self._template.render(package.scope, repository)
            for repository in repository_name_candidates(package.name)
        ]

    async def _locate(self, package: PackageId) -> tuple[str, dict[bytes, bytes | None]]:
        """The repository URL that exists for `package`, and its refs right now."""
        candidates = await self._candidate_urls(package)
        for url in candidates:
            try:
                refs = await asyncio.to_thread(ls_remote, url, self._name, self._transport)
            except PackageNotFound:
                continue
            # Remember the spelling that answered: hosts may be case-sensitive
            # while clients send identities in any case (and skip a `_` -> `.`
            # miss next time).
            await self._remember(package, url)
            return url, refs
        tried = ", ".join(redact(url) for url in candidates)
        raise PackageNotFound(
            self._name, f"{self._name}: no repository for {package} (tried {tried})"
        )

    async def list_releases(self, package: PackageId) -> ReleaseListing:
        url, refs = await self._locate(package)
        versions = sorted(release_tags(refs), reverse=True)
        return ReleaseListing(package, tuple(versions), repository_urls=public_urls(url))

    async def fetch_release(
        self, package: PackageId, version: Version, archive: Path
    ) -> FetchedRelease:
        url, refs = await self._locate(package)
        tag = release_tags(refs).get(version)
        if tag is None:
            raise ReleaseNotFound(
                self._name, f"{self._name}: {package} has no tag for version {version}", redact(url)
            )
        path = mirror.mirror_path(self._mirror_root, url)
        lock = self._locks.setdefault(path.name, asyncio.Lock())
        async with lock:
            await asyncio.to_thread(
                mirror.update, path, url, tag, upstream=self._name, options=self._transport
            )
        # Building only reads objects that are already there; packs are
        # immutable, so concurrent fetches into the mirror cannot disturb it.
        built = await asyncio.to_thread(self._build, path, url, package, tag, archive)
        return FetchedRelease(
            package=package,
            version=version,
            archive=archive,
            manifests=built.manifests,
            metadata=built.metadata,
            provenance=Provenance(upstream=self._name, url=redact(url), commit=built.commit),
        )

    def _build(
        self, path: Path, url: str, package: PackageId, tag: ReleaseTag, archive: Path
    ) -> _Built:
        where = redact(url)
        log = structlog.get_logger().bind(upstream=self._name, package=str(package), tag=tag.name)
        with mirror.MirrorRepo(str(path)) as repo:
            commit, annotated = mirror.peel(repo, tag.sha, self._name, where)
            files = collect_files(repo, commit.tree)
            if MANIFEST_NAME not in files.files:
                raise InvalidRelease(
                    self._name,
                    f"{self._name}: tag {tag.name} of {where} has no {MANIFEST_NAME} at its root",
                    where,
                )
            manifests = find_manifests(repo, files)
            entries = write_archive(repo, files, package.key, int(commit.commit_time), archive)
        sha = commit.id.decode("ascii")
        source_control: dict[str, Any] = {"tag": tag.name, "commit": sha}
        if files.submodules:
            source_control["submodules"] = sorted(files.submodules)
        published = annotated.tag_time if annotated is not None else commit.commit_time
        metadata: dict[str, Any] = {
            "repositoryURLs": list(public_urls(url)),
            "originalPublicationTime": utc_timestamp(published),
            "sourceControl": source_control,
        }
        log.info("release_archived", commit=sha, entries=entries)
        return _Built(manifests, metadata, sha)

    async def close(self) -> None:
        # Each operation opens and closes its own transport; nothing is held.
        return None

    def _overridden(self, url: str) -> list[PackageId] | None:
        """The identity an explicit override gives `url`, [] if invalid, None if none."""
        canonical = canonical_location(url)
        for identity, override_url in self._overrides.values():
            if canonical_location(override_url) == canonical:
                try:
                    return [PackageId.parse(identity)]
                except InvalidIdentity:
                    return []
        return None

    async def identities_for(self, url: str) -> list[PackageId]:
        overridden = self._overridden(url)
        if overridden is not None:
            return overridden
        found = self._template.identity_for(url)
        if found is None:
            return []
        package, repository = found
        if package.key in self._overrides:
            # That identity is served from another repository.
            return []
        repository_url = self._template.render(package.scope, repository)
        return [package] if await self._bind(package, repository_url) else []

    async def _bind(self, package: PackageId, repository_url: str) -> bool:
        """Whether `package` is (now) served from `repository_url`."""
        bound = await asyncio.to_thread(self._identities.get, package.key)
        if bound is not None:
            if canonical_location(bound) == canonical_location(repository_url):
                return True
            # The identity already names another repository: answering it would
            # make SwiftPM build that other package. Leave this URL to git.
            structlog.get_logger().warning(
                "identity_taken",
                upstream=self._name,
                package=str(package),
                url=redact(repository_url),
                bound_to=redact(bound),
            )
            return False
        # Answer only for a repository that exists: SwiftPM then keeps URLs we
        # cannot serve as git dependencies, and a misspelt URL on a
        # case-sensitive host never binds an identity.
        try:
            await asyncio.to_thread(ls_remote, repository_url, self._name, self._transport)
        except PackageNotFound:
            return False
        await self._remember(package, repository_url)
        return True

    async def _remember(self, package: PackageId, url: str) -> None:
        if await asyncio.to_thread(self._identities.remember, package.key, url):
            structlog.get_logger().info(
                "identity_remembered", upstream=self._name, package=str(package), url=redact(url)
            )
