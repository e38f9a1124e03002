"""Which repository serves an identity, and which identities a repository URL names.

An identity maps to a repository by explicit override, by the repository
name learned the first time the host answered for it, or by the URL
templates (`groue.GRDB_swift` -> `groue/GRDB_swift`, then `groue/GRDB.swift`).
Each repository has a public URL (what manifests and clients name) and a
fetch URL (a mirror, or the same URL); only fetch URLs are ever contacted.
Learned names go through the `RepositoryNames` seam: the name the host
answered to, never the URL, because a URL rendered from configuration may
carry credentials.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from pathlib import Path

import structlog

from upstreams.base import RepositoryNames
from upstreams.errors import PackageNotFound
from upstreams.git.naming import Repository, Templates, repository_name_candidates
from upstreams.git.transport import TransportOptions, ls_remote
from upstreams.locations import canonical_location, redact
from upstreams.model import InvalidIdentity, PackageId

Refs = dict[bytes, bytes | None]


class RepositoryLocator:
    def __init__(
        self,
        *,
        upstream: str,
        templates: Templates,
        overrides: Mapping[str, Repository],
        names: RepositoryNames,
        transport: TransportOptions,
        legacy_names: Path | None = None,
    ) -> None:
        self._upstream = upstream
        self._templates = templates
        # Identities compare case-insensitively; keep the spelling configured
        # for answering `/identifiers`.
        self._overrides: dict[str, tuple[str, Repository]] = {
            identity.lower(): (identity, repository) for identity, repository in overrides.items()
        }
        # Both locations of an override name it: the public one and the mirror.
        self._override_locations: dict[str, str] = {
            canonical_location(url): identity
            for identity, repository in overrides.items()
            for url in (repository.fetch, repository.public)
        }
        self._names = names
        self._transport = transport
        self._legacy_names = legacy_names
        self._adopted = asyncio.Lock()
        self._log = structlog.get_logger().bind(upstream=upstream)

    # -- identity -> repository -------------------------------------------------

    async def candidates(self, package: PackageId) -> list[Repository]:
        override = self._overrides.get(package.key)
        if override is not None:
            return [override[1]]
        await self._adopt_legacy_names()
        learned = await self._names.repository(self._upstream, package)
        if learned is not None:
            scope, _, repository = learned.partition("/")
            return [self._templates.render(scope, repository)]
        return [
            self._templates.render(package.scope, repository)
            for repository in repository_name_candidates(package.name)
        ]

    async def locate(self, package: PackageId) -> tuple[Repository, Refs]:
        """The repository that exists for `package`, and its refs right now."""
        candidates = await self.candidates(package)
        for repository in candidates:
            try:
                refs = await asyncio.to_thread(
                    ls_remote, repository.fetch, self._upstream, self._transport
                )
            except PackageNotFound:
                continue
            # Remember the spelling that answered: hosts may be case-sensitive
            # while clients send identities in any case (and skip a `_` -> `.`
            # miss next time).
            await self._remember(package, repository)
            return repository, refs
        tried = ", ".join(redact(repository.fetch) for repository in candidates)
        raise PackageNotFound(
            self._upstream, f"{self._upstream}: no repository for {package} (tried {tried})"
        )

    async def _remember(self, package: PackageId, repository: Repository) -> None:
        if package.key in self._overrides:
            return  # configuration says where it lives; nothing to learn
        matched = self._templates.public.match(repository.public)
        if matched is None:
            return
        name = "/".join(matched)
        kept = await self._names.learn_repository(self._upstream, package, name)
        if kept == name:
            self._log.debug("repository_name_known", package=str(package), repository=name)

    # -- repository URL -> identity ---------------------------------------------

    def claims(self, url: str) -> list[PackageId]:
        """The identity `url` would be answered with, decided without I/O.

        Public and mirror URLs alike, in every form SwiftPM compares equal.
        """
        identity = self._override_locations.get(canonical_location(url))
        if identity is not None:
            try:
                return [PackageId.parse(identity)]
            except InvalidIdentity:
                return []
        found = self._templates.identity_for(url)
        if found is None or found[0].key in self._overrides:
            # Not ours, or that identity is served from another repository.
            return []
        return [found[0]]

    async def identities_for(self, url: str) -> list[PackageId]:
        claimed = self.claims(url)
        if not claimed or claimed[0].key in self._overrides:
            return claimed
        matched = self._templates.match(url)
        assert matched is not None
        return claimed if await self._bind(claimed[0], *matched) else []

    async def _bind(self, package: PackageId, scope: str, repository: str) -> bool:
        """Whether `package` is (now) served from the repository `scope/repository`."""
        await self._adopt_legacy_names()
        name = f"{scope}/{repository}"
        bound = await self._names.repository(self._upstream, package)
        if bound is not None:
            if bound.lower() == name.lower():
                return True
            # The identity already names another repository: answering it would
            # make SwiftPM build that other package. Leave this URL to git.
            self._log.warning(
                "identity_taken", package=str(package), repository=name, bound_to=bound
            )
            return False
        # Answer only for a repository that exists: SwiftPM then keeps URLs we
        # cannot serve as git dependencies, and a misspelt URL on a
        # case-sensitive host never binds an identity.
        url = self._templates.render(scope, repository).fetch
        try:
            await asyncio.to_thread(ls_remote, url, self._upstream, self._transport)
        except PackageNotFound:
            return False
        kept = await self._names.learn_repository(self._upstream, package, name)
        if kept.lower() != name.lower():
            self._log.warning(
                "identity_taken", package=str(package), repository=name, bound_to=kept
            )
            return False
        self._log.info("identity_remembered", package=str(package), repository=name)
        return True

    # -- earlier versions' mapping file -----------------------------------------

    async def _adopt_legacy_names(self) -> None:
        """Take over the URL map earlier versions kept in `identities.json`, once.

        Only the repository names are kept (the URLs may hold credentials from
        the template), and the file is removed.
        """
        if self._legacy_names is None:
            return
        async with self._adopted:
            path, self._legacy_names = self._legacy_names, None
            if path is None:
                return
            try:
                raw = json.loads(await asyncio.to_thread(path.read_text, encoding="utf-8"))
            except (OSError, ValueError):
                return
            for key, url in raw.items() if isinstance(raw, dict) else ():
                matched = self._templates.match(str(url))
                try:
                    package = PackageId.parse(str(key))
                except InvalidIdentity:
                    continue
                if matched is not None:
                    await self._names.learn_repository(self._upstream, package, "/".join(matched))
            try:
                await asyncio.to_thread(path.unlink)
            except OSError:
                return
            self._log.info("legacy_identity_map_adopted", entries=len(raw))
