"""`GuardedUpstream`: an `Upstream` around an `Upstream` that applies its network policy.

`network = "offline"` means it is never contacted. After `failure_threshold`
consecutive transport failures (cannot connect, timeout, 5xx from the host)
it is assumed offline for `offline_window` seconds: not called, so cached
answers keep serving without waiting on a dead host. Answers of any kind,
"not found" and a repository the host cannot serve included, show that the
host works: one broken repository never takes healthy packages down with it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

import structlog

from upstreams.base import ArchiveSink, Upstream
from upstreams.errors import TransportFailure, UpstreamOffline
from upstreams.model import FetchedRelease, PackageId, ReleaseListing, Version

Network = Literal["online", "fallback", "offline"]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class GuardPolicy:
    network: Network = "fallback"
    failure_threshold: int = 3
    offline_window: float = 30.0


class GuardedUpstream:
    def __init__(
        self,
        upstream: Upstream,
        policy: GuardPolicy,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._upstream = upstream
        self.policy = policy
        self._clock = clock
        self._failures = 0
        self._offline_until = 0.0
        self._log = structlog.get_logger().bind(upstream=upstream.name)

    @property
    def name(self) -> str:
        return self._upstream.name

    @property
    def inner(self) -> Upstream:
        return self._upstream

    def serves(self, package: PackageId) -> bool:
        return self._upstream.serves(package)

    def claims(self, url: str) -> list[PackageId] | None:
        return self._upstream.claims(url)

    async def list_releases(self, package: PackageId) -> ReleaseListing:
        return await self._call(lambda: self._upstream.list_releases(package))

    async def fetch_release(
        self, package: PackageId, version: Version, archive: ArchiveSink
    ) -> FetchedRelease:
        return await self._call(lambda: self._upstream.fetch_release(package, version, archive))

    async def identities_for(self, url: str) -> list[PackageId]:
        return await self._call(lambda: self._upstream.identities_for(url))

    async def close(self) -> None:
        await self._upstream.close()

    def admit(self) -> None:
        """Raise `UpstreamOffline` when the upstream may not be called right now."""
        if self.policy.network == "offline":
            raise UpstreamOffline(self.name, f"upstream {self.name!r} is offline by policy")
        remaining = self._offline_until - self._clock()
        if remaining > 0:
            raise UpstreamOffline(
                self.name,
                f"upstream {self.name!r} is assumed offline for another {remaining:.0f} s "
                f"after {self._failures} consecutive transport failures",
            )

    async def _call(self, operation: Callable[[], Awaitable[T]]) -> T:
        self.admit()
        try:
            result = await operation()
        except TransportFailure:
            self._failed()
            raise
        except Exception:
            # The host answered (not found, a broken repository, a refused
            # document): the upstream itself is working.
            self._succeeded()
            raise
        self._succeeded()
        return result

    def _succeeded(self) -> None:
        if self._failures >= self.policy.failure_threshold:
            self._log.info("upstream_recovered")
        self._failures = 0
        self._offline_until = 0.0

    def _failed(self) -> None:
        self._failures += 1
        if self._failures >= self.policy.failure_threshold and self.policy.offline_window > 0:
            self._offline_until = self._clock() + self.policy.offline_window
            self._log.warning(
                "upstream_assumed_offline",
                failures=self._failures,
                window_seconds=self.policy.offline_window,
            )
