"""A stand-in for a public git host (github.com) that must never be contacted.

It listens on a loopback address of its own (127.0.0.2 by default; Linux
routes all of 127.0.0.0/8 to the loopback interface), so its repository URLs
differ from the mirror's (`127.0.0.1`) in SwiftPM's canonical form, which
ignores ports.
Every connection is counted and closed at once, before any byte is read: a
client that falls back to the public host fails, and the count shows it.
"""

from __future__ import annotations

import socket
import threading
from types import TracebackType


class PublicHost:
    def __init__(self, address: str = "127.0.0.2") -> None:
        self.address = address
        self._socket = socket.socket()
        self._socket.bind((address, 0))
        self._socket.listen(64)
        self._socket.settimeout(0.05)
        self.port: int = self._socket.getsockname()[1]
        self._connections = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="public-host", daemon=True)

    @property
    def host(self) -> str:
        return f"{self.address}:{self.port}"

    @property
    def connections(self) -> int:
        with self._lock:
            return self._connections

    def url(self, path: str, scheme: str = "https") -> str:
        return f"{scheme}://{self.host}/{path.lstrip('/')}"

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._connections += 1
            connection.close()

    def __enter__(self) -> PublicHost:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stopping.set()
        self._thread.join()
        self._socket.close()
