"""A TCP relay that makes a loopback server look like a public host across the internet.

It listens on a loopback address of its own (127.0.0.2, so its URLs differ
from the server's in SwiftPM's canonical form, which ignores ports) and
forwards every connection to the target, with `delay` seconds added each
way (a 40 ms round trip by default) and each direction shaped to `rate`
bits per second shared by all connections (50 Mbit/s by default), the way a
CI machine reaches github.com. Bytes are queued behind the link like a
router's buffer: a chunk leaves once the link has carried everything before
it, and arrives `delay` later. Connections and bytes are counted.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import Self

from tests.bench.common import Managed

ADDRESS = "127.0.0.2"
_CHUNK = 64 * 1024


@dataclass(slots=True)
class _Link:
    """One direction of the shaped link: when it is free again."""

    rate: float  # bytes per second
    delay: float
    free_at: float = 0.0

    def arrival(self, size: int, now: float) -> float:
        start = max(now, self.free_at)
        self.free_at = start + size / self.rate
        return self.free_at + self.delay


class Relay(Managed):
    def __init__(
        self,
        target_host: str,
        target_port: int,
        *,
        delay: float = 0.020,
        rate_bits: float = 50e6,
    ) -> None:
        self.target = (target_host, target_port)
        self._up = _Link(rate_bits / 8, delay)
        self._down = _Link(rate_bits / 8, delay)
        self.connections = 0
        self.bytes_up = 0
        self.bytes_down = 0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="relay", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{ADDRESS}:{self.port}"

    def start(self) -> Self:
        self._thread.start()
        started = asyncio.run_coroutine_threadsafe(self._listen(), self._loop)
        self.port = started.result(timeout=10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    async def _listen(self) -> int:
        self._server = await asyncio.start_server(self._serve, ADDRESS, 0)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.connections += 1
        # Connecting takes a round trip on the shaped link too.
        await asyncio.sleep(2 * self._up.delay)
        try:
            server_r, server_w = await asyncio.open_connection(*self.target)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(
            self._pipe(client_r, server_w, self._up, "bytes_up"),
            self._pipe(server_r, client_w, self._down, "bytes_down"),
            return_exceptions=True,
        )
        for writer in (server_w, client_w):
            writer.close()

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        link: _Link,
        counter: str,
    ) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        deliver = asyncio.ensure_future(self._deliver(queue, writer))
        try:
            while chunk := await reader.read(_CHUNK):
                setattr(self, counter, getattr(self, counter) + len(chunk))
                await queue.put((link.arrival(len(chunk), self._loop.time()), chunk))
        finally:
            await queue.put((link.arrival(0, self._loop.time()), b""))
            await deliver

    async def _deliver(
        self, queue: asyncio.Queue[tuple[float, bytes]], writer: asyncio.StreamWriter
    ) -> None:
        try:
            while True:
                at, chunk = await queue.get()
                await asyncio.sleep(max(0.0, at - self._loop.time()))
                if not chunk:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(chunk)
                await writer.drain()
        except OSError:
            return
