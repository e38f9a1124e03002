"""`spm-proxy warm`, `verify` and `gc` as users run them, against git repositories
served on loopback."""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from proxy.app import create_app
from proxy.cli import main
from proxy.config import load_settings
from proxy.service.releases import CacheStatus
from proxy.wiring import open_registry
from tests.support.git_http import GitHttpServer
from tests.support.git_repos import GitRepo
from tests.support.swift_packages import publish_linked_list, publish_node
from upstreams.model import PackageId, Version

SPM_PROXY = str(Path(sys.executable).with_name("spm-proxy"))
LINKED_LIST = PackageId("mona", "LinkedList")
NODE = PackageId("mona", "Node")


@pytest.fixture
def config(tmp_path: Path, git_server: GitHttpServer) -> Path:
    publish_node(tmp_path / "git-root")
    publish_linked_list(tmp_path / "git-root")
    path = tmp_path / "spm-proxy.toml"
    path.write_text(
        f'[server]\ndata_dir = "{tmp_path / "data"}"\n'
        '[[upstreams]]\nname = "loopback-git"\ntype = "git"\n'
        f'url_template = "{git_server.url}/{{scope}}/{{name}}.git"\n'
    )
    return path


@pytest.fixture
def resolved(tmp_path: Path, git_server: GitHttpServer) -> Path:
    """A project that pins one registry package and one git URL."""
    path = tmp_path / "Package.resolved"
    path.write_text(json.dumps({
        "pins": [
            {"identity": "mona.LinkedList", "kind": "registry", "location": "",
             "state": {"version": "1.1.0"}},
            {"identity": "node", "kind": "remoteSourceControl",
             "location": f"{git_server.url}/mona/Node.git",
             "state": {"revision": "0" * 40, "version": "1.0.0"}},
            {"identity": "tool", "kind": "localSourceControl", "location": "/src/tool",
             "state": {"revision": "0" * 40}},
        ],
        "version": 3,
    }))  # fmt: skip
    return path


def _statuses(config: Path, *releases: tuple[PackageId, str]) -> list[CacheStatus]:
    async def look() -> list[CacheStatus]:
        async with open_registry(load_settings(config, {"offline": True})) as wired:
            found = []
            for package, version in releases:
                answer = await wired.registry.archive(package, Version.parse(version))
                found.append(answer.status)
            return found

    return asyncio.run(look())


def test_warm_from_package_resolved(
    config: Path, resolved: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["warm", "--config", str(config), "--resolved", str(resolved)]) == 0
    assert (
        capsys.readouterr().out.strip() == "warm: 2 fetched, 0 already present, 0 failed, 1 skipped"
    )
    # Everything is now served from the cache with no upstream at all.
    assert _statuses(config, (LINKED_LIST, "1.1.0"), (NODE, "1.0.0")) == [CacheStatus.HIT] * 2

    assert main(["warm", "--config", str(config), "--resolved", str(resolved)]) == 0
    assert "0 fetched, 2 already present" in capsys.readouterr().out


def test_warm_package_specs_and_failures(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main([
        "warm", "--config", str(config),
        "--package", "mona.LinkedList@1.0.0..<2.0.0",
        "--package", "mona.Node",
        "--package", "mona.Missing",
        "--package", "mona.Node@from:7.0.0",
    ])  # fmt: skip
    out = capsys.readouterr().out
    assert status == 1
    assert "warm: 3 fetched, 0 already present, 2 failed, 0 skipped" in out
    assert "failed   mona.Missing:" in out
    assert "failed   mona.Node: no release matches" in out
    assert (
        _statuses(config, (LINKED_LIST, "1.0.0"), (LINKED_LIST, "1.1.0")) == [CacheStatus.HIT] * 2
    )


def test_warm_refuses_bad_input(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["warm", "--config", str(config)]) == 2
    assert main(["warm", "--config", str(config), "--package", "no-dot"]) == 2
    assert "expected ID" in capsys.readouterr().out


def _run_on_terminal(args: list[str]) -> tuple[int, str]:
    controller, terminal = pty.openpty()
    # A real terminal has a size; tqdm draws nothing on a 0-column one.
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    process = subprocess.Popen(args, stdout=terminal, stderr=terminal, stdin=subprocess.DEVNULL)
    os.close(terminal)
    chunks = []
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # EIO once the child has closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(controller)
    return process.wait(timeout=120), b"".join(chunks).decode("utf-8", "replace")


def test_progress_on_a_terminal_and_quiet_when_piped(config: Path, resolved: Path) -> None:
    status, screen = _run_on_terminal(
        [SPM_PROXY, "warm", "--config", str(config), "--resolved", str(resolved)]
    )
    assert status == 0, screen
    assert "warming" in screen  # the progress bar
    assert "fetched  mona.LinkedList 1.1.0" in screen
    assert "skipped  tool:" in screen
    assert "warm: 2 fetched" in screen

    piped = subprocess.run(
        [SPM_PROXY, "warm", "--config", str(config), "--resolved", str(resolved)],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout == "warm: 0 fetched, 2 already present, 0 failed, 1 skipped\n"
    assert piped.stderr == ""


def _archive_blob(config: Path, package: PackageId, version: str) -> Path:
    async def find() -> Path:
        settings = load_settings(config, {"offline": True})
        async with open_registry(settings) as wired:
            found = await wired.registry.release(package, Version.parse(version))
            digest = found.record.archive_checksum
        # Where the embedded store keeps it: these tests damage it behind its back.
        return settings.server.data_dir / "blobs" / "sha256" / digest[:2] / digest[2:4] / digest

    return asyncio.run(find())


def test_verify_reports_quarantines_and_refetches(
    config: Path, resolved: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["warm", "--config", str(config), "--resolved", str(resolved)]) == 0
    assert main(["verify", "--config", str(config)]) == 0
    assert "problems" in capsys.readouterr().out

    blob = _archive_blob(config, LINKED_LIST, "1.1.0")
    original = blob.read_bytes()
    damaged = bytearray(original)
    damaged[len(damaged) // 2] ^= 0x01
    blob.write_bytes(bytes(damaged))

    assert main(["verify", "--config", str(config), "--no-refetch"]) == 1
    out = capsys.readouterr().out
    assert f"corrupt      mona.linkedlist 1.1.0 source-archive sha256 {blob.name}" in out
    assert not blob.exists()  # quarantined, so it can never be served
    assert list((config.parent / "data" / "blobs" / "quarantine").iterdir())

    # With the upstream reachable, verify refetches; the rebuild matches the ledger.
    blob.parent.mkdir(parents=True, exist_ok=True)
    blob.write_bytes(bytes(damaged))
    assert main(["verify", "--config", str(config)]) == 1
    out = capsys.readouterr().out
    assert "refetched    mona.LinkedList 1.1.0" in out
    assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name
    assert main(["verify", "--config", str(config)]) == 0


def test_gc_evicts_rebuildable_data_and_keeps_ledgered_archives(
    config: Path, resolved: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["warm", "--config", str(config), "--resolved", str(resolved)]) == 0
    data = config.parent / "data"
    mirrors = list((data / "git").glob("*/mirrors/*"))
    assert mirrors
    ledgered = _archive_blob(config, LINKED_LIST, "1.1.0")
    capsys.readouterr()

    assert main(["gc", "--config", str(config), "--max-size", "1B", "--dry-run"]) == 1
    out = capsys.readouterr().out
    assert "would remove local-cache" in out
    assert "git mirrors of loopback-git" in out
    assert all(mirror.exists() for mirror in mirrors)  # a dry run changes nothing

    assert main(["gc", "--config", str(config), "--max-size", "1B"]) == 1
    out = capsys.readouterr().out
    assert "still over the limit" in out
    assert not any(mirror.exists() for mirror in mirrors)
    assert ledgered.exists()

    # Explicit pruning removes a release's blobs; the ledger still guards it.
    assert main(["gc", "--config", str(config), "--prune", "mona.LinkedList@1.1.0"]) == 0
    assert not ledgered.exists()
    assert _statuses(config, (NODE, "1.0.0")) == [CacheStatus.HIT]
    assert main(["warm", "--config", str(config), "--package", "mona.LinkedList@1.1.0"]) == 0
    assert hashlib.sha256(ledgered.read_bytes()).hexdigest() == ledgered.name


def test_corrupt_blob_is_never_served_over_http(
    config: Path, resolved: Path, git_server: GitHttpServer, tmp_path: Path
) -> None:
    assert main(["warm", "--config", str(config), "--resolved", str(resolved)]) == 0
    blob = _archive_blob(config, NODE, "1.0.0")
    good = blob.read_bytes()
    blob.write_bytes(b"rotten" + good[6:])
    # The tag moved meanwhile: a refetch cannot reproduce the recorded bytes.
    repo = GitRepo(tmp_path / "git-root" / "mona" / "Node")
    repo.write("extra.txt", "moved\n")
    repo.commit("moved", when=1_800_000_000)
    repo.tag("1.0.0", force=True)

    async def fetch() -> tuple[int, bytes]:
        async with (
            TestServer(create_app(load_settings(config))) as server,
            ClientSession() as session,
            session.get(server.make_url("/mona/Node/1.0.0.zip")) as response,
        ):
            return response.status, await response.read()

    status, body = asyncio.run(fetch())
    assert status == 502  # refused, rather than serving rotten or different bytes
    assert b"rotten" not in body


def test_two_processes_filling_one_release_fetch_it_once(
    config: Path, git_server: GitHttpServer
) -> None:
    # Two `warm` runs at once on one data directory, as a warm beside a server
    # would: one holds the fill's lease and fetches; the other waits for it.
    warms = [
        subprocess.Popen(
            [SPM_PROXY, "warm", "--config", str(config), "--package", "mona.LinkedList@1.1.0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [warm.communicate(timeout=120) for warm in warms]

    assert [warm.returncode for warm in warms] == [0, 0], outputs
    assert git_server.upload_pack_requests == 1
    # Each run has the release, fetched or waited for (or already there when it
    # started, if the other was that quick).
    done = {
        "warm: 1 fetched, 0 already present, 0 failed, 0 skipped\n",
        "warm: 0 fetched, 1 already present, 0 failed, 0 skipped\n",
    }
    assert {out for out, _ in outputs} <= done
