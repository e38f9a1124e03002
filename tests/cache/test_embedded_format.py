"""The data directory's format: recorded, upgraded in place from format 1, newer ones refused.

Format-1 entries are written here with the exact keys and values spm-proxy
wrote before formats were recorded (see `cache.embedded.upgrade_v1`); a data
directory actually made by that code is tested in `tests/upgrades`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from cache.embedded.format import EmbeddedFormat
from cache.embedded.index import DiskcacheIndex
from cache.embedded.kv import JsonStore
from cache.format import FormatRefused
from tests.contracts.index import LINKED_LIST, record
from upstreams.model import PackageId, Version


def _matcher(prefix: str) -> Callable[[str], str | None]:
    def name(url: str) -> str | None:
        if not url.startswith(prefix) or not url.endswith(".git"):
            return None
        return url.removeprefix(prefix).removesuffix(".git")

    return name


def _format(data_dir: Path) -> EmbeddedFormat:
    names = {"github": _matcher("https://github.com/")}
    return EmbeddedFormat(data_dir, names=names, software="spm-proxy test", clock=lambda: 0.0)


def _files(data_dir: Path) -> dict[str, str]:
    return {
        str(path.relative_to(data_dir)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(data_dir.rglob("*"))
        if path.is_file()
    }


async def _format_1(data_dir: Path) -> None:
    """What spm-proxy wrote before it recorded formats."""
    store = JsonStore(data_dir / "index")
    try:
        await store.set("v1/release/mona.linkedlist/1.0.0", record().to_json())
        await store.set("v1/missing/acme.Missing", {"detail": "no repository"}, expire=3600)
        await store.set("v1/missing/mona.LinkedList/9.9.9", {"detail": "no tag"}, expire=3600)
        await store.set("v1/missing/acme.Expired", {"detail": "gone"}, expire=0.001)
        await store.set("v1/identifiers/github.com/groue/grdb.swift", ["groue.GRDB_swift"])
    finally:
        store.close()
    github = data_dir / "git" / "github"
    github.mkdir(parents=True)
    (github / "identities.json").write_text(
        json.dumps(
            {
                "groue.grdb_swift": "https://github.com/groue/GRDB.swift.git",
                "acme.elsewhere": "https://git.example/acme/elsewhere.git",
            }
        )
    )
    retired = data_dir / "git" / "retired"
    retired.mkdir(parents=True)
    (retired / "identities.json").write_text('{"acme.old": "https://old.example/acme/old.git"}')
    await asyncio.sleep(0.01)  # acme.Expired expires


async def test_a_new_directory_records_the_current_format(tmp_path: Path) -> None:
    data_format = _format(tmp_path / "data")

    assert (await data_format.state()).found is None
    assert await data_format.plan() == []
    assert await data_format.upgrade() == []

    state = await data_format.state()
    assert (state.found, state.current, state.pending) == (2, 2, False)
    marker = json.loads((tmp_path / "data" / "format.json").read_text())
    assert marker == {"format": 2, "written_by": "spm-proxy test"}


async def test_a_check_says_what_would_change_and_changes_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    await _format_1(data_dir)
    before = _files(data_dir)

    data_format = _format(data_dir)
    state = await data_format.state()
    changes = await data_format.plan()

    assert (state.found, state.pending) == (1, True)
    assert [(change.what, change.detail) for change in changes] == [
        ("index", "3 'not found' memories of format 1 dropped"),
        ("index", "1 /identifiers answers stored as bare lists rewritten"),
        (
            "git/github/identities.json",
            "2 learned repository names adopted into the index; removed",
        ),
        (
            "git/retired/identities.json",
            "left as it is: no git upstream named 'retired' is configured "
            "(its learned names are adopted if it comes back)",
        ),
        ("format.json", "data format 2 recorded (was 1)"),
    ]
    assert _files(data_dir) == before  # not a byte changed, no file added


async def test_format_1_is_upgraded_in_place(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    await _format_1(data_dir)

    changes = await _format(data_dir).upgrade()

    assert changes[0].detail == "2 'not found' memories of format 1 dropped"  # one had expired
    store = JsonStore(data_dir / "index")
    try:
        index = DiskcacheIndex(store)
        assert await store.keys("v1/missing/") == []
        answer = await index.identities("github.com/groue/grdb.swift")
        assert answer is not None
        assert (list(answer.identities), answer.fetched_at) == (
            [PackageId("groue", "GRDB_swift")],
            0.0,
        )
        assert await index.repository("github", PackageId("groue", "GRDB_swift")) == (
            "groue/GRDB.swift"
        )
        # A URL the template does not produce teaches nothing.
        assert await index.repository("github", PackageId("acme", "elsewhere")) is None
        assert await index.release(LINKED_LIST, Version.parse("1.0.0")) == record()
    finally:
        store.close()
    assert not (data_dir / "git" / "github" / "identities.json").exists()
    assert (data_dir / "git" / "retired" / "identities.json").exists()
    marker = json.loads((data_dir / "format.json").read_text())
    assert (marker["format"], marker["upgraded_from"]) == (2, 1)
    assert await _format(data_dir).upgrade() == []


async def test_processes_starting_together_upgrade_once(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    await _format_1(data_dir)

    results = await asyncio.gather(*(_format(data_dir).upgrade() for _ in range(3)))

    assert sorted(len(changes) for changes in results) == [0, 0, 5]


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ('{"format": 3}', "holds data format 3, written by a newer spm-proxy"),
        ("not json", "does not say which data format"),
        ('{"format": "2"}', "does not say which data format"),
        ("\udcff not UTF-8", "does not say which data format"),
        ("[" * 100_000 + "]" * 100_000, "does not say which data format"),
    ],
)
async def test_a_directory_this_version_must_not_touch_is_refused(
    tmp_path: Path, marker: str, message: str
) -> None:
    data_dir = tmp_path / "data"
    await _format_1(data_dir)
    (data_dir / "format.json").write_bytes(marker.encode("utf-8", "surrogateescape"))
    before = _files(data_dir)

    for attempt in (_format(data_dir).state, _format(data_dir).plan, _format(data_dir).upgrade):
        with pytest.raises(FormatRefused, match=message):
            await attempt()

    assert _files(data_dir) == before
