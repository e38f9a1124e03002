"""Upgrades keep the data: a data directory made by spm-proxy before the core reshape
(`format1/`, built by `make_format1.py` from this repository's history) opened by
today's code. Every release it held is served with the same bytes, `verify` is
clean, the ledger is never rewritten, an upgrade killed with SIGKILL half-way
resumes, and a directory of a newer format is refused with exit status 2.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

from cache.embedded.index import DiskcacheIndex
from cache.embedded.kv import JsonStore
from proxy.app import create_app
from proxy.config import load_settings
from tests.support.http import JSON_ACCEPT, SWIFT_ACCEPT, ZIP_ACCEPT, Client, ClientFactory
from tests.support.serving import SPM_PROXY, clean_environment, free_port
from upstreams.model import PackageId

FIXTURE = Path(__file__).resolve().parent / "format1"
SERVED: dict[str, Any] = json.loads((FIXTURE / "served.json").read_text())


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    target = tmp_path / "data"
    with tarfile.open(FIXTURE / "data.tar.gz") as tar:
        tar.extractall(target, filter="data")
    return target


@pytest.fixture
def config(tmp_path: Path, data_dir: Path) -> Path:
    """The upstream the fixture was made with, now gone: only what is held can answer."""
    path = tmp_path / "spm-proxy.toml"
    path.write_text(
        f'[server]\ndata_dir = "{data_dir}"\n'
        '[[upstreams]]\nname = "loopback-git"\ntype = "git"\n'
        f'url_template = "http://127.0.0.1:{free_port()}/{{scope}}/{{name}}.git"\n'
        "read_timeout_seconds = 2\n"
    )
    return path


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SPM_PROXY, *args],
        cwd=cwd,
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _files(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _ledger_rows(data_dir: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(f"file:{data_dir / 'ledger.sqlite3'}?mode=ro", uri=True) as db:
        return db.execute("SELECT * FROM ledger ORDER BY identity, version, resource").fetchall()


async def _assert_served_as_before(client: Client) -> None:
    for identity, versions in SERVED["lists"].items():
        scope, name = identity.split(".")
        listed = await client.get(f"/{scope}/{name}", headers=JSON_ACCEPT)
        assert listed.status == 200, await listed.text()
        assert list((await listed.json())["releases"]) == versions
    for release in SERVED["releases"]:
        scope, name = release["identity"].split(".")
        path = f"/{scope}/{name}/{release['version']}"
        metadata = await (await client.get(path, headers=JSON_ACCEPT)).json()
        assert metadata["resources"] == release["resources"]
        assert metadata["metadata"] == release["metadata"]
        assert metadata["publishedAt"] == release["publishedAt"]
        archive = await client.get(f"{path}.zip", headers=ZIP_ACCEPT)
        assert hashlib.sha256(await archive.read()).hexdigest() == release["archive"]
        for filename, checksum in release["manifests"].items():
            query = ""
            if filename != "Package.swift":
                query = "?swift-version=" + filename.removeprefix("Package@swift-")[:-6] + ".0"
            manifest = await client.get(f"{path}/Package.swift{query}", headers=SWIFT_ACCEPT)
            assert hashlib.sha256(await manifest.read()).hexdigest() == checksum, filename
    for repository, identities in SERVED["identifiers"].items():
        url = f"http://127.0.0.1:1/{repository}"
        answer = await client.get(f"/identifiers?url={url}", headers=JSON_ACCEPT)
        assert (await answer.json())["identifiers"] == identities


async def test_a_check_says_what_would_change_and_changes_nothing(
    tmp_path: Path, data_dir: Path, config: Path
) -> None:
    before = _files(data_dir)

    result = _run("migrate", "--check", "--config", str(config), cwd=tmp_path)

    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == [
        f"data directory {data_dir}: format 1; this version writes 2; an upgrade would change:",
        "  index: 2 'not found' memories of format 1 dropped",
        "  index: 1 /identifiers answers stored as bare lists rewritten",
        "  git/loopback-git/identities.json: 3 learned repository names adopted into the "
        "index; removed",
        "  format.json: data format 2 recorded (was 1)",
    ]
    assert _files(data_dir) == before


async def test_every_release_is_served_with_the_same_bytes_and_verify_is_clean(
    tmp_path: Path, data_dir: Path, config: Path, aiohttp_client: ClientFactory
) -> None:
    ledger = _sha256(data_dir / "ledger.sqlite3")
    rows = _ledger_rows(data_dir)

    migrated = _run("migrate", "--config", str(config), cwd=tmp_path)

    assert migrated.returncode == 0, migrated.stderr
    assert "format 1; this version writes 2; upgraded:" in migrated.stdout
    assert _sha256(data_dir / "ledger.sqlite3") == ledger  # never even opened
    assert json.loads((data_dir / "format.json").read_text())["format"] == 2
    assert not (data_dir / "git" / "loopback-git" / "identities.json").exists()
    store = JsonStore(data_dir / "index")
    try:
        learned = await DiskcacheIndex(store).repository(
            "loopback-git", PackageId("groue", "GRDB_swift")
        )
    finally:
        store.close()
    assert learned == "groue/GRDB.swift"

    client = await aiohttp_client(create_app(load_settings(config)))
    await _assert_served_as_before(client)
    await client.close()

    verified = _run("verify", "--no-refetch", "--config", str(config), cwd=tmp_path)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "0 problems" in verified.stdout
    assert _ledger_rows(data_dir) == rows


async def test_serving_upgrades_the_directory_on_start_up(
    data_dir: Path, config: Path, aiohttp_client: ClientFactory
) -> None:
    rows = _ledger_rows(data_dir)

    client = await aiohttp_client(create_app(load_settings(config)))

    assert json.loads((data_dir / "format.json").read_text())["upgraded_from"] == 1
    await _assert_served_as_before(client)
    assert _ledger_rows(data_dir) == rows


async def _add_format_1_entries(data_dir: Path, count: int) -> None:
    """More of what format 1 wrote (the fixture's own key shapes), for a long upgrade."""
    store = JsonStore(data_dir / "index")
    try:
        for number in range(count):
            detail = {"detail": f"acme.Pkg{number} was not found"}
            await store.set(f"v1/missing/acme.Pkg{number}", detail, expire=3600)
            await store.set(f"v1/identifiers/git.example/acme/pkg{number}", [f"acme.Pkg{number}"])
    finally:
        store.close()


def _left(data_dir: Path, prefix: str) -> int:
    with sqlite3.connect(data_dir / "index" / "cache.db") as db:
        (count,) = db.execute(
            "SELECT count(*) FROM Cache WHERE key LIKE ?", (prefix + "%",)
        ).fetchone()
    return int(count)


@pytest.fixture
def killed_midway(tmp_path: Path, data_dir: Path, config: Path) -> None:
    """`spm-proxy migrate` killed with SIGKILL in the middle of rewriting the index.

    Its debug log goes to a pipe nobody reads after the first line: once the
    pipe is full (far fewer lines than entries to upgrade), the process blocks
    in the middle of the upgrade, and is killed there.
    """
    asyncio.run(_add_format_1_entries(data_dir, 1500))
    process = subprocess.Popen(
        [SPM_PROXY, "migrate", "--config", str(config), "--log-level", "debug"],
        cwd=tmp_path,
        env=clean_environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert process.stderr is not None
    while b'"format_entry_upgraded"' not in process.stderr.readline():
        assert process.poll() is None, "the upgrade ended before it was killed"
    time.sleep(1.0)  # it writes on until the pipe is full, then waits
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    process.stderr.close()
    assert process.returncode == -signal.SIGKILL


@pytest.mark.usefixtures("killed_midway")
async def test_an_upgrade_killed_midway_resumes_on_the_next_start(
    tmp_path: Path, data_dir: Path, config: Path, aiohttp_client: ClientFactory
) -> None:
    # Killed half-way: some format-1 entries were upgraded, others not, and the
    # directory still says format 1.
    assert not (data_dir / "format.json").exists()
    assert 0 < _left(data_dir, "v1/missing/") < 1502
    ledger = _sha256(data_dir / "ledger.sqlite3")

    checked = _run("migrate", "--check", "--config", str(config), cwd=tmp_path)
    assert checked.returncode == 1
    resumed = _run("migrate", "--config", str(config), cwd=tmp_path)

    assert resumed.returncode == 0, resumed.stderr
    assert _left(data_dir, "v1/missing/") == 0
    assert _sha256(data_dir / "ledger.sqlite3") == ledger
    assert json.loads((data_dir / "format.json").read_text())["format"] == 2
    client = await aiohttp_client(create_app(load_settings(config)))
    await _assert_served_as_before(client)
    await client.close()
    verified = _run("verify", "--no-refetch", "--config", str(config), cwd=tmp_path)
    assert verified.returncode == 0, verified.stdout + verified.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["serve", "--port", "0", "--log-format", "console"],
        ["warm", "--package", "mona.LinkedList"],
        ["verify"],
        ["gc"],
        ["migrate"],
        ["migrate", "--check"],
    ],
    ids=lambda command: " ".join(command[:2]),
)
def test_a_directory_of_a_newer_format_is_refused_with_exit_status_2(
    tmp_path: Path, data_dir: Path, config: Path, command: list[str]
) -> None:
    (data_dir / "format.json").write_text('{"format": 3, "written_by": "spm-proxy 9.0"}\n')
    before = _files(data_dir)

    result = _run(*command, "--config", str(config), cwd=tmp_path)

    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("spm-proxy: server.data_dir: ")
    assert "holds data format 3, written by a newer spm-proxy" in result.stderr
    assert "reads formats up to 2 and will not touch it" in result.stderr
    assert _files(data_dir) == before


@pytest.mark.parametrize("command", [["verify"], ["migrate"]], ids=["verify", "migrate"])
def test_an_upgrade_that_cannot_write_stops_the_start_and_loses_nothing(
    tmp_path: Path, data_dir: Path, config: Path, command: list[str]
) -> None:
    index = data_dir / "index"
    index.rename(tmp_path / "index-aside")
    index.write_text("not a directory\n")  # diskcache cannot open it
    before = _files(data_dir)

    result = _run(*command, "--config", str(config), cwd=tmp_path)

    assert result.returncode == (2 if command == ["verify"] else 1), result.stderr
    assert "nothing is lost" in result.stderr
    assert "Traceback" not in result.stderr
    after = _files(data_dir)
    assert after.pop("format.lock") == hashlib.sha256(b"").hexdigest()  # taken, then released
    assert after == before
