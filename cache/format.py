"""The data format seam: which format a backend's stored data is in, and upgrades in place.

Every backend records the format its data is in. A backend opened by a
newer spm-proxy is upgraded in place, crash-safely: each step is idempotent
and the new format is recorded only after the last one, so an interrupted
upgrade simply runs again. Data of a newer format is refused, never
touched. No upgrade rewrites a ledger entry. Protocols and records only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from cache.errors import StorageError


@dataclass(frozen=True, slots=True)
class Change:
    """One thing an upgrade changes (or did change), for people to read."""

    what: str  # the part of the storage: `index`, `git/github/identities.json`
    detail: str


@dataclass(frozen=True, slots=True)
class FormatState:
    # None: nothing is stored yet; the current format is recorded on first use.
    found: int | None
    current: int

    @property
    def pending(self) -> bool:
        return self.found is not None and self.found < self.current


class FormatRefused(StorageError):
    """Stored data this version must not touch: a newer format, or no readable record."""


class DataFormat(Protocol):
    async def state(self) -> FormatState:
        """The recorded format; raises `FormatRefused` when it cannot be read."""
        ...

    async def plan(self) -> list[Change]:
        """What `upgrade` would change, changing nothing; raises `FormatRefused`."""
        ...

    async def upgrade(self) -> list[Change]:
        """Bring the stored data to the current format (one process at a time) and
        record it; what changed. Nothing when current; `FormatRefused` when newer."""
        ...
