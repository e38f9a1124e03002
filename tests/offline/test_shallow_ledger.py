"""The ledger never sees a change when mirrors become shallow.

A data directory from before shallow mirrors: releases recorded in the ledger
from a mirror with the whole history. Its mirrors are evicted and its
archives pruned; fetched again through shallow mirrors, every release must
come back with exactly the checksums the ledger holds, or the recorder
refuses it (and `warm` fails).
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from cache.ledger import LedgerEntry
from proxy.cli import main
from proxy.config import load_settings
from proxy.wiring import open_registry
from tests.support.git_http import GitHttpServer
from tests.support.release_history import VERSIONS, publish_release_history
from upstreams.git.mirror import mirror_path
from upstreams.model import PackageId

PACKAGE = PackageId("mona", "LinkedList")


def _ledger(config: Path) -> list[LedgerEntry]:
    async def read() -> list[LedgerEntry]:
        async with open_registry(load_settings(config, {"offline": True})) as wired:
            return [entry async for entry in wired.storage.ledger.entries(PACKAGE)]

    return sorted(asyncio.run(read()), key=lambda entry: (entry.version, entry.resource))


def test_releases_rebuilt_through_shallow_mirrors_match_the_ledger(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    git_root = tmp_path / "git-root"
    repo = publish_release_history(git_root)
    with GitHttpServer(git_root, "git") as server:
        data = tmp_path / "data"
        config = tmp_path / "spm-proxy.toml"
        config.write_text(
            f'[server]\ndata_dir = "{data}"\n'
            '[[upstreams]]\nname = "git"\ntype = "git"\n'
            f'url_template = "{server.url}/{{scope}}/{{name}}.git"\n'
        )
        full = mirror_path(data / "git" / "git", f"{server.url}/mona/LinkedList.git")
        full.parent.mkdir(parents=True)
        subprocess.run(
            ["git", "clone", "--quiet", "--mirror", str(repo.path), str(full)],
            check=True,
            capture_output=True,
        )
        spec = "mona.LinkedList@1.0.0-0..<2.0.0"

        # Recorded from the full-history mirror: nothing is fetched.
        server.reset_counters()
        assert main(["warm", "--config", str(config), "--package", spec]) == 0
        assert server.pack_requests == 0
        recorded = _ledger(config)
        assert {entry.version for entry in recorded} == set(VERSIONS)

        # Mirrors evicted, archives pruned: the next warm fetches shallowly.
        assert main(["gc", "--config", str(config), "--max-size", "1B"]) == 1
        assert not full.exists()
        assert main(["gc", "--config", str(config), "--prune", "mona.LinkedList"]) == 0
        capsys.readouterr()
        assert main(["warm", "--config", str(config), "--package", spec]) == 0

        assert capsys.readouterr().out.strip() == (
            f"warm: {len(VERSIONS)} fetched, 0 already present, 0 failed, 0 skipped"
        )
        assert server.pack_requests == len(VERSIONS)
        assert (full / "shallow").is_file()
        assert _ledger(config) == recorded
