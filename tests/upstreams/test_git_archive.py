"""Archives deflated by several threads are the bytes `zipfile.writestr` writes."""

from __future__ import annotations

import random
import zipfile
from pathlib import Path

import pytest
from dulwich.repo import Repo

from tests.support.git_repos import GitRepo
from upstreams.git.archive import COMPRESS_LEVEL, write_archive, zip_timestamp
from upstreams.git.tree import TreeFiles, collect_files

WHEN = 1_700_000_000


def _reference(repo: Repo, files: TreeFiles, top: str, destination: Path) -> None:
    """One entry after the other through `writestr`: how archives were always built."""
    with zipfile.ZipFile(destination, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(files.files):
            entry = files.files[path]
            info = zipfile.ZipInfo(f"{top}/{path}", date_time=zip_timestamp(WHEN))
            info.create_system = 3
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (0o100000 | (0o755 if entry.executable else 0o644)) << 16
            blob = repo[entry.blob]
            archive.writestr(info, blob.as_raw_string(), compresslevel=COMPRESS_LEVEL)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = random.Random(7)
    repo = GitRepo.init(tmp_path_factory.mktemp("archive") / "repo")
    repo.write("Package.swift", "// swift-tools-version:5.9\n")
    repo.write("empty.txt", b"")
    repo.write("Résumé/naïve ✓.swift", "let unicode = true\n")
    repo.write("scripts/run.sh", "#!/bin/sh\n", executable=True)
    repo.write("Resources/noise.bin", rng.randbytes(3 * 1024 * 1024))  # incompressible
    repo.write("Resources/zeros.bin", bytes(2 * 1024 * 1024))  # compresses to almost nothing
    for index in range(300):
        text = "\n".join(f"let value{index}_{line} = {rng.random()}" for line in range(60))
        repo.write(f"Sources/Module{index % 7}/File{index:03d}.swift", text)
    repo.commit("tree", when=WHEN)
    return repo.path


@pytest.mark.parametrize("threads", [1, 2, 4, 16])
def test_threads_never_change_the_bytes(tree: Path, tmp_path: Path, threads: int) -> None:
    with Repo(str(tree)) as repo:
        commit = repo[repo.head()]
        files = collect_files(repo, commit.tree)  # type: ignore[attr-defined]
        reference = tmp_path / "reference.zip"
        _reference(repo, files, "mona.linkedlist", reference)
    built = tmp_path / f"built-{threads}.zip"

    count = write_archive(
        lambda: Repo(str(tree)), files, "mona.linkedlist", WHEN, built, threads=threads
    )

    assert count == len(files.files) == 306
    assert built.read_bytes() == reference.read_bytes()
    with zipfile.ZipFile(built) as zipped:
        assert zipped.testzip() is None
