"""Fills: the `Filler` seam and the wrappers that give it behaviour.

A `Filler` makes one release available (afterwards the outcome is in the
index). Wrappers add what a bare fill lacks, each with the same shape:

- `PooledFiller`: at most N fills at once (a semaphore, the `builds` pool).
- `LeasedFiller`: one fill per release across processes (the workers of
  `serve --workers N`, a `warm` beside them): the lease holder fills, the
  others wait for its outcome (the shape a lease across replicas keeps).
- `CoalescedFiller`: N concurrent requests for one missing release share one
  detached fill with its own deadline; a waiter stops waiting after the
  client-facing deadline with `FillStillRunning`, while the fill goes on.

`Coalescer` is the shared engine, also used for release-list refreshes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Generic, Protocol, TypeVar

import structlog

from cache.blobs import BlobStore
from cache.index import Misses, Releases
from cache.leases import Leases
from proxy.service.errors import FillStillRunning, FillTimedOut, NotFound
from upstreams.model import PackageId, Version

T = TypeVar("T")


class Filler(Protocol):
    async def fill(self, package: PackageId, version: Version) -> None: ...


class Coalescer(Generic[T]):
    """One detached task per key; waiters share its outcome."""

    def __init__(self, *, client_wait: float, deadline: float, name: str) -> None:
        self._client_wait = client_wait
        self._deadline = deadline
        self._name = name
        self._tasks: dict[str, asyncio.Task[T]] = {}
        self._log = structlog.get_logger()

    def start(self, key: str, what: str, work: Callable[[], Awaitable[T]]) -> asyncio.Task[T]:
        """The running task for `key`, started now if none runs; nobody waits for it."""
        task = self._tasks.get(key)
        if task is None:
            self._log.debug("work_started", pool=self._name, work=key)
            task = asyncio.create_task(self._bounded(what, work), name=f"{self._name} {key}")
            self._tasks[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
        else:
            self._log.debug("fill_joined", fill=key)
        return task

    async def run(self, key: str, what: str, work: Callable[[], Awaitable[T]]) -> T:
        task = self.start(key, what, work)
        try:
            # shield: a waiter that gives up or disconnects must not cancel the
            # shared fill that other clients (and the next retry) rely on.
            async with asyncio.timeout(self._client_wait):
                return await asyncio.shield(task)
        except TimeoutError:
            if task.done():
                raise
            self._log.warning(
                "fill_still_running", fill=key, waited_seconds=self._client_wait, pool=self._name
            )
            raise FillStillRunning(what, self._client_wait) from None

    async def _bounded(self, what: str, work: Callable[[], Awaitable[T]]) -> T:
        try:
            async with asyncio.timeout(self._deadline):
                return await work()
        except TimeoutError:
            raise FillTimedOut(what, self._deadline) from None

    def _finished(self, key: str, task: asyncio.Task[Any]) -> None:
        if self._tasks.get(key) is task:
            del self._tasks[key]
        # Every waiter may have gone away; retrieve the outcome so asyncio does
        # not report an unobserved exception.
        if not task.cancelled():
            task.exception()

    async def close(self) -> None:
        """Cancel whatever still runs and wait for it to stop (shutdown)."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()


class PooledFiller:
    def __init__(self, inner: Filler, pool: asyncio.Semaphore) -> None:
        self._inner = inner
        self._pool = pool

    async def fill(self, package: PackageId, version: Version) -> None:
        async with self._pool:
            await self._inner.fill(package, version)


class CoalescedFiller:
    def __init__(self, inner: Filler, coalescer: Coalescer[None]) -> None:
        self._inner = inner
        self._coalescer = coalescer

    async def fill(self, package: PackageId, version: Version) -> None:
        await self._coalescer.run(
            f"{package.key}@{version}",
            f"{package} {version}",
            lambda: self._inner.fill(package, version),
        )


class LeasedFiller:
    def __init__(
        self,
        inner: Filler,
        leases: Leases,
        *,
        releases: Releases,
        blobs: BlobStore,
        misses: Misses,
        ttl: float,
        poll: float = 0.1,
    ) -> None:
        self._inner = inner
        self._leases = leases
        self._releases = releases
        self._blobs = blobs
        self._misses = misses
        self._ttl = ttl
        self._poll = poll

    async def fill(self, package: PackageId, version: Version) -> None:
        key = f"fill {package.key}@{version}"
        waiting = False
        while True:
            lease = await self._leases.acquire(key, self._ttl)
            if lease is not None:
                try:
                    # Checked again under the lease: the holder before us may
                    # have just filled it.
                    if not await self._servable(package, version):
                        await self._inner.fill(package, version)
                finally:
                    await self._leases.release(lease)
                return
            if not waiting:
                structlog.get_logger().debug("fill_held_elsewhere", fill=key)
                waiting = True
            await asyncio.sleep(self._poll)
            if await self._servable(package, version):
                return
            if (detail := await self._misses.missing(package, version)) is not None:
                raise NotFound(detail)

    async def _servable(self, package: PackageId, version: Version) -> bool:
        record = await self._releases.release(package, version)
        if record is None:
            return False
        for digest in record.resources().values():
            if await self._blobs.stat(digest) is None:
                return False
        return True
