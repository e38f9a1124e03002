"""Per-upstream policies and the guard that applies them to every upstream call.

`network`: online (always ask; fail when the upstream fails), fallback (serve
cached lists when it fails), offline (never contact it). After
`failure_threshold` consecutive failures an upstream is assumed offline for
`offline_window` seconds: it is not called, and everything cached still serves.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import structlog

from proxy.config import CacheSettings, GitUpstreamSettings, RegistryUpstreamSettings
from upstreams.errors import UpstreamOffline

Network = Literal["online", "fallback", "offline"]


@dataclass(frozen=True, slots=True)
class UpstreamPolicy:
    network: Network
    list_ttl: float
    negative_ttl: float
    failure_threshold: int
    offline_window: float

    @classmethod
    def from_settings(
        cls,
        upstream: GitUpstreamSettings | RegistryUpstreamSettings,
        cache: CacheSettings,
        *,
        offline: bool,
    ) -> UpstreamPolicy:
        return cls(
            network="offline" if offline else upstream.network,
            list_ttl=(
                cache.list_ttl_seconds
                if upstream.list_ttl_seconds is None
                else upstream.list_ttl_seconds
            ),
            negative_ttl=(
                cache.negative_ttl_seconds
                if upstream.negative_ttl_seconds is None
                else upstream.negative_ttl_seconds
            ),
            failure_threshold=upstream.failure_threshold,
            offline_window=upstream.offline_window_seconds,
        )

    @property
    def serves_stale(self) -> bool:
        return self.network != "online"


class UpstreamGuard:
    """Decides, without I/O, whether an upstream may be called right now."""

    def __init__(
        self, name: str, policy: UpstreamPolicy, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.name = name
        self.policy = policy
        self._clock = clock
        self._failures = 0
        self._offline_until = 0.0
        self._log = structlog.get_logger().bind(upstream=name)

    def admit(self) -> None:
        if self.policy.network == "offline":
            raise UpstreamOffline(self.name, f"upstream {self.name!r} is offline by policy")
        remaining = self._offline_until - self._clock()
        if remaining > 0:
            raise UpstreamOffline(
                self.name,
                f"upstream {self.name!r} is assumed offline for another {remaining:.0f} s "
                f"after {self._failures} consecutive failures",
            )

    def succeeded(self) -> None:
        if self._failures >= self.policy.failure_threshold:
            self._log.info("upstream_recovered")
        self._failures = 0
        self._offline_until = 0.0

    def failed(self) -> None:
        self._failures += 1
        if self._failures >= self.policy.failure_threshold and self.policy.offline_window > 0:
            self._offline_until = self._clock() + self.policy.offline_window
            self._log.warning(
                "upstream_assumed_offline",
                failures=self._failures,
                window_seconds=self.policy.offline_window,
            )
