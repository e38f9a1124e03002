"""The lease seam: at most one holder of a piece of work at a time, across processes.

Protocols and record types only. A lease is granted to one holder until it
is released, its holder is known to be gone, or it outlives its time to live;
every grant of a key carries a larger fencing `token`, so a holder that lost
its lease can be told apart from the one that holds it now. Every
implementation passes `tests/contracts/leases.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Lease:
    key: str
    token: int
    holder: str
    expires_at: float


class Leases(Protocol):
    async def acquire(self, key: str, ttl: float) -> Lease | None:
        """The lease on `key` for `ttl` seconds, or None while another holder has it."""
        ...

    async def renew(self, lease: Lease, ttl: float) -> Lease | None:
        """The same lease for another `ttl` seconds; None when it was lost meanwhile."""
        ...

    async def release(self, lease: Lease) -> None:
        """Give the lease up; a lease already lost is left to its new holder."""
        ...
