"""Upgrading a data directory of format 1: everything spm-proxy wrote before it recorded formats.

The keys of the current format live in `cache.embedded.index`; the ones
format 1 wrote differently live here, and only here:

- `v1/missing/<identity as spelt>[/<version>]`: "not found" memories
  (`{"detail": ...}`, expiring). Format 2 keeps them per identity key under
  `v2/missing/`. They are hints that expire within minutes, so they are
  dropped: the upstream is asked again.
- `v1/identifiers/<canonical location>`: a bare list of identities. Format 2
  stores `{"identities": [...], "fetched_at": t}`; a bare list becomes an
  answer fetched at 0, which is refreshed on first use while upstreams answer.
- `git/<upstream>/identities.json`: identity key -> repository URL, learned
  through `/identifiers`. Format 2 keeps the repository name per upstream in
  the index, never a URL (a URL rendered from a template may carry
  credentials). Entries of configured git upstreams whose URL template
  matches are adopted and the file is removed; the files of upstreams no
  longer configured are left alone (they are adopted if the upstream returns).

Release records (`v1/release/`), release lists (`v1/list/`), blobs, the
ledger and HTTP revalidation copies are the same in both formats.

Every step is idempotent: rerun after a crash, it finishes what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import structlog

from cache.embedded.index import DiskcacheIndex
from cache.embedded.kv import JsonStore
from cache.format import Change
from upstreams.model import InvalidIdentity, PackageId

MISSING = "v1/missing/"
IDENTIFIERS = "v1/identifiers/"
NAMES_FILE = "identities.json"

# upstream name -> (repository URL -> "scope/repository", or None when it does not match)
NameMatchers = Mapping[str, Callable[[str], str | None]]


class IndexUpgrade:
    def __init__(self, directory: Path) -> None:
        self._directory = directory

    async def plan(self) -> list[Change]:
        """Counted straight from diskcache's table, read-only: a check changes nothing."""
        if not (self._directory / "cache.db").is_file():
            return []
        missing, bare = await asyncio.to_thread(self._count)
        return _index_changes(missing, bare)

    async def apply(self, store: JsonStore) -> list[Change]:
        log = structlog.get_logger()
        await store.purge_expired()
        missing = bare = 0
        for key in await store.keys(MISSING):
            await store.delete(key)
            missing += 1
            log.debug("format_entry_upgraded", key=key, action="dropped")
        for key in await store.keys(IDENTIFIERS):
            value = await store.get(key)
            if isinstance(value, list):
                await store.set(key, {"identities": value, "fetched_at": 0.0})
                bare += 1
                log.debug("format_entry_upgraded", key=key, action="rewritten")
        return _index_changes(missing, bare)

    def _count(self) -> tuple[int, int]:
        database = self._directory / "cache.db"
        # `immutable` opens without creating the -wal/-shm files a read-only
        # WAL reader needs, when there is no write-ahead log to read anyway.
        mode = "ro" if database.with_name("cache.db-wal").exists() else "ro&immutable=1"
        with contextlib.closing(
            sqlite3.connect(f"file:{database}?mode={mode}", uri=True)
        ) as connection:
            rows = connection.execute(
                "SELECT key, value, filename FROM Cache WHERE key LIKE 'v1/%'"
            ).fetchall()
        missing = bare = 0
        for key, value, filename in rows:
            if not isinstance(key, str):
                continue
            if key.startswith(MISSING):
                missing += 1
            elif key.startswith(IDENTIFIERS):
                text = value if filename is None else (self._directory / filename).read_text()
                bare += isinstance(text, str) and text.lstrip().startswith("[")
        return missing, bare


def _index_changes(missing: int, bare: int) -> list[Change]:
    changes = []
    if missing:
        changes.append(Change("index", f"{missing} 'not found' memories of format 1 dropped"))
    if bare:
        changes.append(
            Change("index", f"{bare} /identifiers answers stored as bare lists rewritten")
        )
    return changes


class LearnedNames:
    """`git/<upstream>/identities.json` files, adopted into the index."""

    def __init__(self, data_dir: Path, matchers: NameMatchers) -> None:
        self._root = data_dir / "git"
        self._matchers = matchers

    async def plan(self) -> list[Change]:
        changes = []
        for upstream, path in await asyncio.to_thread(self._files):
            entries = await asyncio.to_thread(_read, path)
            changes.append(self._describe(upstream, path, len(entries)))
        return changes

    async def apply(self, index: DiskcacheIndex) -> list[Change]:
        log = structlog.get_logger()
        changes = []
        for upstream, path in await asyncio.to_thread(self._files):
            entries = await asyncio.to_thread(_read, path)
            match = self._matchers.get(upstream)
            if match is not None:
                for key, url in sorted(entries.items()):
                    name = match(url)
                    if name is None:
                        continue
                    with contextlib.suppress(InvalidIdentity):
                        await index.learn_repository(upstream, PackageId.parse(key), name)
                        log.debug(
                            "format_entry_upgraded", key=f"{upstream}/{key}", action="adopted"
                        )
                await asyncio.to_thread(path.unlink, missing_ok=True)
            changes.append(self._describe(upstream, path, len(entries)))
        return changes

    def _files(self) -> list[tuple[str, Path]]:
        if not self._root.is_dir():
            return []
        return sorted(
            (path.parent.name, path)
            for path in self._root.glob(f"*/{NAMES_FILE}")
            if path.is_file()
        )

    def _describe(self, upstream: str, path: Path, count: int) -> Change:
        where = f"git/{upstream}/{NAMES_FILE}"
        if upstream not in self._matchers:
            return Change(
                where,
                f"left as it is: no git upstream named {upstream!r} is configured "
                "(its learned names are adopted if it comes back)",
            )
        return Change(where, f"{count} learned repository names adopted into the index; removed")


def _read(path: Path) -> dict[str, str]:
    """identity key -> URL; a damaged file only costs re-learning, as in format 1."""
    try:
        raw: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
