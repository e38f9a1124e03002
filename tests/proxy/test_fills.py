"""The in-process coalescing filler against the filler contract, plus the pool."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from proxy.service.fills import CoalescedFiller, Coalescer, Filler, PooledFiller
from tests.contracts.filler import CoalescingFillerContract, MakeFiller, Recording
from upstreams.model import PackageId, Version


class TestCoalescedFiller(CoalescingFillerContract):
    @pytest.fixture
    async def make(self) -> AsyncIterator[MakeFiller]:
        made: list[Coalescer[None]] = []

        def make(inner: Filler, client_wait: float, deadline: float) -> Filler:
            coalescer = Coalescer[None](client_wait=client_wait, deadline=deadline, name="t")
            made.append(coalescer)
            return CoalescedFiller(inner, coalescer)

        yield make
        for coalescer in made:
            await coalescer.close()


async def test_the_pool_bounds_fills_running_at_once() -> None:
    running = 0
    most = 0

    class Counting:
        async def fill(self, package: PackageId, version: Version) -> None:
            nonlocal running, most
            running += 1
            most = max(most, running)
            await asyncio.sleep(0.02)
            running -= 1

    pooled = PooledFiller(Counting(), asyncio.Semaphore(2))

    await asyncio.gather(*(pooled.fill(PackageId("mona", "A"), Version(1, 0, n)) for n in range(8)))

    assert most == 2


async def test_closing_cancels_detached_fills() -> None:
    inner = Recording()
    coalescer = Coalescer[None](client_wait=0.05, deadline=60, name="t")
    filler = CoalescedFiller(inner, coalescer)
    with pytest.raises(Exception, match="still being fetched"):
        await filler.fill(PackageId("mona", "A"), Version(1, 0, 0))

    await coalescer.close()

    assert not [task for task in asyncio.all_tasks() if task.get_name().startswith("t ")]
