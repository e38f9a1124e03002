"""What every index backend must do: release records, lists, misses, identifiers, names.

An implementation's test module subclasses `IndexContract` as `Test...` and
provides `open_index`: a callable that opens a new handle on the same storage
each time (several processes share one index), and `advance(seconds)` to move
the clock the index sees.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace

import pytest

from cache.index import Index, ManifestRecord, ReleaseList, ReleaseRecord, Vanished
from upstreams.model import PackageId, Version

OpenIndex = Callable[[], Index]
LINKED_LIST = PackageId("mona", "LinkedList")


def record(
    package: PackageId = LINKED_LIST, version: str = "1.0.0", checksum: str = "a" * 64
) -> ReleaseRecord:
    return ReleaseRecord(
        package=package,
        version=Version.parse(version),
        archive_checksum=checksum,
        manifests=(ManifestRecord("Package.swift", "b" * 64, "5.9"),),
        metadata={"repositoryURLs": ["https://github.com/mona/LinkedList.git"]},
        published_at="2023-11-14T22:13:20Z",
        upstream="github",
        signing=None,
    )


def release_list(package: PackageId = LINKED_LIST, fetched_at: float = 100.0) -> ReleaseList:
    return ReleaseList(
        package=package,
        versions=(Version.parse("1.1.0"), Version.parse("1.0.0")),
        repository_urls=("https://github.com/mona/LinkedList.git",),
        problems={"1.1.0": {"status": 410, "detail": "gone"}},
        upstream="github",
        fetched_at=fetched_at,
    )


class IndexContract:
    @pytest.fixture
    def open_index(self) -> OpenIndex:
        raise NotImplementedError("a contract subclass provides open_index")

    @pytest.fixture
    def advance(self) -> Callable[[float], None]:
        raise NotImplementedError("a contract subclass moves its clock")

    @pytest.fixture
    def index(self, open_index: OpenIndex) -> Index:
        return open_index()

    # -- releases ---------------------------------------------------------------

    async def test_release_records_round_trip(self, index: Index) -> None:
        stored = await index.add_release(record())

        assert stored == record()
        assert await index.release(LINKED_LIST, Version.parse("1.0.0")) == record()
        assert await index.release(PackageId("MONA", "linkedlist"), Version.parse("1.0.0"))
        assert await index.release(LINKED_LIST, Version.parse("2.0.0")) is None

    async def test_add_release_keeps_the_first(self, open_index: OpenIndex) -> None:
        first, second = open_index(), open_index()

        winners = await asyncio.gather(
            first.add_release(record(checksum="c" * 64)),
            second.add_release(record(checksum="d" * 64)),
        )

        assert winners[0] == winners[1]
        assert await first.release(LINKED_LIST, Version.parse("1.0.0")) == winners[0]

    async def test_drop_release(self, index: Index) -> None:
        await index.add_release(record())

        await index.drop_release(LINKED_LIST, Version.parse("1.0.0"))

        assert await index.release(LINKED_LIST, Version.parse("1.0.0")) is None
        assert await index.add_release(record(checksum="e" * 64)) == record(checksum="e" * 64)

    async def test_releases_are_listed_in_order(self, index: Index) -> None:
        other = PackageId("apple", "swift-nio")
        for package, version in [
            (LINKED_LIST, "1.1.0"),
            (other, "2.0.0"),
            (LINKED_LIST, "1.0.0"),
            (LINKED_LIST, "1.0.0-beta.1"),
        ]:
            await index.add_release(record(package, version))

        everything = [(r.package.key, str(r.version)) async for r in index.releases()]
        ours = [str(r.version) async for r in index.releases(PackageId("mona", "linkedlist"))]

        assert everything == [
            ("apple.swift-nio", "2.0.0"),
            ("mona.linkedlist", "1.0.0-beta.1"),
            ("mona.linkedlist", "1.0.0"),
            ("mona.linkedlist", "1.1.0"),
        ]
        assert ours == ["1.0.0-beta.1", "1.0.0", "1.1.0"]

    # -- lists ------------------------------------------------------------------

    async def test_release_lists_round_trip_and_replace(self, index: Index) -> None:
        assert await index.release_list(LINKED_LIST) is None

        await index.put_release_list(release_list(fetched_at=1.0))
        await index.put_release_list(release_list(fetched_at=2.0))

        stored = await index.release_list(PackageId("mona", "linkedlist"))
        assert stored == release_list(fetched_at=2.0)

    async def test_release_lists_keep_what_the_upstream_lost(self, index: Index) -> None:
        lost = Vanished(1_700_000_000.0, "upstream 'github' no longer has mona.LinkedList")
        noted = replace(
            release_list(),
            versions=(Version.parse("1.1.0"),),
            vanished={"1.0.0": Vanished(1_600_000_000.0, "no longer lists 1.0.0")},
            gone=lost,
            unservable={"1.1.0": "tag 1.1.0 has no Package.swift at its root"},
        )

        await index.put_release_list(noted)

        assert await index.release_list(LINKED_LIST) == noted

    # -- misses -----------------------------------------------------------------

    async def test_misses_are_remembered_per_spelling(
        self, index: Index, advance: Callable[[float], None]
    ) -> None:
        lower = PackageId("mona", "linkedlist")
        await index.remember_missing(lower, None, "no repository for mona.linkedlist", 60)

        assert await index.missing(lower) == "no repository for mona.linkedlist"
        assert await index.missing(LINKED_LIST) is None
        assert await index.missing(lower, Version.parse("1.0.0")) is None

        advance(61)
        assert await index.missing(lower) is None

    async def test_release_misses_and_forgetting(self, index: Index) -> None:
        version = Version.parse("9.9.9")
        await index.remember_missing(LINKED_LIST, version, "no tag 9.9.9", 60)
        await index.remember_missing(PackageId("MONA", "LINKEDLIST"), version, "no tag", 60)

        assert await index.missing(LINKED_LIST, version) == "no tag 9.9.9"
        await index.forget_missing(PackageId("mona", "linkedlist"), version)

        assert await index.missing(LINKED_LIST, version) is None
        assert await index.missing(PackageId("MONA", "LINKEDLIST"), version) is None

    async def test_a_zero_ttl_remembers_nothing(self, index: Index) -> None:
        await index.remember_missing(LINKED_LIST, None, "gone", 0)

        assert await index.missing(LINKED_LIST) is None

    async def test_expired_misses_can_be_purged(
        self, index: Index, advance: Callable[[float], None]
    ) -> None:
        await index.remember_missing(LINKED_LIST, None, "gone", 0.05)
        await asyncio.sleep(0.1)
        advance(1)

        assert await index.purge_expired() >= 1
        assert await index.missing(LINKED_LIST) is None

    # -- identifiers ------------------------------------------------------------

    async def test_identifier_answers_round_trip(self, index: Index) -> None:
        location = "github.com/mona/linkedlist"
        ids = [LINKED_LIST, PackageId("mirror", "LinkedList")]

        await index.put_identities(location, ids, 123.0)

        answer = await index.identities(location)
        assert answer is not None
        assert (answer.location, list(answer.identities), answer.fetched_at) == (
            location,
            ids,
            123.0,
        )
        assert await index.identities("github.com/other/thing") is None
        assert [a.location async for a in index.answers()] == [location]

    # -- repository names -------------------------------------------------------

    async def test_the_first_repository_name_wins(self, open_index: OpenIndex) -> None:
        first, second = open_index(), open_index()

        kept = await asyncio.gather(
            first.learn_repository("github", LINKED_LIST, "mona/LinkedList"),
            second.learn_repository("github", PackageId("mona", "linkedlist"), "mona/linkedlist"),
        )

        assert kept[0] == kept[1]
        assert await first.repository("github", LINKED_LIST) == kept[0]
        assert await first.repository("gitlab", LINKED_LIST) is None
