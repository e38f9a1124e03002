"""Several server processes under one parent: restarts, halts, stops, whole log lines.

The parent starts `server.workers` workers (`proxy.serve.worker_main`), which
all bind the same port with SO_REUSEPORT, and then:

- restarts a worker that dies, after a back-off that doubles with each death
  in quick succession (0.5 s up to 30 s) and starts over once a worker has
  served for a minute; `worker_exited` and `worker_restarted` carry the exit
  status or the signal;
- halts with exit status 1 when a worker dies before it listens
  (`worker_start_failed`: the port is taken, the data directory broke): a
  restart would fail the same way, and looping would hide it;
- on SIGTERM or SIGINT stops every worker with SIGTERM (in-flight requests
  finish), kills any still running after the grace period, and exits 0 when
  all stopped by themselves;
- relays each worker's stdout and stderr, one pipe per worker, to its own
  stderr. The parent is the only writer of that stderr, so lines of any length
  stay whole, where concurrent writers to one pipe are atomic only up to
  PIPE_BUF bytes (POSIX `write()`). In JSON mode a line that is not a JSON
  object (an interpreter's fatal error, say) becomes a `worker_output` record.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from proxy.config import Settings
from proxy.logs import Format, configure_logging, use_json, write_whole

# A worker runs `proxy.serve.worker_main` from `-c` rather than as `-m
# proxy.serve`: the build processes a worker spawns then start without
# importing the server (spawn imports the parent's main module, unless it
# comes from `-c`; see multiprocessing's "Safe importing of main module").
WORKER_COMMAND = "import sys, proxy.serve; sys.exit(proxy.serve.worker_main(sys.argv[1:]))"
RESTART_FIRST_SECONDS = 0.5
RESTART_MAX_SECONDS = 30.0
# A worker that served this long died of something new: restart it promptly.
STABLE_SECONDS = 60.0
# A longer line is cut (each piece a `worker_output` record) rather than held
# in memory whole; no record of ours comes near.
MAX_LINE_BYTES = 1 << 20
_READ_BYTES = 1 << 16
_DRAIN_SECONDS = 5.0


def supervise(settings: Settings, *, grace_seconds: float) -> int:
    """Run `settings.server.workers` workers until SIGTERM/SIGINT; the exit status."""
    # Workers write to pipes, where `auto` would always mean JSON: decide by
    # what the parent writes to.
    fmt: Format = "json" if use_json(settings.log.format) else "console"
    settings = settings.model_copy(update={"log": settings.log.model_copy(update={"format": fmt})})
    configure_logging(settings.log.level, fmt, capture=True)
    return asyncio.run(Supervisor(settings, grace_seconds).run())


def exit_fields(returncode: int) -> dict[str, Any]:
    """How a process ended, for a log record: its exit status or its signal."""
    if returncode < 0:
        try:
            return {"signal": signal.Signals(-returncode).name}
        except ValueError:
            return {"signal": str(-returncode)}
    return {"exit_status": returncode}


def _is_record(line: bytes) -> bool:
    return line.startswith(b"{") and line.endswith(b"}")


def _send(process: asyncio.subprocess.Process, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signum)


@dataclass
class _Worker:
    process: asyncio.subprocess.Process
    ready: asyncio.StreamReader
    ready_pipe: asyncio.BaseTransport


class Supervisor:
    def __init__(self, settings: Settings, grace_seconds: float) -> None:
        self._settings = settings
        self._payload = settings.model_dump_json().encode() + b"\n"
        self._json = settings.log.format == "json"
        self._grace = grace_seconds
        self._log = structlog.get_logger()
        self._stopping = asyncio.Event()
        self._live: dict[int, asyncio.subprocess.Process] = {}
        self._ever_ready: set[int] = set()
        self._relays: set[asyncio.Task[None]] = set()
        self._status = 0

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self._stop, signum)
        slots = [
            asyncio.create_task(self._keep(slot)) for slot in range(self._settings.server.workers)
        ]
        await self._stopping.wait()
        await self._stop_workers(slots)
        if self._relays:
            # Output a worker wrote just before it stopped; a grandchild still
            # holding the pipe must not keep the parent alive.
            _, stuck = await asyncio.wait(self._relays, timeout=_DRAIN_SECONDS)
            for relay in stuck:
                relay.cancel()
        self._log.info("server_stopped", exit_status=self._status)
        return self._status

    def _stop(self, signum: int) -> None:
        if not self._stopping.is_set():
            self._log.info("server_stopping", signal=signal.Signals(signum).name)
            self._stopping.set()

    def _halt(self) -> None:
        self._status = 1
        self._stopping.set()

    async def _stop_workers(self, slots: Sequence[asyncio.Task[None]]) -> None:
        for process in list(self._live.values()):
            _send(process, signal.SIGTERM)
        _, late = await asyncio.wait(slots, timeout=self._grace)
        if late:
            for slot, process in list(self._live.items()):
                self._log.error(
                    "worker_killed", worker=slot, worker_pid=process.pid, grace_seconds=self._grace
                )
                _send(process, signal.SIGKILL)
                self._status = 1
            await asyncio.wait(late)

    async def _keep(self, slot: int) -> None:
        try:
            await self._keep_alive(slot)
        except Exception:  # noqa: BLE001 - a supervisor that cannot supervise must not hang
            self._log.exception("supervision_failed", worker=slot)
            self._halt()

    async def _keep_alive(self, slot: int) -> None:
        loop = asyncio.get_running_loop()
        quick_deaths = 0
        previous: dict[str, Any] = {}
        while not self._stopping.is_set():
            worker = await self._spawn(slot)
            pid = worker.process.pid
            started = loop.time()
            ready = await self._became_ready(worker)
            if ready and previous:
                # Logged once the replacement listens: restarted means serving again.
                self._log.warning("worker_restarted", worker=slot, worker_pid=pid, **previous)
            if ready:
                self._announce(slot)
            returncode = await worker.process.wait()
            del self._live[slot]
            if self._stopping.is_set():
                return
            if not ready:
                self._log.error(
                    "worker_start_failed", worker=slot, worker_pid=pid, **exit_fields(returncode)
                )
                self._halt()
                return
            quick_deaths = 1 if loop.time() - started >= STABLE_SECONDS else quick_deaths + 1
            delay = min(RESTART_FIRST_SECONDS * 2 ** (quick_deaths - 1), RESTART_MAX_SECONDS)
            ended = exit_fields(returncode)
            self._log.error(
                "worker_exited", worker=slot, worker_pid=pid, restart_in_seconds=delay, **ended
            )
            previous = {"previous_pid": pid, **ended}
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)

    async def _spawn(self, slot: int) -> _Worker:
        loop = asyncio.get_running_loop()
        ready_read, ready_write = os.pipe()
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                WORKER_COMMAND,
                str(ready_write),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                pass_fds=(ready_write,),
                # A process group of its own: a terminal's Ctrl-C reaches only
                # the parent, which then stops the workers in order.
                process_group=0,
            )
        except BaseException:
            os.close(ready_read)
            raise
        finally:
            os.close(ready_write)
        self._live[slot] = process
        if self._stopping.is_set():
            _send(process, signal.SIGTERM)
        assert process.stdin is not None
        assert process.stdout is not None
        # Never closed here: the worker stops when its stdin ends, which is
        # when this process is gone, however it went.
        process.stdin.write(self._payload)
        relay = asyncio.create_task(self._relay(process.stdout, process.pid))
        self._relays.add(relay)
        relay.add_done_callback(self._relays.discard)
        ready = asyncio.StreamReader()
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(ready), os.fdopen(ready_read, "rb", buffering=0)
        )
        return _Worker(process, ready, transport)

    async def _became_ready(self, worker: _Worker) -> bool:
        said = asyncio.create_task(worker.ready.readline())
        exited = asyncio.create_task(worker.process.wait())
        try:
            await asyncio.wait({said, exited}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            said.cancel()
            exited.cancel()
            worker.ready_pipe.close()
        answered = said.done() and not said.cancelled() and said.exception() is None
        return answered and said.result() == b"ready\n"

    def _announce(self, slot: int) -> None:
        workers = self._settings.server.workers
        if slot in self._ever_ready:
            return
        self._ever_ready.add(slot)
        if len(self._ever_ready) == workers and not self._stopping.is_set():
            server = self._settings.server
            self._log.info("server_started", host=server.host, port=server.port, workers=workers)

    async def _relay(self, stream: asyncio.StreamReader, pid: int) -> None:
        pending = bytearray()
        while chunk := await stream.read(_READ_BYTES):
            pending += chunk
            newline = chunk.rfind(b"\n")
            if newline >= 0:
                end = len(pending) - len(chunk) + newline + 1
                self._emit(bytes(pending[:end]), pid)
                del pending[:end]
            elif len(pending) > MAX_LINE_BYTES:
                self._emit(bytes(pending) + b"\n", pid)
                pending.clear()
        if pending:
            self._emit(bytes(pending) + b"\n", pid)

    def _emit(self, block: bytes, pid: int) -> None:
        """Write complete lines from one worker; `block` ends with a newline."""
        if self._json:
            lines = block.split(b"\n")[:-1]
            if not all(_is_record(line) for line in lines):
                for line in lines:
                    if _is_record(line):
                        write_whole(2, line + b"\n")
                    elif line.strip():
                        text = line.decode("utf-8", "replace")
                        self._log.warning("worker_output", worker_pid=pid, line=text)
                return
        write_whole(2, block)
