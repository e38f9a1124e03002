"""The `Upstream` seam: where releases come from.

Every implementation (git, registry, hosted) passes `tests/contracts/upstream.py`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from upstreams.model import FetchedRelease, PackageId, ReleaseListing, Version


class Upstream(Protocol):
    @property
    def name(self) -> str:
        """The configured name, used in logs, problem details and provenance."""
        ...

    def serves(self, package: PackageId) -> bool:
        """Whether routing may send this package here, decided without I/O."""
        ...

    async def list_releases(self, package: PackageId) -> ReleaseListing:
        """Versions the upstream offers.

        Raises `PackageNotFound`, or `UpstreamUnavailable` on transient failure.
        """
        ...

    async def fetch_release(
        self, package: PackageId, version: Version, archive: Path
    ) -> FetchedRelease:
        """Materialise one release, writing its source archive to `archive`.

        Raises `PackageNotFound`, `ReleaseNotFound`, `InvalidRelease` or
        `UpstreamUnavailable`.
        """
        ...

    async def identities_for(self, url: str) -> list[PackageId]:
        """Identities whose source repository is `url` (any URL form); [] if unknown."""
        ...

    async def close(self) -> None:
        """Release network sessions and other resources; called once at shutdown."""
        ...
