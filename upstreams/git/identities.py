"""Identity -> repository URL mappings learned through `/identifiers`.

Persisted as JSON so a mapping learned once (`groue.GRDB_swift` ->
`.../GRDB.swift.git`) survives restarts. Blocking: call from a worker thread.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path

import structlog


class IdentityMap:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._entries: dict[str, str] | None = None

    def _load(self) -> dict[str, str]:
        if self._entries is None:
            try:
                raw = json.loads(self._path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                raw = {}
            except (OSError, ValueError):
                # A damaged map only costs re-learning; never refuse to start.
                structlog.get_logger().warning("identity_map_unreadable", path=str(self._path))
                raw = {}
            self._entries = {
                str(key): str(value)
                for key, value in (raw.items() if isinstance(raw, dict) else ())
            }
        return self._entries

    def get(self, key: str) -> str | None:
        with self._lock:
            return self._load().get(key)

    def remember(self, key: str, url: str) -> bool:
        """Record `key -> url` unless `key` is already bound; True when recorded.

        First learned wins: `mona/Linked_List` and `mona/Linked.List` both map
        to `mona.Linked_List`, and a later lookup must never re-point an
        identity at another repository.
        """
        with self._lock:
            entries = self._load()
            if key in entries:
                return False
            entries[key] = url
            self._write(entries)
            return True

    def _write(self, entries: dict[str, str]) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        # Temp file + fsync + rename: a crash leaves the old map or the new one.
        fd, tmp = tempfile.mkstemp(dir=self._path.parent, prefix=".identities-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(entries, handle, indent=2, sort_keys=True)
                handle.flush()
                os.fsync(handle.fileno())
            Path(tmp).replace(self._path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
