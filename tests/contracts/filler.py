"""What every coalescing `Filler` must do (in-process now; one that spans replicas later).

An implementation's test module subclasses `CoalescingFillerContract` and
provides `make`: given the inner filler to wrap, a client wait and a deadline,
the coalescing filler under test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from proxy.service.errors import FillStillRunning, FillTimedOut, NotFound
from proxy.service.fills import Filler
from upstreams.model import PackageId, Version

PACKAGE = PackageId("mona", "LinkedList")
V1, V2 = Version.parse("1.0.0"), Version.parse("2.0.0")
MakeFiller = Callable[[Filler, float, float], Filler]


class Recording:
    """An inner filler that records its calls and finishes when told to."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.release = asyncio.Event()
        self.failure: Exception | None = None

    async def fill(self, package: PackageId, version: Version) -> None:
        self.calls.append((package.key, str(version)))
        await self.release.wait()
        if self.failure is not None:
            raise self.failure


class CoalescingFillerContract:
    @pytest.fixture
    def make(self) -> MakeFiller:
        raise NotImplementedError("a contract subclass provides make")

    async def test_concurrent_requests_for_one_release_cause_one_fill(
        self, make: MakeFiller
    ) -> None:
        inner = Recording()
        filler = make(inner, 10, 60)
        waiters = [
            asyncio.create_task(filler.fill(PackageId("MONA", "linkedlist"), V1)) for _ in range(20)
        ]
        await asyncio.sleep(0.05)
        inner.release.set()

        await asyncio.gather(*waiters)

        assert inner.calls == [("mona.linkedlist", "1.0.0")]

    async def test_different_releases_fill_independently(self, make: MakeFiller) -> None:
        inner = Recording()
        inner.release.set()
        filler = make(inner, 10, 60)

        await asyncio.gather(filler.fill(PACKAGE, V1), filler.fill(PACKAGE, V2))

        assert sorted(inner.calls) == [("mona.linkedlist", "1.0.0"), ("mona.linkedlist", "2.0.0")]

    async def test_every_waiter_gets_the_failure(self, make: MakeFiller) -> None:
        inner = Recording()
        inner.failure = NotFound("mona.LinkedList 1.0.0 was not found")
        filler = make(inner, 10, 60)
        waiters = [asyncio.create_task(filler.fill(PACKAGE, V1)) for _ in range(3)]
        await asyncio.sleep(0.05)
        inner.release.set()

        results = await asyncio.gather(*waiters, return_exceptions=True)

        assert all(isinstance(result, NotFound) for result in results)
        assert len(inner.calls) == 1

    async def test_a_waiter_that_gives_up_does_not_stop_the_fill(self, make: MakeFiller) -> None:
        inner = Recording()
        filler = make(inner, 10, 60)
        impatient = asyncio.create_task(filler.fill(PACKAGE, V1))
        await asyncio.sleep(0.05)
        impatient.cancel()
        patient = asyncio.create_task(filler.fill(PACKAGE, V1))
        await asyncio.sleep(0.05)
        inner.release.set()

        await patient
        assert inner.calls == [("mona.linkedlist", "1.0.0")]

    async def test_clients_wait_no_longer_than_they_may(self, make: MakeFiller) -> None:
        inner = Recording()
        filler = make(inner, 0.1, 60)

        with pytest.raises(FillStillRunning):
            await filler.fill(PACKAGE, V1)

        inner.release.set()
        await filler.fill(PACKAGE, V1)  # joins or repeats; either way it completes
        assert inner.calls[0] == ("mona.linkedlist", "1.0.0")

    async def test_a_fill_past_its_deadline_is_stopped(self, make: MakeFiller) -> None:
        inner = Recording()
        filler = make(inner, 10, 0.1)

        with pytest.raises(FillTimedOut):
            await filler.fill(PACKAGE, V1)
