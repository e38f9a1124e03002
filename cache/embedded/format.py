"""`EmbeddedFormat`: the format of a data directory, recorded in `format.json`.

- Format 1: every data directory written before formats were recorded (no
  `format.json`, but an index, ledger, blobs or mirrors).
- Format 2: release lists may carry what upstreams lost; "not found" memories
  per identity key; `/identifiers` answers with their fetch time; learned
  repository names in the index (`cache.embedded.upgrade_v1` says exactly
  what differs).

An upgrade holds an exclusive lock on `format.lock` (several workers or
commands starting at once upgrade once), runs steps that are each
idempotent, and records the new format last, through a temporary file,
fsync and rename: killed at any point, the directory still says format 1
and the next start runs the upgrade again, finishing what is left. The
ledger is never opened by an upgrade. A directory of a newer format is
refused before anything is opened.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import structlog

from cache.atomic import write_atomically
from cache.embedded.index import DiskcacheIndex
from cache.embedded.kv import JsonStore
from cache.embedded.upgrade_v1 import IndexUpgrade, LearnedNames, NameMatchers
from cache.format import Change, FormatRefused, FormatState
from upstreams.model import utc_timestamp

CURRENT = 2
MARKER = "format.json"
LOCK = "format.lock"
# Any of these without a `format.json`: a directory written by format 1.
_FORMAT_1_CONTENT = ("index", "ledger.sqlite3", "blobs", "git", "http-cache")


class EmbeddedFormat:
    def __init__(
        self,
        data_dir: Path,
        *,
        names: NameMatchers,
        software: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._dir = data_dir
        self._names = names
        self._software = software
        self._clock = clock

    async def state(self) -> FormatState:
        return await asyncio.to_thread(self._state)

    async def plan(self) -> list[Change]:
        state = await self.state()
        if not state.pending:
            return []
        changes = await IndexUpgrade(self._dir / "index").plan()
        changes += await LearnedNames(self._dir, self._names).plan()
        return [*changes, self._recorded(state)]

    async def upgrade(self) -> list[Change]:
        # Refused, or current (every start after the first), without taking the lock.
        if (await self.state()).found == CURRENT:
            return []
        async with self._locked():
            state = await self.state()
            if state.found == CURRENT:
                return []
            if state.found is None:
                await asyncio.to_thread(self._record, None)
                return []
            log = structlog.get_logger().bind(data_dir=str(self._dir))
            log.info("format_upgrade_started", found=state.found, current=CURRENT)
            changes = await self._steps()
            await asyncio.to_thread(self._record, state.found)
            changes.append(self._recorded(state))
            log.info("format_upgraded", found=state.found, current=CURRENT, changes=len(changes))
            return changes

    async def _steps(self) -> list[Change]:
        async with AsyncExitStack() as stack:
            store = JsonStore(self._dir / "index")
            stack.callback(store.close)
            changes = await IndexUpgrade(self._dir / "index").apply(store)
            changes += await LearnedNames(self._dir, self._names).apply(DiskcacheIndex(store))
        return changes

    def _recorded(self, state: FormatState) -> Change:
        return Change(MARKER, f"data format {CURRENT} recorded (was {state.found})")

    def _state(self) -> FormatState:
        marker = self._dir / MARKER
        try:
            text = marker.read_bytes()
        except FileNotFoundError:
            written = any((self._dir / name).exists() for name in _FORMAT_1_CONTENT)
            return FormatState(1 if written else None, CURRENT)
        except OSError as error:
            raise FormatRefused(f"cannot read {marker}: {error.strerror}") from error
        found = _format_of(text)
        if found is None:
            raise FormatRefused(
                f"{marker} does not say which data format this directory holds; "
                "refusing to touch it (restore it from a backup)"
            )
        if found > CURRENT:
            raise FormatRefused(
                f"{self._dir} holds data format {found}, written by a newer spm-proxy; "
                f"this version reads formats up to {CURRENT} and will not touch it "
                "(run the newer spm-proxy, or restore a backup taken before the upgrade)"
            )
        return FormatState(found, CURRENT)

    def _record(self, upgraded_from: int | None) -> None:
        record: dict[str, Any] = {"format": CURRENT, "written_by": self._software}
        if upgraded_from is not None:
            record["upgraded_from"] = upgraded_from
            record["upgraded_at"] = utc_timestamp(self._clock())
        self._dir.mkdir(parents=True, exist_ok=True)
        write_atomically(self._dir / MARKER, (json.dumps(record, indent=2) + "\n").encode())

    @asynccontextmanager
    async def _locked(self) -> AsyncIterator[None]:
        await asyncio.to_thread(self._dir.mkdir, parents=True, exist_ok=True)
        fd = await asyncio.to_thread(os.open, self._dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            # Blocks while another process upgrades; released when it is done or dies.
            await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def _format_of(text: bytes) -> int | None:
    # Whatever the file holds (not UTF-8, not JSON, nested past the parser's
    # depth), the answer is "unknown", never a traceback.
    try:
        found = json.loads(text.decode("utf-8")).get("format")
    except (ValueError, AttributeError, RecursionError):
        return None
    return found if isinstance(found, int) and not isinstance(found, bool) and found > 0 else None
