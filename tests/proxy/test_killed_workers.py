"""`kill -9` of workers in the middle of fills, several times, then a restart.

A worker killed while it fills leaves what it was writing: a temporary pack
in a git mirror, a scratch archive, a staging blob, a lock. The lease it held
is taken over at once by the other worker, whose requests still get their
release. After a restart, the start-up sweep removes every leftover older than
the fill deadline (shortened here), every release serves, and `spm-proxy
verify` finds nothing wrong.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp

from tests.support.git_http import GitHttpServer
from tests.support.git_repos import GitRepo
from tests.support.http import JSON_ACCEPT, ZIP_ACCEPT
from tests.support.serving import (
    SPM_PROXY,
    Served,
    alive,
    children,
    clean_environment,
    free_port,
)

FILL_DEADLINE_SECONDS = 6
# Incompressible content, so that fetching, indexing, deflating and storing
# each take long enough for a kill to land in the middle of them.
RELEASE_BYTES = 6 * 1024 * 1024
RELEASES_PER_ROUND = 2
ROUNDS = 6
KILLS = 3
# What a fill writes on its way, by where a kill leaves it.
IN_PROGRESS = {
    "temporary pack": "git/*/mirrors/*/objects/pack/tmp_pack_*",
    "scratch archive": "git/*/scratch/*.zip",
    "staging blob": "blobs/staging/*",
}


@dataclass(frozen=True)
class Release:
    name: str
    version: str

    @property
    def archive(self) -> str:
        return f"/heavy/{self.name}/{self.version}.zip"

    @property
    def metadata(self) -> str:
        return f"/heavy/{self.name}/{self.version}"


def publish(root: Path) -> list[Release]:
    """Two repositories, each release adding a large file of its own."""
    releases = []
    noise = random.Random(17)
    for name in ("Heavy0", "Heavy1"):
        repo = GitRepo.init(root / "heavy" / name)
        repo.write(
            "Package.swift",
            "// swift-tools-version:5.7\nimport PackageDescription\n\n"
            f'let package = Package(name: "{name}", targets: [.target(name: "{name}")])\n',
        )
        repo.write(f"Sources/{name}/{name}.swift", "public let heavy = true\n")
        for minor in range(ROUNDS):
            version = f"1.{minor}.0"
            repo.write(f"Resources/{version}.bin", noise.randbytes(RELEASE_BYTES))
            repo.commit(f"{name} {version}", when=1_700_000_000 + minor)
            repo.tag(version)
            releases.append(Release(name, version))
    return releases


def in_progress(data: Path) -> Iterator[tuple[str, Path]]:
    for kind, pattern in IN_PROGRESS.items():
        for path in data.glob(pattern):
            if path.is_file():
                yield kind, path


def lease_holders(data: Path) -> set[int]:
    """Process ids holding a fill's lease right now."""
    path = data / "leases.sqlite3"
    if not path.exists():
        return set()
    connection = sqlite3.connect(path, timeout=10)
    try:
        rows = connection.execute(
            "SELECT holder FROM leases WHERE expires_at > ?", (time.time(),)
        ).fetchall()
    except sqlite3.OperationalError:
        return set()  # created, its table not yet
    finally:
        connection.close()
    return {int(holder.split(":")[1]) for (holder,) in rows}


async def fetch(session: aiohttp.ClientSession, url: str) -> int | None:
    """The status, or None when the worker serving it was killed."""
    try:
        async with session.get(url, headers=ZIP_ACCEPT) as response:
            await response.read()
            return response.status
    except aiohttp.ClientError:
        return None


async def kill_during_fill(
    served: Served, port: int, data: Path, releases: list[Release], wanted: str | None
) -> set[int]:
    """Request `releases` from both workers; kill the lease holders once a
    fill has a `wanted` file on its way (any, when None). Returns the pids
    killed."""
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        urls = [f"http://127.0.0.1:{port}{release.archive}" for release in releases] * 4
        requests = asyncio.gather(*(fetch(session, url) for url in urls))
        killed: set[int] = set()
        builders: set[int] = set()
        while not requests.done():
            seen = {kind for kind, _ in in_progress(data)}
            workers = set(children(served.process.pid))
            holders = lease_holders(data) & workers
            if (wanted in seen if wanted else seen) and holders:
                builders = {child for pid in holders for child in children(pid)}
                for pid in holders:
                    os.kill(pid, signal.SIGKILL)
                killed = holders
                break
            await asyncio.sleep(0.002)
        statuses = await requests
    if killed:
        # The killed workers' build processes end with them.
        async with asyncio.timeout(30):
            while any(alive(pid) for pid in builders):  # noqa: ASYNC110 - no event to wait on
                await asyncio.sleep(0.05)
    # Whatever a killed worker was serving is cut off; nothing is answered 5xx.
    assert not [status for status in statuses if status is not None and status != 200], statuses
    return killed


def replaces(pid: int, record: dict[str, Any]) -> bool:
    return bool(record["previous_pid"] == pid)


def leftovers(data: Path) -> list[Path]:
    found = [path for _, path in in_progress(data)]
    found += [path for path in data.glob("git/*/mirrors/*/**/*.lock") if path.is_file()]
    return found


def run_verify(config: Path, data: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SPM_PROXY, "verify", "--config", str(config), "--data-dir", str(data)],
        capture_output=True,
        text=True,
        check=False,
        env=clean_environment(),
        timeout=300,
    )


def write_config(path: Path, git_url: str) -> Path:
    path.write_text(
        "[cache]\n"
        f"fill_timeout_seconds = {FILL_DEADLINE_SECONDS}\n\n"
        "[[upstreams]]\n"
        'name = "loopback-git"\n'
        'type = "git"\n'
        f'url_template = "{git_url}/{{scope}}/{{name}}.git"\n'
        "read_timeout_seconds = 30\n"
    )
    return path


async def test_kill_9_during_fills_leaves_nothing_after_a_restart_and_verify_is_clean(
    tmp_path: Path, git_server: GitHttpServer
) -> None:
    releases = publish(git_server.root)
    data, port = tmp_path / "data", free_port()
    config = write_config(tmp_path / "proxy.toml", git_server.url)
    args = ["--config", str(config), "--workers", "2", "--port", str(port)]
    args += ["--data-dir", str(data), "--log-format", "json"]
    phases = list(IN_PROGRESS)
    kills, requested, missed = 0, [], False
    with Served(args, cwd=tmp_path, env=clean_environment()) as served:
        served.wait_for("server_started")
        for round_ in range(ROUNDS):
            batch = releases[round_::ROUNDS][:RELEASES_PER_ROUND]
            requested += batch
            # A phase can be too short to catch; after a round that missed
            # it, the next kill lands wherever the fill is.
            wanted = None if missed else phases[kills % len(phases)]
            killed = await kill_during_fill(served, port, data, batch, wanted)
            missed = not killed
            if killed:
                kills += 1
                for pid in killed:  # each replacement listens before the next round
                    served.wait_for("worker_restarted", partial(replaces, pid))
            if kills == KILLS:
                break
        assert served.stop() == 0, served.output()
    assert kills == KILLS, "the fills were too quick to be killed in the middle"
    left = leftovers(data)
    assert left, "the kills left nothing behind to clean up"

    # Once they are older than the fill deadline, a restart removes them.
    youngest = max(path.stat().st_mtime for path in left)
    await asyncio.sleep(max(0.0, youngest + FILL_DEADLINE_SECONDS + 1 - time.time()))
    with Served(args, cwd=tmp_path, env=clean_environment()) as served:
        served.wait_for("server_started")
        served.wait_for("leftovers_removed")
        assert [path for path in left if path.exists()] == []
        cutoff = time.time() - FILL_DEADLINE_SECONDS
        assert [path for path in leftovers(data) if path.stat().st_mtime < cutoff] == []
        # Every release whose fill was killed serves.
        async with aiohttp.ClientSession() as session:
            for release in requested:
                base = f"http://127.0.0.1:{port}"
                async with session.get(base + release.metadata, headers=JSON_ACCEPT) as response:
                    assert response.status == 200, await response.text()
                    [resource] = json.loads(await response.read())["resources"]
                async with session.get(base + release.archive, headers=ZIP_ACCEPT) as response:
                    assert response.status == 200, await response.text()
                    assert hashlib.sha256(await response.read()).hexdigest() == resource["checksum"]
        assert served.stop() == 0, served.output()
    served.events()

    verify = await asyncio.to_thread(run_verify, config, data)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert ", 0 problems," in verify.stdout
