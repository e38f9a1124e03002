"""Upstream policies, row by row, and the assumed-offline window."""

from __future__ import annotations

import pytest

from proxy.config import CacheSettings, GitUpstreamSettings
from proxy.policy import UpstreamGuard, UpstreamPolicy
from upstreams.errors import UpstreamOffline


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


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
        ("online", True, "offline", True, False),
        ("fallback", True, "offline", True, False),
    ],
)
def test_network_policy_table(
    network: str, offline_switch: bool, effective: str, serves_stale: bool, admitted: bool
) -> None:
    policy = UpstreamPolicy.from_settings(
        _upstream(network=network), CacheSettings(), offline=offline_switch
    )
    assert policy.network == effective
    assert policy.serves_stale is serves_stale
    guard = UpstreamGuard("u", policy)
    if admitted:
        guard.admit()
    else:
        with pytest.raises(UpstreamOffline, match="offline by policy"):
            guard.admit()


def test_ttls_default_to_the_cache_section_and_can_be_overridden() -> None:
    cache = CacheSettings(list_ttl_seconds=100, negative_ttl_seconds=7)
    inherited = UpstreamPolicy.from_settings(_upstream(), cache, offline=False)
    assert (inherited.list_ttl, inherited.negative_ttl) == (100, 7)
    own = UpstreamPolicy.from_settings(
        _upstream(list_ttl_seconds=5, negative_ttl_seconds=0), cache, offline=False
    )
    assert (own.list_ttl, own.negative_ttl) == (5, 0)


def test_repeated_failures_open_an_offline_window_that_closes_again() -> None:
    clock = Clock()
    policy = UpstreamPolicy.from_settings(
        _upstream(failure_threshold=3, offline_window_seconds=30), CacheSettings(), offline=False
    )
    guard = UpstreamGuard("u", policy, clock)
    guard.failed()
    guard.failed()
    guard.admit()  # two failures: still called
    guard.failed()
    with pytest.raises(UpstreamOffline, match="assumed offline for another 30 s"):
        guard.admit()
    clock.now += 29
    with pytest.raises(UpstreamOffline):
        guard.admit()
    clock.now += 2
    guard.admit()  # window over: one probe goes through
    guard.failed()  # and fails again: straight back to offline
    with pytest.raises(UpstreamOffline):
        guard.admit()
    clock.now += 31
    guard.admit()
    guard.succeeded()
    guard.failed()
    guard.admit()  # success reset the count


def test_success_resets_the_failure_count() -> None:
    policy = UpstreamPolicy.from_settings(
        _upstream(failure_threshold=2), CacheSettings(), offline=False
    )
    guard = UpstreamGuard("u", policy, Clock())
    guard.failed()
    guard.succeeded()
    guard.failed()
    guard.admit()
