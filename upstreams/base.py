"""The seams of the upstreams layer: what an upstream is, and what it needs.

`Upstream` is implemented here (git, registry) and wrapped here (the guard).
The other protocols are what an upstream needs from storage; `cache`
satisfies them structurally, without either layer importing the other.
Every `Upstream` passes `tests/contracts/upstream.py`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from upstreams.model import FetchedRelease, PackageId, ReleaseListing, Version


class ArchiveSink(Protocol):
    """Where an upstream writes the bytes of a source archive.

    A blob store's writer fits: it hashes while it writes, and nothing is
    kept unless the caller commits it afterwards.
    """

    async def write(self, chunk: bytes) -> None: ...

    async def write_file(self, path: Path) -> None:
        """Append the content of a local file; the caller keeps and removes `path`."""
        ...

    @property
    def digest(self) -> str:
        """SHA-256 hex of everything written so far."""
        ...

    @property
    def size(self) -> int: ...


class Upstream(Protocol):
    @property
    def name(self) -> str:
        """The configured name, used in logs, problem details and provenance."""
        ...

    def serves(self, package: PackageId) -> bool:
        """Whether routing may send this package here, decided without I/O."""
        ...

    def claims(self, url: str) -> list[PackageId] | None:
        """Identities this upstream would answer for `url` if the repository
        exists, decided without I/O; None when only asking can tell (registries).
        """
        ...

    async def list_releases(self, package: PackageId) -> ReleaseListing:
        """Versions the upstream offers.

        Raises `PackageNotFound`, or `UpstreamUnavailable` on transient failure.
        """
        ...

    async def fetch_release(
        self, package: PackageId, version: Version, archive: ArchiveSink
    ) -> FetchedRelease:
        """Write one release's source archive to `archive`; describe the release.

        Raises `PackageNotFound`, `ReleaseNotFound`, `InvalidRelease` or
        `UpstreamUnavailable`. A registry upstream checks `archive.digest`
        against the checksum it announces before returning.
        """
        ...

    async def identities_for(self, url: str) -> list[PackageId]:
        """Identities whose source repository is `url` (any URL form); [] if unknown."""
        ...

    async def close(self) -> None:
        """Release network sessions and other resources; called once at shutdown."""
        ...


class RepositoryNames(Protocol):
    """Which repository an identity was found at, per upstream.

    The name the host answered to (`groue/GRDB.swift`), never a URL: a URL
    may carry credentials from configuration. The first name learned wins,
    so an identity is never re-pointed at another repository.
    """

    async def repository(self, upstream: str, package: PackageId) -> str | None: ...

    async def learn_repository(self, upstream: str, package: PackageId, name: str) -> str:
        """Remember `name` unless one is known; return the name that is kept."""
        ...


class DocumentStore(Protocol):
    """Small documents an upstream keeps between runs (HTTP revalidation copies).

    Keys are opaque hex strings chosen by the upstream; a damaged or missing
    document is simply absent.
    """

    async def get(self, key: str) -> bytes | None: ...

    async def put(self, key: str, data: bytes) -> None: ...

    async def delete(self, key: str) -> None: ...

    async def keys(self) -> list[str]: ...

    async def size(self) -> int:
        """Bytes the documents occupy."""
        ...

    async def clear(self) -> int:
        """Remove every document; return the bytes freed."""
        ...

    async def sweep(self, older_than: float) -> int:
        """Remove documents half-written by a process that died; return the bytes freed."""
        ...


class LocalCache(Protocol):
    """Rebuildable state an upstream keeps on this machine (git mirrors, ...)."""

    @property
    def label(self) -> str:
        """What this cache is, for reports (`git mirrors of github`)."""
        ...

    async def usage(self) -> int:
        """Bytes it occupies."""
        ...

    async def trim(self, to_free: int) -> int:
        """Remove least recently used state until `to_free` bytes are freed (or
        nothing is left); return the bytes freed."""
        ...

    async def sweep(self, older_than: float) -> int:
        """Remove what an interrupted operation left behind more than `older_than`
        seconds ago (temporary files, stale locks, half-made state); never
        anything a live operation uses. Return the bytes freed."""
        ...
