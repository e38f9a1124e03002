"""What every `Ledger` must do.

An implementation's test module subclasses `LedgerContract` as `Test...` and provides
`open_ledger`: a callable that opens a new handle on the same storage each time, so
that durability and several writers can be tested.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import random
from collections.abc import AsyncIterator, Callable
from typing import Protocol

import pytest

from cache.ledger import Ledger, LedgerEntry
from upstreams.model import PackageId, Version


class ClosableLedger(Ledger, Protocol):
    async def close(self) -> None: ...


OpenLedger = Callable[[], ClosableLedger]


async def record_one(ledger: Ledger, item: LedgerEntry) -> LedgerEntry:
    (winner,) = await ledger.record([item])
    return winner


async def lookup_one(
    ledger: Ledger, identity: str, version: str, resource: str
) -> LedgerEntry | None:
    found = await ledger.lookup(PackageId.parse(identity), Version.parse(version))
    return found.get(resource)


async def all_entries(
    ledger: Ledger, identity: str | None = None, version: str | None = None
) -> list[LedgerEntry]:
    package = None if identity is None else PackageId.parse(identity)
    parsed = None if version is None else Version.parse(version)
    return [item async for item in ledger.entries(package, parsed)]


def checksum(label: str) -> str:
    return hashlib.sha256(label.encode()).hexdigest()


def entry(
    identity: str = "mona.linkedlist",
    version: str = "1.0.0",
    resource: str = "source-archive",
    *,
    content: str = "original",
    upstream: str = "github",
    commit: str | None = "0123456789abcdef0123456789abcdef01234567",
    recorded_at: int = 1_700_000_000,
) -> LedgerEntry:
    return LedgerEntry(
        identity=identity,
        version=version,
        resource=resource,
        checksum=checksum(content),
        upstream=upstream,
        url=f"https://{upstream}.example/{identity}",
        commit=commit,
        recorded_at=recorded_at,
    )


class BatchContract:
    """Recording a release's resources together (part of every ledger's contract)."""

    async def test_a_batch_is_recorded_and_returned_in_order(self, ledger: Ledger) -> None:
        items = [
            entry(resource="source-archive", content="zip"),
            entry(resource="Package.swift", content="manifest"),
        ]

        assert await ledger.record(items) == items
        found = await ledger.lookup(PackageId.parse("mona.linkedlist"), Version.parse("1.0.0"))
        assert found == {item.resource: item for item in items}

    async def test_a_batch_keeps_earlier_winners(self, ledger: Ledger) -> None:
        first = await record_one(ledger, entry(resource="Package.swift", content="first"))
        items = [
            entry(resource="source-archive", content="zip"),
            entry(resource="Package.swift", content="second"),
        ]

        winners = await ledger.record(items)

        assert winners == [items[0], first]

    async def test_a_batch_with_an_invalid_entry_records_nothing(self, ledger: Ledger) -> None:
        items = [
            entry(resource="source-archive", content="zip"),
            dataclasses.replace(entry(resource="Package.swift"), checksum="nope"),
        ]

        with pytest.raises(ValueError, match="digest"):
            await ledger.record(items)

        assert await all_entries(ledger) == []

    async def test_lookup_of_an_unknown_release_is_empty(self, ledger: Ledger) -> None:
        assert await ledger.lookup(PackageId("mona", "Nothing"), Version.parse("1.0.0")) == {}


class LedgerContract(BatchContract):
    @pytest.fixture
    def open_ledger(self) -> OpenLedger:
        raise NotImplementedError("a contract subclass provides open_ledger")

    @pytest.fixture
    async def ledger(self, open_ledger: OpenLedger) -> AsyncIterator[ClosableLedger]:
        ledger = open_ledger()
        yield ledger
        await ledger.close()

    async def test_new_entry_is_recorded_and_returned(self, ledger: Ledger) -> None:
        original = entry()

        assert await record_one(ledger, original) == original
        assert await lookup_one(ledger, "mona.linkedlist", "1.0.0", "source-archive") == original

    async def test_unknown_entry_is_none(self, ledger: Ledger) -> None:
        assert await lookup_one(ledger, "mona.linkedlist", "1.0.0", "source-archive") is None

    async def test_all_fields_round_trip(self, ledger: Ledger) -> None:
        without_commit = entry(resource="Package@swift-5.9.swift", commit=None)

        await record_one(ledger, without_commit)

        assert await lookup_one(ledger, *_key(without_commit)) == without_commit

    async def test_first_checksum_wins(self, ledger: Ledger) -> None:
        original = entry(content="original", upstream="github", recorded_at=1)
        moved_tag = entry(content="rebuilt", upstream="mirror", commit="f" * 40, recorded_at=2)

        await record_one(ledger, original)
        returned = await record_one(ledger, moved_tag)

        assert returned == original
        assert await lookup_one(ledger, *_key(original)) == original

    async def test_recording_the_same_checksum_again_keeps_the_original(
        self, ledger: Ledger
    ) -> None:
        original = entry(recorded_at=1)

        await record_one(ledger, original)

        assert await record_one(ledger, dataclasses.replace(original, recorded_at=99)) == original

    async def test_resources_of_one_release_are_independent(self, ledger: Ledger) -> None:
        archive = entry(resource="source-archive", content="zip")
        manifest = entry(resource="Package.swift", content="manifest")
        versioned = entry(resource="Package@swift-5.9.swift", content="manifest 5.9")

        for item in (archive, manifest, versioned):
            assert await record_one(ledger, item) == item

        assert await lookup_one(ledger, *_key(manifest)) == manifest

    async def test_identity_is_case_insensitive(self, ledger: Ledger) -> None:
        recorded = await record_one(ledger, entry(identity="Mona.LinkedList"))

        assert recorded.identity == "mona.linkedlist"
        assert await lookup_one(ledger, "MONA.linkedlist", "1.0.0", "source-archive") == recorded
        assert await record_one(ledger, entry(identity="mona.LINKEDLIST", content="x")) == recorded

    async def test_invalid_checksum_is_refused(self, ledger: Ledger) -> None:
        bad = dataclasses.replace(entry(), checksum="not-a-sha256")

        with pytest.raises(ValueError, match="digest"):
            await record_one(ledger, bad)
        assert await lookup_one(ledger, *_key(bad)) is None

    async def test_concurrent_records_agree_on_one_winner(self, ledger: Ledger) -> None:
        candidates = [entry(content=f"build {n}", recorded_at=n) for n in range(50)]

        winners = await asyncio.gather(*(record_one(ledger, item) for item in candidates))

        assert len(set(winners)) == 1
        assert winners[0] in candidates
        assert await lookup_one(ledger, *_key(winners[0])) == winners[0]

    async def test_concurrent_records_through_two_handles(self, open_ledger: OpenLedger) -> None:
        first, second = open_ledger(), open_ledger()
        try:
            candidates = [entry(content=f"build {n}", recorded_at=n) for n in range(40)]

            winners = await asyncio.gather(
                *(record_one(first if n % 2 else second, item) for n, item in enumerate(candidates))
            )

            assert len(set(winners)) == 1
            assert await lookup_one(first, *_key(winners[0])) == winners[0]
            assert await lookup_one(second, *_key(winners[0])) == winners[0]
        finally:
            await first.close()
            await second.close()

    async def test_entries_survive_close_and_reopen(self, open_ledger: OpenLedger) -> None:
        original = entry()
        ledger = open_ledger()
        await record_one(ledger, original)
        await ledger.close()

        reopened = open_ledger()
        try:
            assert await lookup_one(reopened, *_key(original)) == original
            assert await record_one(reopened, entry(content="later")) == original
            assert await all_entries(reopened) == [original]
        finally:
            await reopened.close()

    async def test_entries_are_sorted_and_filtered(self, ledger: Ledger) -> None:
        items = [
            entry(identity, version, resource, content=f"{identity} {version} {resource}")
            for identity in ("zed.tools", "apple.swift-nio", "mona.linkedlist")
            for version in ("2.0.0", "1.0.0", "1.1.0")
            for resource in ("source-archive", "Package.swift")
        ]
        for item in random.sample(items, len(items)):
            await record_one(ledger, item)

        ordered = sorted(items, key=_key)
        assert await all_entries(ledger) == ordered
        assert await all_entries(ledger, "mona.linkedlist") == [
            item for item in ordered if item.identity == "mona.linkedlist"
        ]
        assert await all_entries(ledger, "Mona.LinkedList", "1.1.0") == [
            item
            for item in ordered
            if item.identity == "mona.linkedlist" and item.version == "1.1.0"
        ]
        assert await all_entries(ledger, version="2.0.0") == [
            item for item in ordered if item.version == "2.0.0"
        ]
        assert await all_entries(ledger, "unknown.package") == []

    async def test_entries_of_an_empty_ledger(self, ledger: Ledger) -> None:
        assert await all_entries(ledger) == []


def _key(item: LedgerEntry) -> tuple[str, str, str]:
    return item.identity, item.version, item.resource
