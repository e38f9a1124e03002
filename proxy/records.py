"""What the metadata index holds about lists and releases, as plain JSON.

Values are JSON (never pickled upstream data), versioned by key prefix, so an
index written by one spm-proxy version is read safely by another.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any

from upstreams.model import PackageId, ReleaseListing, Version


class CacheStatus(StrEnum):
    """Reported in `X-Cache-Status` and the access log."""

    HIT = "hit"
    MISS = "miss"
    STALE = "stale"


# Every cached answer re-reads its release list, and parsing each version of a
# long list dominated serving it. Versions are immutable, so parsed ones are shared.
_parse_version = lru_cache(maxsize=65536)(Version.parse)


RELEASE_PREFIX = "v1/release/"
IDENTIFIERS_PREFIX = "v1/identifiers/"


def list_key(package: PackageId) -> str:
    return f"v1/list/{package.key}"


# "Not found" is remembered per spelling: on a case-sensitive git host one
# miscased request must not hide the package from correctly spelt ones.
def missing_package_key(package: PackageId) -> str:
    return f"v1/missing/{package}"


def release_key(package: PackageId, version: Version) -> str:
    return f"{RELEASE_PREFIX}{package.key}/{version}"


def identifiers_key(canonical_location: str) -> str:
    return f"{IDENTIFIERS_PREFIX}{canonical_location}"


def missing_release_key(package: PackageId, version: Version) -> str:
    return f"v1/missing/{package}/{version}"


@dataclass(frozen=True, slots=True)
class StoredListing:
    identity: str
    versions: tuple[Version, ...]
    repository_urls: tuple[str, ...]
    problems: dict[str, dict[str, Any]]
    upstream: str
    fetched_at: float

    @classmethod
    def from_listing(cls, listing: ReleaseListing, upstream: str, now: float) -> StoredListing:
        return cls(
            identity=str(listing.package),
            versions=tuple(sorted(listing.versions, reverse=True)),
            repository_urls=listing.repository_urls,
            problems=dict(listing.problems),
            upstream=upstream,
            fetched_at=now,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "identity": self.identity,
            "versions": [str(version) for version in self.versions],
            "repository_urls": list(self.repository_urls),
            "problems": self.problems,
            "upstream": self.upstream,
            "fetched_at": self.fetched_at,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StoredListing:
        return cls(
            identity=data["identity"],
            versions=tuple(map(_parse_version, data["versions"])),
            repository_urls=tuple(data["repository_urls"]),
            problems=data["problems"],
            upstream=data["upstream"],
            fetched_at=data["fetched_at"],
        )


@dataclass(frozen=True, slots=True)
class StoredManifest:
    filename: str
    checksum: str
    tools_version: str | None


@dataclass(frozen=True, slots=True)
class StoredRelease:
    identity: str
    version: Version
    archive_checksum: str
    manifests: tuple[StoredManifest, ...]
    metadata: dict[str, Any]
    published_at: str
    upstream: str
    # SE-0391 `signing` of the source archive, verbatim from the upstream.
    signing: dict[str, str] | None = None

    def manifest(self, filename: str) -> StoredManifest | None:
        return next((item for item in self.manifests if item.filename == filename), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "identity": self.identity,
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
    def from_json(cls, data: dict[str, Any]) -> StoredRelease:
        return cls(
            identity=data["identity"],
            version=_parse_version(data["version"]),
            archive_checksum=data["archive_checksum"],
            manifests=tuple(
                StoredManifest(item["filename"], item["checksum"], item["tools_version"])
                for item in data["manifests"]
            ),
            metadata=data["metadata"],
            published_at=data["published_at"],
            upstream=data["upstream"],
            signing=data.get("signing"),
        )
