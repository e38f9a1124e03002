"""Packages the benchmark generates: bare repositories under the git server's root.

Content is seeded, so every run builds the same repositories. Files are written
into a work tree and committed into `root/scope/name.git`, then packed like a
hosted repository (the server streams packs, it does not compress per clone).
"""

from __future__ import annotations

import random
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.bench.common import SCOPE, clean_env

WHEN = 1_700_000_000

_VOCABULARY = (
    "let var func return struct class enum case switch guard if else for in while "
    "public internal private static final import protocol extension where self "
    "Node Tree List Buffer Element Index Value Key Result Error Stream Channel "
    "count first last append insert remove reserve capacity map filter reduce "
    "// TODO: keep this in sync with the specification of the storage layer"
)

LIBRARY_MANIFEST = """\
// swift-tools-version:5.9
import PackageDescription

let package = Package(
    name: "{name}",
    products: [.library(name: "{name}", targets: ["{name}"])],
    targets: [.target(name: "{name}")]
)
"""


@dataclass(frozen=True, slots=True)
class Generated:
    scope: str
    name: str
    bare: Path
    files: int
    content_bytes: int

    @property
    def identity(self) -> str:
        return f"{self.scope}.{self.name}"


def _text_lines(rng: random.Random, count: int) -> list[str]:
    words = _VOCABULARY.split()
    return [
        "    " * rng.randrange(3) + " ".join(rng.choices(words, k=rng.randrange(4, 14)))
        for _ in range(count)
    ]


class _Builder:
    def __init__(self, root: Path, work: Path, name: str, *, compression: int | None) -> None:
        self.bare = root / SCOPE / f"{name}.git"
        self.work = work / SCOPE / name
        self.work.mkdir(parents=True)
        self.bare.parent.mkdir(parents=True, exist_ok=True)
        self.env = clean_env(self.work)
        self.git("init", "--bare", "--quiet", "--initial-branch=main", str(self.bare))
        self.env.update(GIT_DIR=str(self.bare), GIT_WORK_TREE=str(self.work))
        if compression is not None:
            self.git("config", "core.compression", str(compression))
            self.git("config", "pack.compression", str(compression))

    def git(self, *args: str) -> str:
        result = subprocess.run(
            ["git", "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false", *args],
            env=self.env,
            cwd=self.work,
            check=False,
            capture_output=True,
        )
        if result.returncode != 0:
            raise RuntimeError(f"git {' '.join(args)} failed: {result.stderr.decode()}")
        return result.stdout.decode().strip()

    def write(self, relpath: str, content: bytes) -> int:
        target = self.work / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        return len(content)

    def commit(self, message: str, when: int) -> None:
        stamp = f"@{when} +0000"
        self.env.update(GIT_AUTHOR_DATE=stamp, GIT_COMMITTER_DATE=stamp)
        self.git("add", "--all")
        self.git("commit", "--quiet", "-m", message)

    def tag(self, name: str) -> None:
        self.git("tag", name)

    def finish(self) -> None:
        # A hosted repository serves from packs; a single commit has nothing to
        # delta against, so skip the (slow, irrelevant) delta search.
        self.git("repack", "-a", "-d", "-q", "--window=0")
        self.git("update-server-info")


def source_package(
    root: Path,
    work: Path,
    name: str,
    *,
    text_files: int,
    binary_files: int = 0,
    binary_size: int = 0,
    tags: Iterator[str] | None = None,
    history: int = 1,
    compression: int | None = None,
    seed: int = 1,
) -> Generated:
    """A Swift library with `text_files` source files and `binary_files` random
    (incompressible) resources; `history` commits, the later ones touching a few
    files, and one tag per commit from `tags` (default: `1.0.0` on the last)."""
    rng = random.Random(seed)
    builder = _Builder(root, work, name, compression=compression)
    pool = _text_lines(rng, 5000)
    total = builder.write("Package.swift", LIBRARY_MANIFEST.format(name=name).encode())
    sources = [f"Sources/{name}/Module{i // 200:03d}/File{i:05d}.swift" for i in range(text_files)]
    for index, relpath in enumerate(sources):
        lines = rng.choices(pool, k=rng.randrange(20, 120))
        header = f"// {relpath}\npublic func function{index}() -> Int {{ {index} }}\n"
        total += builder.write(relpath, (header + "\n".join(lines) + "\n").encode())
    for index in range(binary_files):
        total += builder.write(
            f"Sources/{name}/Resources/blob{index:04d}.bin", rng.randbytes(binary_size)
        )
    tag_names = list(tags) if tags is not None else []
    for commit in range(history):
        if commit:
            for relpath in rng.sample(sources, min(len(sources), 20)):
                lines = rng.choices(pool, k=rng.randrange(20, 120))
                builder.write(relpath, (f"// revision {commit}\n" + "\n".join(lines)).encode())
        builder.commit(f"{name} revision {commit}", WHEN + commit * 3600)
        if tag_names:
            builder.tag(tag_names[commit])
    if not tag_names:
        builder.tag("1.0.0")
    builder.finish()
    files = len(sources) + binary_files + 1
    return Generated(SCOPE, name, builder.bare, files, total)
