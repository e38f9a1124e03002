"""The ledger seam: the first checksum ever served for each release resource.

Durable and append-only; the authority on what a release's bytes are.
Protocols and record types only. Every implementation passes
`tests/contracts/ledger.py`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from upstreams.model import PackageId, Version


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    identity: str  # lower-cased "scope.name"
    version: str
    resource: str  # "source-archive", "Package.swift", "Package@swift-5.9.swift"
    checksum: str  # lowercase hex sha256
    upstream: str
    url: str
    commit: str | None
    recorded_at: int  # unix seconds, UTC


class Ledger(Protocol):
    async def lookup(self, package: PackageId, version: Version) -> dict[str, LedgerEntry]:
        """Every recorded resource of one release, by resource name."""
        ...

    async def record(self, entries: Sequence[LedgerEntry]) -> list[LedgerEntry]:
        """Record the entries whose (identity, version, resource) is new, in one transaction.

        Returns, for each entry in order, the first-recorded one: the entry
        itself when it is new, the existing one, untouched, otherwise. Atomic
        across tasks, threads and processes.
        """
        ...

    def entries(
        self, package: PackageId | None = None, version: Version | None = None
    ) -> AsyncIterator[LedgerEntry]:
        """Entries matching the filters, sorted by identity, version, resource."""
        ...
