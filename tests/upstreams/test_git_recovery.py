"""What a writer killed in the middle leaves in a mirror is cleared by the next
holder of the mirror's lock, whatever its age: nobody else can be writing it.

Each test plants exactly what a `kill -9` at one point of a mirror update
leaves, with the current time, so the age-based sweep would not touch it yet.
"""

from __future__ import annotations

import time
from pathlib import Path

from structlog.testing import capture_logs

from tests.support.git_http import GitHttpServer
from tests.support.git_repos import GitRepo
from tests.support.storage import Fetched, fetch_to
from tests.upstreams.conftest import MakeUpstream
from upstreams.git import GitUpstream
from upstreams.git.locking import mirror_lock
from upstreams.model import PackageId, Version

MANIFEST = "// swift-tools-version:5.8\nimport PackageDescription\n"
LINKED_LIST = PackageId("mona", "LinkedList")
T0 = 1_700_000_000


def release(repo: GitRepo, version: str, when: int) -> None:
    repo.write("VERSION", version)
    repo.commit(version, when=when)
    repo.tag(version)


def publish(git_root: Path) -> GitRepo:
    repo = GitRepo.init(git_root / "mona" / "LinkedList")
    repo.write("Package.swift", MANIFEST)
    release(repo, "1.0.0", T0)
    return repo


async def fetch(upstream: GitUpstream, version: str, tmp_path: Path) -> Fetched:
    archive = tmp_path / f"{version}-{time.monotonic_ns()}.zip"
    return await fetch_to(upstream, LINKED_LIST, Version.parse(version), archive)


def the_mirror(tmp_path: Path) -> Path:
    (mirror,) = (tmp_path / "mirrors" / "mirrors").iterdir()
    return mirror


async def test_lock_files_of_a_killed_ref_update_are_cleared_at_once(
    make_upstream: MakeUpstream, git_root: Path, tmp_path: Path
) -> None:
    repo = publish(git_root)
    upstream = make_upstream()
    await fetch(upstream, "1.0.0", tmp_path)
    mirror = the_mirror(tmp_path)
    # Killed while writing the next tag's ref and the shallow boundary:
    (mirror / "refs" / "tags" / "1.1.0.lock").write_text("0" * 40 + "\n")
    (mirror / "shallow.lock").write_text("")
    release(repo, "1.1.0", T0 + 60)

    with capture_logs() as logs:
        fetched = await fetch(upstream, "1.1.0", tmp_path)

    assert fetched.provenance.commit == repo.rev_parse("1.1.0")
    cleared = sorted(e["lock"] for e in logs if e["event"] == "stale_lock_cleared")
    assert cleared == ["refs/tags/1.1.0.lock", "shallow.lock"]
    assert not list(mirror.rglob("*.lock"))


async def test_a_pack_killed_before_its_index_was_written_is_fetched_again(
    make_upstream: MakeUpstream, git_root: Path, git_server: GitHttpServer, tmp_path: Path
) -> None:
    repo = publish(git_root)
    await fetch(make_upstream(), "1.0.0", tmp_path)
    mirror = the_mirror(tmp_path)
    # Killed after the pack was renamed into place, while its index was a lock file.
    (index,) = (mirror / "objects" / "pack").glob("pack-*.idx")
    index.rename(index.with_suffix(".idx.lock"))
    git_server.reset_counters()

    fetched = await fetch(make_upstream(), "1.0.0", tmp_path)

    assert fetched.provenance.commit == repo.rev_parse("1.0.0")
    assert git_server.pack_requests == 1
    assert index.exists()
    assert not list(mirror.rglob("*.lock"))


async def test_a_mirror_killed_while_being_created_is_made_again(
    make_upstream: MakeUpstream, git_root: Path, tmp_path: Path
) -> None:
    repo = publish(git_root)
    upstream = make_upstream()
    await fetch(upstream, "1.0.0", tmp_path)
    mirror = the_mirror(tmp_path)
    # What `git init --bare` leaves when killed before HEAD is in place.
    for path in mirror.iterdir():
        if path.is_file():
            path.unlink()
    for pack in (mirror / "objects" / "pack").iterdir():
        pack.unlink()
    (mirror / "HEAD.lock").write_text("ref: refs/heads/master\n")
    release(repo, "1.1.0", T0 + 60)

    with capture_logs() as logs:
        fetched = await fetch(upstream, "1.1.0", tmp_path)

    assert fetched.provenance.commit == repo.rev_parse("1.1.0")
    assert [e["mirror"] for e in logs if e["event"] == "mirror_rebuilt"] == [mirror.name]
    assert (mirror / "HEAD").is_file()


async def test_trimming_leaves_a_mirror_alone_while_a_fill_writes_it(
    make_upstream: MakeUpstream, git_root: Path, tmp_path: Path
) -> None:
    publish(git_root)
    upstream = make_upstream()
    await fetch(upstream, "1.0.0", tmp_path)
    mirror = the_mirror(tmp_path)

    with mirror_lock(mirror):  # as a fill in another process holds it
        assert await upstream.trim(1 << 40) == 0
    assert mirror.is_dir()
    assert await upstream.trim(1 << 40) > 0
    assert not mirror.exists()
