"""What a release list shows of held releases, policy by policy, row by row."""

from __future__ import annotations

from typing import Any

import pytest

from cache.index import ReleaseList, Vanished
from proxy.service.held import VanishedPolicy, gone_list, served, with_holdings
from upstreams.model import PackageId, Version

PACKAGE = PackageId("mona", "LinkedList")
YANKED = {"status": 410, "title": "Gone", "detail": "yanked upstream"}


def _versions(*texts: str) -> tuple[Version, ...]:
    return tuple(Version.parse(text) for text in texts)


def _list(**fields: Any) -> ReleaseList:
    defaults: dict[str, Any] = {
        "package": PACKAGE,
        "versions": _versions("2.0.0", "1.1.0"),
        "repository_urls": (),
        "problems": {"1.1.0": YANKED},
        "upstream": "github",
        "fetched_at": 100.0,
        "vanished": {"1.0.0": Vanished(50.0, "upstream 'github' no longer lists 1.0.0")},
        "unservable": {"2.0.0": "mona.LinkedList 2.0.0 cannot be served: no Package.swift"},
    }
    return ReleaseList(**{**defaults, **fields})


# policy, versions listed, problem statuses by version
POLICY_TABLE = [
    ("keep", ["2.0.0", "1.1.0", "1.0.0"], {"2.0.0": 404, "1.1.0": 410}),
    ("withdraw", ["2.0.0", "1.1.0", "1.0.0"], {"2.0.0": 404, "1.1.0": 410, "1.0.0": 410}),
    ("forget", ["2.0.0", "1.1.0"], {"2.0.0": 404, "1.1.0": 410}),
]


@pytest.mark.parametrize(("policy", "versions", "statuses"), POLICY_TABLE)
def test_policy_table(policy: str, versions: list[str], statuses: dict[str, int]) -> None:
    shown = served(_list(), VanishedPolicy(policy))

    assert [str(version) for version in shown.versions] == versions
    assert {name: problem["status"] for name, problem in shown.problems.items()} == statuses
    assert shown.problems["1.1.0"] == YANKED  # the upstream's own entry, unchanged


def test_an_upstream_problem_wins_over_the_proxys_own() -> None:
    release_list = _list(problems={"1.0.0": YANKED, "2.0.0": YANKED})

    shown = served(release_list, VanishedPolicy.WITHDRAW)

    assert shown.problems["1.0.0"] == YANKED
    assert shown.problems["2.0.0"] == YANKED


def test_the_withdrawn_detail_says_what_happened_and_when() -> None:
    shown = served(_list(), VanishedPolicy.WITHDRAW)

    assert shown.problems["1.0.0"]["detail"] == (
        "mona.LinkedList 1.0.0 is withdrawn: upstream 'github' no longer lists 1.0.0 "
        "(noticed 1970-01-01T00:00:50Z); this proxy still serves it to builds pinned to it"
    )


def test_a_list_with_nothing_held_or_noted_is_shown_as_it_is() -> None:
    plain = _list(vanished={}, unservable={})

    assert served(plain, VanishedPolicy.WITHDRAW) is plain


def test_holdings_note_what_vanished_once_and_keep_earlier_notes() -> None:
    fresh = _list(vanished={}, unservable={}, problems={}, fetched_at=200.0)
    previous = _list()

    noted, noticed = with_holdings(
        fresh, previous, set(_versions("1.1.0", "1.0.0", "0.9.0")), now=200.0
    )

    assert noticed == [Version.parse("0.9.0")]  # 1.0.0 was noticed before
    assert noted.vanished["1.0.0"] == previous.vanished["1.0.0"]
    assert noted.vanished["0.9.0"] == Vanished(200.0, "upstream 'github' no longer lists 0.9.0")
    assert "1.1.0" not in noted.vanished  # still listed
    # The upstream still lists 2.0.0 and nothing holds it: the note stays.
    assert noted.unservable == previous.unservable


def test_a_held_release_is_never_noted_unservable() -> None:
    noted, _ = with_holdings(_list(unservable={}), _list(), set(_versions("2.0.0")), now=1.0)

    assert noted.unservable == {}


def test_a_gone_package_is_listed_from_what_is_held() -> None:
    gone = gone_list(
        PACKAGE,
        _list(),
        set(_versions("1.1.0", "1.0.0")),
        upstream="github",
        detail="no repository for mona.LinkedList",
        now=300.0,
    )

    assert gone.versions == ()
    assert gone.gone == Vanished(
        300.0, "upstream 'github' no longer has mona.LinkedList: no repository for mona.LinkedList"
    )
    assert gone.vanished["1.0.0"].since == 50.0  # noticed missing before the package went
    assert gone.vanished["1.1.0"] == gone.gone
    assert [str(v) for v in served(gone, VanishedPolicy.KEEP).versions] == ["1.1.0", "1.0.0"]
    assert served(gone, VanishedPolicy.FORGET).versions == ()
