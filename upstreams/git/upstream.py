"""`GitUpstream`: releases built from the SemVer tags of git repositories."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import structlog

from upstreams.base import ArchiveSink, RepositoryNames
from upstreams.credentials import Credentials
from upstreams.disk import tree_size
from upstreams.errors import BuildInterrupted, ReleaseNotFound
from upstreams.git import leftovers, mirror, release
from upstreams.git.builds import BuildPool, BuildProcessDied
from upstreams.git.locking import mirror_lock
from upstreams.git.naming import Repository, Templates
from upstreams.git.repositories import RepositoryLocator
from upstreams.git.tags import release_tags
from upstreams.git.transport import TransportOptions
from upstreams.locations import redact, ssh_form
from upstreams.model import (
    FetchedRelease,
    PackageId,
    Provenance,
    ReleaseListing,
    Version,
)


@dataclass(frozen=True, slots=True)
class PackageLocation:
    """Where one package lives, configured explicitly: its public repository URL, and
    the URL to fetch it from when that is not the public one or the template's mirror."""

    url: str
    fetch_url: str | None = None


def public_urls(repository: Repository) -> tuple[str, ...]:
    """The repository URLs clients may see, credentials removed: the public URL and
    its ssh form first (what manifests name), then the mirror's."""
    https = redact(repository.public)
    ssh = ssh_form(https)
    urls = (https, ssh) if ssh else (https,)
    return (*urls, redact(repository.fetch)) if repository.mirrored else urls


class GitUpstream:
    def __init__(
        self,
        *,
        name: str,
        url_template: str,
        mirror_root: Path,
        overrides: Mapping[str, str | PackageLocation],
        timeout: float,
        names: RepositoryNames,
        credentials: Credentials | None = None,
        fetch_url_template: str | None = None,
        build_processes: int = 4,
    ) -> None:
        self._name = name
        self._mirror_root = mirror_root
        self._transport = TransportOptions(timeout=timeout, credentials=credentials)
        templates = Templates.of(url_template, fetch_url_template)
        located = {
            identity: PackageLocation(where) if isinstance(where, str) else where
            for identity, where in overrides.items()
        }
        self._repositories = RepositoryLocator(
            upstream=name,
            templates=templates,
            overrides={
                identity: templates.locate(where.url, where.fetch_url)
                for identity, where in located.items()
            },
            names=names,
            transport=self._transport,
            legacy_names=mirror_root / "identities.json",
        )
        self._locks: dict[str, asyncio.Lock] = {}
        # Fetching into mirrors and building archives: CPU-heavy, in processes.
        self._builds = BuildPool(build_processes)

    @property
    def name(self) -> str:
        return self._name

    @property
    def label(self) -> str:
        return f"git mirrors of {self._name}"

    def serves(self, package: PackageId) -> bool:
        # Routing by scope is decided by the rules that own this upstream.
        return True

    def claims(self, url: str) -> list[PackageId] | None:
        return self._repositories.claims(url)

    async def repository(self, package: PackageId) -> Repository:
        """The repository a package is served from (credentials included)."""
        return (await self._repositories.candidates(package))[0]

    async def repository_url(self, package: PackageId) -> str:
        """The URL a package is fetched from (credentials included)."""
        return (await self.repository(package)).fetch

    async def list_releases(self, package: PackageId) -> ReleaseListing:
        repository, refs = await self._repositories.locate(package)
        versions = sorted(release_tags(refs), reverse=True)
        return ReleaseListing(package, tuple(versions), repository_urls=public_urls(repository))

    async def fetch_release(
        self, package: PackageId, version: Version, archive: ArchiveSink
    ) -> FetchedRelease:
        repository, refs = await self._repositories.locate(package)
        url = repository.fetch
        tag = release_tags(refs).get(version)
        if tag is None:
            raise ReleaseNotFound(
                self._name, f"{self._name}: {package} has no tag for version {version}", redact(url)
            )
        # Keyed by the public location: the same repository whichever mirror it
        # comes from, so a mirror configured later reuses what was fetched.
        path = mirror.mirror_path(self._mirror_root, repository.public)
        # One update of a mirror at a time in this process, so that updates
        # waiting for its lock do not take up build processes.
        lock = self._locks.setdefault(path.name, asyncio.Lock())
        async with lock:
            with self._interrupted(package, version, "fetching"):
                await self._builds.run(
                    mirror.update,
                    path,
                    url,
                    tag,
                    upstream=self._name,
                    options=self._transport,
                    version=version,
                )
        scratch = self._mirror_root / "scratch" / f"{uuid.uuid4().hex}.zip"
        try:
            # Building only reads objects that are already there; packs are
            # immutable, so concurrent fetches into the mirror cannot disturb it.
            with self._interrupted(package, version, "building"):
                built = await self._builds.run(
                    release.build,
                    path,
                    release.Source(self._name, redact(url), public_urls(repository)),
                    package,
                    tag,
                    scratch,
                )
            await archive.write_file(scratch)
        finally:
            await asyncio.to_thread(scratch.unlink, missing_ok=True)
        return FetchedRelease(
            package=package,
            version=version,
            manifests=built.manifests,
            metadata=built.metadata,
            provenance=Provenance(upstream=self._name, url=redact(url), commit=built.commit),
        )

    @contextmanager
    def _interrupted(self, package: PackageId, version: Version, doing: str) -> Iterator[None]:
        try:
            yield
        except BuildProcessDied as exc:
            raise BuildInterrupted(
                self._name,
                f"the process {doing} {package} {version} ended before it finished"
                " (killed, or out of memory); nothing was recorded, and a retry builds it again",
            ) from exc

    async def identities_for(self, url: str) -> list[PackageId]:
        return await self._repositories.identities_for(url)

    async def close(self) -> None:
        # Each operation opens and closes its own transport; the build
        # processes are all that is held.
        await self._builds.close()

    # -- LocalCache: the mirrors are rebuildable ----------------------------------

    async def usage(self) -> int:
        return await asyncio.to_thread(tree_size, self._mirror_root / "mirrors")

    async def sweep(self, older_than: float) -> int:
        return await asyncio.to_thread(leftovers.sweep, self._mirror_root, older_than, self._name)

    async def trim(self, to_free: int) -> int:
        """Remove whole mirrors, least recently fetched first, until `to_free` bytes went;
        a mirror a fill is writing is left alone."""
        return await asyncio.to_thread(self._trim, to_free)

    def _trim(self, to_free: int) -> int:
        root = self._mirror_root / "mirrors"
        if not root.is_dir():
            return 0
        mirrors = sorted(
            (path for path in root.iterdir() if path.is_dir()),
            key=lambda path: (path.stat().st_mtime, path.name),
        )
        freed = 0
        for path in mirrors:
            if freed >= to_free:
                break
            with mirror_lock(path, wait=False) as held:
                if not held:
                    continue  # a fill is writing it right now
                size = tree_size(path)
                shutil.rmtree(path, ignore_errors=True)
            freed += size
            structlog.get_logger().info(
                "mirror_evicted", upstream=self._name, mirror=path.name, size=size
            )
        return freed
