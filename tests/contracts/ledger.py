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

import pytest

from cache.ledger import Ledger, LedgerEntry

OpenLedger = Callable[[], Ledger]


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


class LedgerContract:
    @pytest.fixture
    def open_ledger(self) -> OpenLedger:
        raise NotImplementedError("a contract subclass provides open_ledger")

    @pytest.fixture
    async def ledger(self, open_ledger: OpenLedger) -> AsyncIterator[Ledger]:
        ledger = open_ledger()
        yield ledger
        await ledger.close()

    async def test_new_entry_is_recorded_and_returned(self, ledger: Ledger) -> None:
        original = entry()

        assert await ledger.record(original) == original
        assert await ledger.lookup("mona.linkedlist", "1.0.0", "source-archive") == original

    async def test_unknown_entry_is_none(self, ledger: Ledger) -> None:
        assert await ledger.lookup("mona.linkedlist", "1.0.0", "source-archive") is None

    async def test_all_fields_round_trip(self, ledger: Ledger) -> None:
        without_commit = entry(resource="Package@swift-5.9.swift", commit=None)

        await ledger.record(without_commit)

        assert await ledger.lookup(*_key(without_commit)) == without_commit

    async def test_first_checksum_wins(self, ledger: Ledger) -> None:
        original = entry(content="original", upstream="github", recorded_at=1)
        moved_tag = entry(content="rebuilt", upstream="mirror", commit="f" * 40, recorded_at=2)

        await ledger.record(original)
        returned = await ledger.record(moved_tag)

        assert returned == original
        assert await ledger.lookup(*_key(original)) == original

    async def test_recording_the_same_checksum_again_keeps_the_original(
        self, ledger: Ledger
    ) -> None:
        original = entry(recorded_at=1)

        await ledger.record(original)

        assert await ledger.record(dataclasses.replace(original, recorded_at=99)) == original

    async def test_resources_of_one_release_are_independent(self, ledger: Ledger) -> None:
        archive = entry(resource="source-archive", content="zip")
        manifest = entry(resource="Package.swift", content="manifest")
        versioned = entry(resource="Package@swift-5.9.swift", content="manifest 5.9")

        for item in (archive, manifest, versioned):
            assert await ledger.record(item) == item

        assert await ledger.lookup(*_key(manifest)) == manifest

    async def test_identity_is_case_insensitive(self, ledger: Ledger) -> None:
        recorded = await ledger.record(entry(identity="Mona.LinkedList"))

        assert recorded.identity == "mona.linkedlist"
        assert await ledger.lookup("MONA.linkedlist", "1.0.0", "source-archive") == recorded
        assert await ledger.record(entry(identity="mona.LINKEDLIST", content="x")) == recorded

    async def test_invalid_checksum_is_refused(self, ledger: Ledger) -> None:
        bad = dataclasses.replace(entry(), checksum="not-a-sha256")

        with pytest.raises(ValueError, match="digest"):
            await ledger.record(bad)
        assert await ledger.lookup(*_key(bad)) is None

    async def test_concurrent_records_agree_on_one_winner(self, ledger: Ledger) -> None:
        candidates = [entry(content=f"build {n}", recorded_at=n) for n in range(50)]

        winners = await asyncio.gather(*(ledger.record(item) for item in candidates))

        assert len(set(winners)) == 1
        assert winners[0] in candidates
        assert await ledger.lookup(*_key(winners[0])) == winners[0]

    async def test_concurrent_records_through_two_handles(self, open_ledger: OpenLedger) -> None:
        first, second = open_ledger(), open_ledger()
        try:
            candidates = [entry(content=f"build {n}", recorded_at=n) for n in range(40)]

            winners = await asyncio.gather(
                *((first if n % 2 else second).record(item) for n, item in enumerate(candidates))
            )

            assert len(set(winners)) == 1
            assert await first.lookup(*_key(winners[0])) == winners[0]
            assert await second.lookup(*_key(winners[0])) == winners[0]
        finally:
            await first.close()
            await second.close()

    async def test_entries_survive_close_and_reopen(self, open_ledger: OpenLedger) -> None:
        original = entry()
        ledger = open_ledger()
        await ledger.record(original)
        await ledger.close()

        reopened = open_ledger()
        try:
            assert await reopened.lookup(*_key(original)) == original
            assert await reopened.record(entry(content="later")) == original
            assert await reopened.entries() == [original]
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
            await ledger.record(item)

        ordered = sorted(items, key=_key)
        assert await ledger.entries() == ordered
        assert await ledger.entries("mona.linkedlist") == [
            item for item in ordered if item.identity == "mona.linkedlist"
        ]
        assert await ledger.entries("Mona.LinkedList", "1.1.0") == [
            item
            for item in ordered
            if item.identity == "mona.linkedlist" and item.version == "1.1.0"
        ]
        assert await ledger.entries(version="2.0.0") == [
            item for item in ordered if item.version == "2.0.0"
        ]
        assert await ledger.entries("unknown.package") == []

    async def test_entries_of_an_empty_ledger(self, ledger: Ledger) -> None:
        assert await ledger.entries() == []


def _key(item: LedgerEntry) -> tuple[str, str, str]:
    return item.identity, item.version, item.resource
