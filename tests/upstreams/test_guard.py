"""`GuardedUpstream`: network policies row by row, and what counts toward "assumed offline"."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.config import CacheSettings, GitUpstreamSettings
from proxy.wiring import cache_policy, guard_policy
from tests.support.storage import FileSink
from upstreams.base import ArchiveSink
from upstreams.errors import (
    HostFailed,
    InvalidUpstreamResponse,
    PackageNotFound,
    RemoteFailed,
    Unreachable,
    UpstreamError,
    UpstreamOffline,
    UpstreamTimeout,
)
from upstreams.guard import GuardedUpstream, GuardPolicy
from upstreams.model import FetchedRelease, PackageId, ReleaseListing, Version

PACKAGE = PackageId("mona", "LinkedList")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Scripted:
    """An upstream that answers each call with the next scripted outcome."""

    name = "u"

    def __init__(self) -> None:
        self.outcomes: list[UpstreamError | None] = []
        self.calls = 0

    def serves(self, package: PackageId) -> bool:
        return True

    def claims(self, url: str) -> list[PackageId] | None:
        return None

    async def list_releases(self, package: PackageId) -> ReleaseListing:
        self.calls += 1
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if outcome is not None:
            raise outcome
        return ReleaseListing(package, (Version.parse("1.0.0"),))

    async def fetch_release(
        self, package: PackageId, version: Version, archive: ArchiveSink
    ) -> FetchedRelease:
        raise PackageNotFound(self.name, "never")

    async def identities_for(self, url: str) -> list[PackageId]:
        return []

    async def close(self) -> None:
        return None


def _upstream(**options: object) -> GitUpstreamSettings:
    return GitUpstreamSettings.model_validate(
        {"name": "u", "type": "git", "url_template": "https://h/{scope}/{name}.git", **options}
    )


@pytest.mark.parametrize(
    ("network", "offline_switch", "effective", "serves_stale", "admitted"),
    [
        ("online", False, "online", False, True),
        ("fallback", False, "fallback", True, True),
        ("offline", False, "offline", True, False),
        ("online", True, "offline", False, False),
        ("fallback", True, "offline", True, False),
    ],
)
def test_network_policy_table(
    network: str, offline_switch: bool, effective: str, serves_stale: bool, admitted: bool
) -> None:
    settings = _upstream(network=network)
    policy = guard_policy(settings, offline=offline_switch)
    assert policy.network == effective
    assert cache_policy(settings, CacheSettings()).serves_stale is serves_stale
    guard = GuardedUpstream(Scripted(), policy)
    if admitted:
        guard.admit()
    else:
        with pytest.raises(UpstreamOffline, match="offline by policy"):
            guard.admit()


def test_ttls_default_to_the_cache_section_and_can_be_overridden() -> None:
    cache = CacheSettings(list_ttl_seconds=100, negative_ttl_seconds=7)
    inherited = cache_policy(_upstream(), cache)
    assert (inherited.list_ttl, inherited.negative_ttl) == (100, 7)
    own = cache_policy(_upstream(list_ttl_seconds=5, negative_ttl_seconds=0), cache)
    assert (own.list_ttl, own.negative_ttl) == (5, 0)


async def test_offline_by_policy_never_calls_the_upstream() -> None:
    inner = Scripted()
    guard = GuardedUpstream(inner, GuardPolicy(network="offline"))

    with pytest.raises(UpstreamOffline):
        await guard.list_releases(PACKAGE)
    with pytest.raises(UpstreamOffline):
        await guard.fetch_release(PACKAGE, Version.parse("1.0.0"), FileSink(Path("/dev/null")))

    assert inner.calls == 0


@pytest.mark.parametrize(
    "failure",
    [
        Unreachable("u", "cannot connect"),
        UpstreamTimeout("u", "no answer"),
        HostFailed("u", "HTTP 503"),
    ],
)
async def test_transport_failures_open_an_offline_window_that_closes_again(
    failure: UpstreamError,
) -> None:
    clock, inner = Clock(), Scripted()
    guard = GuardedUpstream(inner, GuardPolicy(failure_threshold=3, offline_window=30), clock)
    inner.outcomes = [failure] * 4
    for _ in range(3):
        with pytest.raises(type(failure)):
            await guard.list_releases(PACKAGE)

    with pytest.raises(UpstreamOffline, match="assumed offline for another 30 s"):
        await guard.list_releases(PACKAGE)
    assert inner.calls == 3
    clock.now += 31
    with pytest.raises(type(failure)):
        await guard.list_releases(PACKAGE)  # the window is over: one probe goes through
    with pytest.raises(UpstreamOffline):
        await guard.list_releases(PACKAGE)  # and it failed: straight back to offline
    clock.now += 31
    await guard.list_releases(PACKAGE)
    assert inner.calls == 5


@pytest.mark.parametrize(
    "answer",
    [
        RemoteFailed("u", "aborting due to possible repository corruption on the remote side"),
        InvalidUpstreamResponse("u", "no Content-Version"),
        PackageNotFound("u", "no such repository"),
    ],
)
async def test_answers_of_any_kind_never_take_the_upstream_offline(answer: UpstreamError) -> None:
    # One broken repository affects that package alone, never healthy ones.
    inner = Scripted()
    guard = GuardedUpstream(inner, GuardPolicy(failure_threshold=2, offline_window=30), Clock())
    inner.outcomes = [answer] * 5
    for _ in range(5):
        with pytest.raises(type(answer)):
            await guard.list_releases(PACKAGE)

    assert (await guard.list_releases(PACKAGE)).versions == (Version.parse("1.0.0"),)


async def test_an_answer_resets_the_failure_count() -> None:
    inner = Scripted()
    guard = GuardedUpstream(inner, GuardPolicy(failure_threshold=2, offline_window=30), Clock())
    inner.outcomes = [
        Unreachable("u", "down"),
        RemoteFailed("u", "broken repository"),
        Unreachable("u", "down"),
    ]
    for _ in range(3):
        with pytest.raises(UpstreamError):
            await guard.list_releases(PACKAGE)

    await guard.list_releases(PACKAGE)  # still admitted: never two in a row
