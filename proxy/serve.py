"""`spm-proxy serve`: the registry server, in one process or in several.

With `server.workers = 1` the server runs in this process. With more, this
process supervises that many workers (`proxy.supervisor`), each a fresh
interpreter running `worker_main(READY_FD)` of this module: it reads
its settings as one JSON line on stdin, says `ready` on READY_FD once it
listens, and stops on SIGTERM or SIGINT, or when stdin ends because the
supervisor is gone.

Either way the start is one `server_started` event (host, port, pid, workers)
instead of aiohttp's banner, and a server that cannot start says why in a
`server_start_failed` event and exits with status 1.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable, Sequence

import structlog
from aiohttp import web

from proxy.app import create_app
from proxy.config import Settings
from proxy.logs import configure_logging
from proxy.runner import ProblemAppRunner
from proxy.supervisor import supervise

# How long in-flight requests (a large archive download) may take to finish
# once the server is asked to stop; aiohttp's own default.
SHUTDOWN_TIMEOUT_SECONDS = 60.0


def serve(settings: Settings) -> int:
    """Run `spm-proxy serve` until SIGTERM or SIGINT; the process exit status."""
    if settings.server.workers > 1:
        return supervise(settings, grace_seconds=SHUTDOWN_TIMEOUT_SECONDS + 10)
    configure_logging(settings.log.level, settings.log.format, capture=True)

    def started(port: int) -> None:
        structlog.get_logger().info(
            "server_started", host=settings.server.host, port=port, workers=1
        )

    status = asyncio.run(run_server(settings, reuse_port=False, ready=started))
    structlog.get_logger().info("server_stopped", exit_status=status)
    return status


async def run_server(
    settings: Settings,
    *,
    reuse_port: bool,
    ready: Callable[[int], None],
    stop_on_eof: int | None = None,
) -> int:
    """Serve until a stop signal (or EOF on `stop_on_eof`); 0, or 1 if it never started.

    `ready` is called with the bound port once connections are accepted.
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    # Installed before anything starts, so that a stop during start-up is an
    # orderly one too, and a second signal changes nothing.
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    if stop_on_eof is not None:
        _stop_on_eof(loop, stop_on_eof, stop)
    runner = ProblemAppRunner(
        create_app(settings),
        access_log=None,  # one structured line per request comes from our middleware
        shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS,
    )
    try:
        try:
            await runner.setup()
            site = web.TCPSite(
                runner, settings.server.host, settings.server.port, reuse_port=reuse_port
            )
            await site.start()
        except Exception as exc:  # noqa: BLE001 - any start failure is reported the same way
            # The port in use, a file that cannot be opened: the message says
            # it all. Anything else is a bug, and its traceback the lead.
            structlog.get_logger().error(
                "server_start_failed",
                host=settings.server.host,
                port=settings.server.port,
                error=str(exc),
                exc_info=not isinstance(exc, OSError),
            )
            return 1
        ready(runner.addresses[0][1])
        await stop.wait()
        return 0
    finally:
        await runner.cleanup()


def _stop_on_eof(loop: asyncio.AbstractEventLoop, fd: int, stop: asyncio.Event) -> None:
    def readable() -> None:
        try:
            data = os.read(fd, 4096)
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(fd)
            stop.set()

    loop.add_reader(fd, readable)


def _read_line(fd: int) -> bytes:
    line = bytearray()
    while not line.endswith(b"\n"):
        chunk = os.read(fd, 1)
        if not chunk:
            break
        line += chunk
    return bytes(line)


def worker_main(argv: Sequence[str]) -> int:
    """One worker under the supervisor: settings on stdin, readiness on argv[0]'s fd."""
    ready_fd = int(argv[0])
    settings = Settings.model_validate_json(_read_line(0))
    configure_logging(settings.log.level, settings.log.format, capture=True)

    def ready(_port: int) -> None:
        os.write(ready_fd, b"ready\n")
        os.close(ready_fd)

    return asyncio.run(run_server(settings, reuse_port=True, ready=ready, stop_on_eof=0))


if __name__ == "__main__":
    raise SystemExit(worker_main(sys.argv[1:]))
