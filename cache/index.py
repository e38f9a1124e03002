"""The index seam: typed records of what the proxy knows about packages.

Release records, release lists, "not found" memory, `/identifiers` answers and
learned repository names. Protocols and record types only; the key strings of
a backend never leave it. Every implementation passes `tests/contracts/index.py`.

Records are stored as JSON (never pickled upstream data); `to_json` and
`from_json` keep the field names every spm-proxy version has written.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, Protocol

from upstreams.model import SOURCE_ARCHIVE, PackageId, ReleaseListing, Version

# Every cached answer re-reads its release list, and parsing each version of a
# long list dominated serving it. Versions are immutable, so parsed ones are shared.
parse_version = lru_cache(maxsize=65536)(Version.parse)


@dataclass(frozen=True, slots=True)
class ManifestRecord:
    filename: str
    checksum: str
    tools_version: str | None


@dataclass(frozen=True, slots=True)
class ReleaseRecord:
    """One servable release: which bytes, and what to say about them."""

    package: PackageId
    version: Version
    archive_checksum: str
    manifests: tuple[ManifestRecord, ...]
    metadata: dict[str, Any]
    published_at: str
    upstream: str
    # SE-0391 `signing` of the source archive, verbatim from the upstream.
    signing: dict[str, str] | None = None

    def manifest(self, filename: str) -> ManifestRecord | None:
        return next((item for item in self.manifests if item.filename == filename), None)

    def resources(self) -> dict[str, str]:
        """resource name -> checksum, as the ledger names them."""
        found = {SOURCE_ARCHIVE: self.archive_checksum}
        found.update((m.filename, m.checksum) for m in self.manifests)
        return found

    def to_json(self) -> dict[str, Any]:
        return {
            "identity": str(self.package),
            "version": str(self.version),
            "archive_checksum": self.archive_checksum,
            "manifests": [
                {"filename": m.filename, "checksum": m.checksum, "tools_version": m.tools_version}
                for m in self.manifests
            ],
            "metadata": self.metadata,
            "published_at": self.published_at,
            "upstream": self.upstream,
            "signing": self.signing,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReleaseRecord:
        return cls(
            package=PackageId.parse(data["identity"]),
            version=parse_version(data["version"]),
            archive_checksum=data["archive_checksum"],
            manifests=tuple(
                ManifestRecord(item["filename"], item["checksum"], item["tools_version"])
                for item in data["manifests"]
            ),
            metadata=data["metadata"],
            published_at=data["published_at"],
            upstream=data["upstream"],
            signing=data.get("signing"),
        )


@dataclass(frozen=True, slots=True)
class Vanished:
    """What the proxy noticed an upstream lost, and since when (unix seconds)."""

    since: float
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"since": self.since, "detail": self.detail}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Vanished:
        return cls(float(data["since"]), str(data["detail"]))


@dataclass(frozen=True, slots=True)
class ReleaseList:
    """A package's release list as last fetched from `upstream` at `fetched_at`.

    `versions` and `problems` are what the upstream said. The rest is what the
    proxy knows besides: releases it holds that the upstream no longer lists
    (`vanished`), whether the upstream lost the whole package (`gone`), and
    listed releases it found it cannot serve (`unservable`, version -> detail).
    """

    package: PackageId
    versions: tuple[Version, ...]
    repository_urls: tuple[str, ...]
    problems: dict[str, dict[str, Any]]
    upstream: str
    fetched_at: float
    vanished: dict[str, Vanished] = field(default_factory=dict)
    gone: Vanished | None = None
    unservable: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_listing(cls, listing: ReleaseListing, upstream: str, now: float) -> ReleaseList:
        return cls(
            package=listing.package,
            versions=tuple(sorted(listing.versions, reverse=True)),
            repository_urls=listing.repository_urls,
            problems=dict(listing.problems),
            upstream=upstream,
            fetched_at=now,
        )

    def limited_to(self, versions: set[Version]) -> ReleaseList:
        kept = tuple(version for version in self.versions if version in versions)
        names = {str(version) for version in versions}
        return replace(
            self,
            versions=kept,
            problems={name: p for name, p in self.problems.items() if name in names},
            vanished={name: v for name, v in self.vanished.items() if name in names},
            unservable={name: d for name, d in self.unservable.items() if name in names},
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "identity": str(self.package),
            "versions": [str(version) for version in self.versions],
            "repository_urls": list(self.repository_urls),
            "problems": self.problems,
            "upstream": self.upstream,
            "fetched_at": self.fetched_at,
            "vanished": {name: note.to_json() for name, note in self.vanished.items()},
            "gone": None if self.gone is None else self.gone.to_json(),
            "unservable": self.unservable,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReleaseList:
        gone = data.get("gone")
        return cls(
            package=PackageId.parse(data["identity"]),
            versions=tuple(map(parse_version, data["versions"])),
            repository_urls=tuple(data["repository_urls"]),
            problems=data["problems"],
            upstream=data["upstream"],
            fetched_at=data["fetched_at"],
            # Absent from lists written before the proxy kept what upstreams lost.
            vanished={
                name: Vanished.from_json(note)
                for name, note in (data.get("vanished") or {}).items()
            },
            gone=None if gone is None else Vanished.from_json(gone),
            unservable=dict(data.get("unservable") or {}),
        )


class Releases(Protocol):
    async def release(self, package: PackageId, version: Version) -> ReleaseRecord | None: ...

    async def add_release(self, record: ReleaseRecord) -> ReleaseRecord:
        """Store `record` unless one exists for its release; return what is stored."""
        ...

    async def drop_release(self, package: PackageId, version: Version) -> None: ...

    def releases(self, package: PackageId | None = None) -> AsyncIterator[ReleaseRecord]:
        """Every stored release (of one package), sorted by identity and version."""
        ...


class Lists(Protocol):
    async def release_list(self, package: PackageId) -> ReleaseList | None: ...

    async def put_release_list(self, release_list: ReleaseList) -> None: ...


class Misses(Protocol):
    """ "Not found" answers, remembered briefly per spelling of the identity.

    On a case-sensitive git host one miscased request must not hide the
    package from correctly spelt ones, so `mona.linkedlist` and
    `mona.LinkedList` are remembered apart.
    """

    async def missing(self, package: PackageId, version: Version | None = None) -> str | None:
        """The remembered detail, or None when nothing (unexpired) is remembered."""
        ...

    async def remember_missing(
        self, package: PackageId, version: Version | None, detail: str, ttl: float
    ) -> None: ...

    async def forget_missing(self, package: PackageId, version: Version | None = None) -> None:
        """Forget every spelling of the package (or release)."""
        ...

    async def purge_expired(self) -> int:
        """Remove expired memories; how many went."""
        ...


@dataclass(frozen=True, slots=True)
class IdentitiesAnswer:
    location: str  # SwiftPM's canonical form, `github.com/mona/linkedlist`
    identities: tuple[PackageId, ...]
    fetched_at: float


class Identifiers(Protocol):
    async def identities(self, location: str) -> IdentitiesAnswer | None: ...

    async def put_identities(
        self, location: str, identities: Sequence[PackageId], fetched_at: float
    ) -> None: ...

    def answers(self) -> AsyncIterator[IdentitiesAnswer]: ...


class RepositoryNames(Protocol):
    """See `upstreams.base.RepositoryNames`: the same seam, satisfied structurally."""

    async def repository(self, upstream: str, package: PackageId) -> str | None: ...

    async def learn_repository(self, upstream: str, package: PackageId, name: str) -> str: ...


class Index(Releases, Lists, Misses, Identifiers, RepositoryNames, Protocol):
    """One backend implements every index seam; functions take only the ones they use."""
