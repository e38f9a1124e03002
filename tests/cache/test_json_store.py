"""`JsonStore`: JSON values under string keys, on a real diskcache directory."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from cache.embedded.kv import JsonStore


@pytest.fixture
async def index(tmp_path: Path) -> AsyncIterator[JsonStore]:
    index = JsonStore(tmp_path / "index")
    yield index
    index.close()


@pytest.mark.parametrize(
    "value",
    [
        {"releases": {"1.0.0": {"url": "https://example/1.0.0"}}, "etag": None},
        ["1.0.0", "1.1.0"],
        "not-found",
        42,
        1.5,
        True,
        False,
        {"unicode": "Zürich ✓"},
    ],
)
async def test_json_values_round_trip(index: JsonStore, value: Any) -> None:
    await index.set("releases:mona.linkedlist", value)

    assert await index.get("releases:mona.linkedlist") == value


async def test_absent_key_is_none(index: JsonStore) -> None:
    assert await index.get("releases:unknown.package") is None


async def test_set_overwrites(index: JsonStore) -> None:
    await index.set("k", {"v": 1})
    await index.set("k", {"v": 2})

    assert await index.get("k") == {"v": 2}


async def test_delete(index: JsonStore) -> None:
    await index.set("k", "v")

    await index.delete("k")
    await index.delete("k")

    assert await index.get("k") is None


async def test_values_expire(index: JsonStore) -> None:
    await index.set("negative:mona.missing", "not-found", expire=0.05)
    await index.set("releases:mona.linkedlist", ["1.0.0"], expire=60)
    assert await index.get("negative:mona.missing") == "not-found"

    await asyncio.sleep(0.1)

    assert await index.get("negative:mona.missing") is None
    assert await index.get("releases:mona.linkedlist") == ["1.0.0"]
    assert await index.keys("") == ["releases:mona.linkedlist"]


async def test_keys_by_prefix_are_sorted(index: JsonStore) -> None:
    for key in ("releases:zed.tools", "negative:a.b", "releases:apple.nio", "releasesx"):
        await index.set(key, 1)

    assert await index.keys("releases:") == ["releases:apple.nio", "releases:zed.tools"]
    assert await index.keys("nothing:") == []
    assert len(await index.keys("")) == 4


@pytest.mark.parametrize("value", [{1, 2}, b"bytes", object(), math.nan, math.inf])
async def test_values_that_are_not_json_are_refused(index: JsonStore, value: Any) -> None:
    with pytest.raises((TypeError, ValueError)):
        await index.set("k", value)

    assert await index.get("k") is None


async def test_values_survive_close_and_reopen(tmp_path: Path) -> None:
    first = JsonStore(tmp_path)
    await first.set("releases:mona.linkedlist", {"1.0.0": {}})
    first.close()

    reopened = JsonStore(tmp_path)
    try:
        assert await reopened.get("releases:mona.linkedlist") == {"1.0.0": {}}
    finally:
        reopened.close()


async def test_two_open_indexes_share_one_directory(tmp_path: Path) -> None:
    # As several server processes sharing one data directory would.
    writer, reader = JsonStore(tmp_path), JsonStore(tmp_path)
    try:
        await writer.set("k", ["shared"])
        assert await reader.get("k") == ["shared"]
        await reader.delete("k")
        assert await writer.get("k") is None
    finally:
        writer.close()
        reader.close()


async def test_values_are_stored_as_json_text_not_pickle(tmp_path: Path) -> None:
    small = {"releases": ["1.0.0"]}
    large = {"blob": "x" * 100_000}  # big enough for diskcache to keep it in a file
    index = JsonStore(tmp_path)
    await index.set("small", small)
    await index.set("large", large)
    index.close()

    with contextlib.closing(sqlite3.connect(tmp_path / "cache.db")) as connection:
        rows = dict(
            connection.execute("SELECT key, value FROM Cache WHERE key IN ('small', 'large')")
        )
        filenames = dict(
            connection.execute("SELECT key, filename FROM Cache WHERE key IN ('small', 'large')")
        )
    assert isinstance(rows["small"], str)
    assert json.loads(rows["small"]) == small
    assert rows["large"] is None
    large_text = (tmp_path / filenames["large"]).read_text(encoding="utf-8")
    assert json.loads(large_text) == large


async def test_close_is_idempotent_and_final(tmp_path: Path) -> None:
    index = JsonStore(tmp_path)
    await index.set("k", 1)
    index.close()
    index.close()

    with pytest.raises(RuntimeError):
        await index.get("k")


async def test_close_without_use(tmp_path: Path) -> None:
    JsonStore(tmp_path / "never-used").close()


async def test_entries_are_never_culled_and_expired_ones_can_be_purged(tmp_path: Path) -> None:
    index = JsonStore(tmp_path / "index")
    try:
        await index.set("v1/release/mona.x/1.0.0", {"kept": True})
        await index.set("v1/missing/mona.y", {"detail": "gone"}, expire=0.01)
        await asyncio.sleep(0.05)
        assert await index.purge_expired() == 1
        assert await index.get("v1/release/mona.x/1.0.0") == {"kept": True}
    finally:
        index.close()
    with contextlib.closing(sqlite3.connect(tmp_path / "index" / "cache.db")) as db:
        [(policy,)] = db.execute("SELECT value FROM Settings WHERE key = 'eviction_policy'")
    assert policy == "none"


async def test_add_keeps_the_first_value(tmp_path: Path) -> None:
    first, second = JsonStore(tmp_path), JsonStore(tmp_path)
    try:
        assert await first.add("k", "first") == "first"
        assert await second.add("k", "second") == "first"
        assert await second.get("k") == "first"
    finally:
        first.close()
        second.close()
