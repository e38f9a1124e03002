"""`DiskcacheIndex` against the index contract, plus the records earlier versions wrote."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cache.embedded.index import DiskcacheIndex
from cache.embedded.kv import JsonStore
from cache.index import Index
from tests.contracts.index import LINKED_LIST, IndexContract, OpenIndex, record
from upstreams.model import Version


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class TestDiskcacheIndex(IndexContract):
    @pytest.fixture
    def clock(self) -> Clock:
        return Clock()

    @pytest.fixture
    def open_index(self, tmp_path: Path, clock: Clock) -> Iterator[OpenIndex]:
        stores: list[JsonStore] = []

        def open_index() -> Index:
            store = JsonStore(tmp_path / "index")
            stores.append(store)
            return DiskcacheIndex(store, clock=clock)

        yield open_index
        for store in stores:
            store.close()

    @pytest.fixture
    def advance(self, clock: Clock) -> Callable[[float], None]:
        def advance(seconds: float) -> None:
            clock.now += seconds

        return advance


@pytest.fixture
def store(tmp_path: Path) -> Iterator[JsonStore]:
    store = JsonStore(tmp_path / "index")
    yield store
    store.close()


async def test_release_records_written_by_earlier_versions_read_back(store: JsonStore) -> None:
    # The exact key and JSON every spm-proxy version has written for a release.
    await store.set("v1/release/mona.linkedlist/1.0.0", record().to_json())

    index = DiskcacheIndex(store)

    assert await index.release(LINKED_LIST, Version.parse("1.0.0")) == record()


async def test_release_lists_written_before_notes_read_back(store: JsonStore) -> None:
    # A list as spm-proxy wrote it before it noted what upstreams lost.
    await store.set(
        "v1/list/mona.linkedlist",
        {
            "identity": "mona.LinkedList",
            "versions": ["1.1.0", "1.0.0"],
            "repository_urls": ["https://github.com/mona/LinkedList.git"],
            "problems": {},
            "upstream": "github",
            "fetched_at": 100.0,
        },
    )

    found = await DiskcacheIndex(store).release_list(LINKED_LIST)

    assert found is not None
    assert (found.vanished, found.gone, found.unservable) == ({}, None, {})
    assert [str(version) for version in found.versions] == ["1.1.0", "1.0.0"]
