"""Coalesced, detached fills.

N concurrent requests for the same missing thing share one fill. The fill runs
as its own task, so a client that disconnects does not cancel work other
clients are waiting for; it has its own deadline; a semaphore bounds how much
upstream work runs at once; shutdown cancels whatever is still running.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import structlog

T = TypeVar("T")


class FillTimeout(Exception):
    def __init__(self, key: str, seconds: float) -> None:
        super().__init__(f"{key} did not finish within {seconds:g} s")
        self.key = key
        self.seconds = seconds


class FillGroup:
    def __init__(self, *, timeout: float, concurrency: int) -> None:
        self._timeout = timeout
        self._semaphore = asyncio.Semaphore(concurrency)
        self._tasks: dict[str, asyncio.Task[Any]] = {}
        self._log = structlog.get_logger()

    @property
    def running(self) -> int:
        return len(self._tasks)

    async def run(self, key: str, work: Callable[[], Awaitable[T]]) -> T:
        task = self._tasks.get(key)
        if task is None:
            task = asyncio.create_task(self._bounded(key, work), name=f"fill {key}")
            self._tasks[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
        else:
            self._log.debug("fill_joined", fill=key)
        # shield: cancelling one waiting request must not cancel the shared fill.
        result: T = await asyncio.shield(task)
        return result

    async def _bounded(self, key: str, work: Callable[[], Awaitable[T]]) -> T:
        async with self._semaphore:
            self._log.debug("fill_started", fill=key)
            try:
                async with asyncio.timeout(self._timeout):
                    return await work()
            except TimeoutError as exc:
                raise FillTimeout(key, self._timeout) from exc

    def _finished(self, key: str, task: asyncio.Task[Any]) -> None:
        if self._tasks.get(key) is task:
            del self._tasks[key]
        # Every waiter may have gone away; retrieve the outcome so asyncio does
        # not report an unobserved exception.
        if not task.cancelled():
            task.exception()

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
