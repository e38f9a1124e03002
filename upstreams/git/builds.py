"""A pool of build processes: the git upstream's CPU-heavy work, off the serving process.

Receiving a pack (inflating and hashing every object), walking trees and
writing zip archives are Python code that holds the interpreter lock most of
the time; in threads of the serving process they made cached requests wait
behind them. So the git upstream runs them here, in processes of their own:

- created on first use and shut down by `close()`; started with the `spawn`
  method, a fresh interpreter that inherits nothing of the server (its event
  loop, sockets, locks and threads, which `fork` would copy mid-use);
- jobs are module-level functions taking and returning plain values (paths,
  strings, the records of `upstreams.model`); the caller keeps what cannot
  cross (a mirror's in-process lock, the archive sink);
- a build process runs at a lower CPU priority (nice 10): when cores are
  short, the serving process comes first (see setpriority(2));
- it ends when the process that started it ends, `kill -9` included: a thread
  waits on the parent's sentinel and exits;
- it writes nothing itself: the structlog events of a job are collected and
  logged by the serving process when the job ends (with `build_pid`), in its
  format and with its filtering, so every line still leaves through one writer;
- a job's exception is re-raised in the serving process; one that cannot be
  carried across (pickled) arrives as a RuntimeError naming it. A job whose
  process died (killed, out of memory) raises `BuildProcessDied`, and the
  pool is replaced for the next job.
"""

from __future__ import annotations

import asyncio
import functools
import multiprocessing
import multiprocessing.connection
import os
import pickle
import threading
import traceback
from collections.abc import Callable, MutableMapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, NoReturn, ParamSpec, TypeVar

import structlog

P = ParamSpec("P")
T = TypeVar("T")

# How much lower than the server a build process runs (nice(2) increment).
NICENESS = 10
# Build processes are replaced after this many jobs each, so that memory a
# large build fragmented is given back to the system.
JOBS_PER_PROCESS = 100
_PLAIN = (str, int, float, bool, type(None))

# In a build process: the events of the job running now.
_events: list[dict[str, Any]] = []


class BuildProcessDied(Exception):
    """The build process running a job ended before the job did (killed, out
    of memory). Only that job is lost: the next one gets a new process."""


@dataclass(frozen=True, slots=True)
class _Outcome:
    value: Any = None
    error: BaseException | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    pid: int = 0


def _collect(logger: Any, method: str, event: MutableMapping[str, Any]) -> NoReturn:
    _events.append({"level": method, **event})
    raise structlog.DropEvent


def _watch_parent() -> None:
    parent = multiprocessing.parent_process()
    if parent is not None:
        multiprocessing.connection.wait([parent.sentinel])
    os._exit(1)


def _initialize(niceness: int) -> None:
    os.nice(niceness)
    structlog.configure(processors=[_collect], cache_logger_on_first_use=False)
    threading.Thread(target=_watch_parent, name="parent-watch", daemon=True).start()


def _portable(error: BaseException) -> BaseException:
    """`error` with the build process's traceback as a note, or, if it cannot be
    pickled, a RuntimeError saying what it was."""
    error.add_note("".join(traceback.format_exception(error)).rstrip())
    try:
        pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes, just made
    except Exception:  # noqa: BLE001 - any failure to cross means: describe it instead
        return RuntimeError(f"{type(error).__name__}: {error}\n{error.__notes__[-1]}")
    return error


def _run(function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Outcome:
    """A job, in a build process."""
    _events.clear()
    try:
        value = function(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - re-raised in the serving process
        return _Outcome(error=_portable(exc), events=_plain(_events), pid=os.getpid())
    return _Outcome(value, events=_plain(_events), pid=os.getpid())


def _plain(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {key: value if isinstance(value, _PLAIN) else str(value) for key, value in event.items()}
        for event in events
    ]


def _relay(events: list[dict[str, Any]], pid: int) -> None:
    log = structlog.get_logger().bind(build_pid=pid)
    for event in events:
        fields = dict(event)
        level = fields.pop("level", "info")
        name = fields.pop("event", "build_event")
        method = level if level in {"debug", "info", "warning", "error", "critical"} else "info"
        getattr(log, method)(name, **fields)


def usable_cores() -> int:
    """The cores this process may run on."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, usable or 1)


class BuildPool:
    def __init__(self, processes: int, jobs_per_process: int = JOBS_PER_PROCESS) -> None:
        # More processes than cores would not build faster: each build already
        # deflates on several threads. Two at least, so that a fetch waiting on
        # the network does not hold up every build.
        self._processes = max(1, min(processes, max(2, usable_cores())))
        self._jobs_per_pool = self._processes * jobs_per_process
        self._jobs = 0
        self._executor: ProcessPoolExecutor | None = None
        # Executors that finish their last jobs before they stop.
        self._retiring: dict[asyncio.Task[None], ProcessPoolExecutor] = {}

    def _pool(self) -> ProcessPoolExecutor:
        # Recycled whole, by starting a new executor and letting the old one
        # finish what it was given. Not with `max_tasks_per_child`: with a
        # backlog, CPython up to 3.15.0b3 may not replace a process that
        # reached its limit, and the queued jobs then wait forever (CPython
        # issue gh-115634).
        if self._executor is not None and self._jobs >= self._jobs_per_pool:
            retiring = asyncio.create_task(asyncio.to_thread(self._executor.shutdown, wait=True))
            self._retiring[retiring] = self._executor
            retiring.add_done_callback(self._retiring.pop)
            self._executor = None
        if self._executor is None:
            self._jobs = 0
            self._executor = ProcessPoolExecutor(
                self._processes,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_initialize,
                initargs=(NICENESS,),
            )
        self._jobs += 1
        return self._executor

    async def run(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`function(*args, **kwargs)` in a build process; its log events are logged here."""
        executor = self._pool()
        job = functools.partial(_run, function, args, kwargs)
        try:
            outcome = await asyncio.get_running_loop().run_in_executor(executor, job)
        except BrokenProcessPool as exc:
            # A build process died: this job is lost, the next one gets a new pool.
            if self._executor is executor:
                self._executor = None
                executor.shutdown(wait=False, cancel_futures=True)
            raise BuildProcessDied(str(exc)) from exc
        _relay(outcome.events, outcome.pid)
        if outcome.error is not None:
            raise outcome.error
        value: T = outcome.value
        return value

    async def close(self) -> None:
        """Let running jobs end, drop queued ones, and stop the processes."""
        executor, self._executor = self._executor, None
        for retired in self._retiring.values():
            retired.shutdown(wait=False, cancel_futures=True)
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)
        await asyncio.gather(*self._retiring)
