"""Repositories with a real-world shape: thousands of commits, a release tag every
few dozen, a large tree, and incompressible resources replaced over time.

Written with `git fast-import` (git-fast-import(1)), which takes a stream of
blobs and commits and is orders of magnitude faster than committing through
a work tree, then repacked with deltas the way a git host stores them.
Content is seeded, so every run builds the same repository.
"""

from __future__ import annotations

import random
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tests.bench.common import SCOPE, clean_env
from tests.bench.repos import _VOCABULARY, LIBRARY_MANIFEST, WHEN, Generated


@dataclass(frozen=True, slots=True)
class Shape:
    """What a generated repository looks like at its last tag, and how it got there."""

    text_files: int
    binary_files: int = 0
    binary_size: int = 256 * 1024
    commits: int = 1
    tags: int = 1
    # Each commit rewrites this many text files; every `binary_every`-th
    # commit replaces one binary resource (0: never).
    touched: int = 5
    binary_every: int = 0
    seed: int = 1


@dataclass(frozen=True, slots=True)
class History:
    package: Generated
    tags: tuple[str, ...]
    commits: int
    # Bytes of the repository as the server stores it (packed).
    packed_bytes: int

    @property
    def last_tag(self) -> str:
        return self.tags[-1]


class _Stream:
    """Writes a fast-import stream; marks number blobs and commits."""

    def __init__(self, pipe: IO[bytes]) -> None:
        self.pipe = pipe
        self.marks = 0

    def blob(self, data: bytes) -> int:
        self.marks += 1
        self.pipe.write(b"blob\nmark :%d\ndata %d\n" % (self.marks, len(data)))
        self.pipe.write(data + b"\n")
        return self.marks

    def commit(self, message: str, when: int, files: dict[str, int]) -> int:
        self.marks += 1
        text = message.encode()
        who = b"Bench Mark <bench@example.com> %d +0000\n" % when
        self.pipe.write(b"commit refs/heads/main\nmark :%d\n" % self.marks)
        self.pipe.write(b"author " + who + b"committer " + who)
        self.pipe.write(b"data %d\n%s\n" % (len(text), text))
        for path, mark in files.items():
            self.pipe.write(b"M 100644 :%d %s\n" % (mark, path.encode()))
        self.pipe.write(b"\n")
        return self.marks

    def tag(self, name: str, commit: int) -> None:
        self.pipe.write(b"reset refs/tags/%s\nfrom :%d\n\n" % (name.encode(), commit))


def _text(rng: random.Random, pool: list[str], header: str) -> bytes:
    lines = rng.choices(pool, k=rng.randrange(40, 130))
    return (header + "\n".join(lines) + "\n").encode()


def _tag_name(index: int) -> str:
    # 1.0.0, 1.0.1, ... 1.0.9, 1.1.0, ...: minors of ten patches each.
    return f"{1 + index // 100}.{(index // 10) % 10}.{index % 10}"


def history_package(
    root: Path,
    name: str,
    shape: Shape,
    *,
    manifest: str | None = None,
    repack: bool = True,
) -> History:
    """A bare repository `root/bench/name.git` of the given shape; tags spread
    evenly over the commits, the last on the last commit."""
    rng = random.Random(shape.seed)
    words = _VOCABULARY.split()
    pool = [
        "    " * rng.randrange(3) + " ".join(rng.choices(words, k=rng.randrange(4, 14)))
        for _ in range(5000)
    ]
    bare = root / SCOPE / f"{name}.git"
    bare.parent.mkdir(parents=True, exist_ok=True)
    env = {**clean_env(bare.parent), "GIT_DIR": str(bare)}
    subprocess.run(["git", "init", "--bare", "--quiet", str(bare)], env=env, check=True)
    sources = [
        f"Sources/{name}/Module{i // 200:03d}/File{i:05d}.swift" for i in range(shape.text_files)
    ]
    resources = [f"Sources/{name}/Resources/blob{i:04d}.bin" for i in range(shape.binary_files)]
    every = max(1, shape.commits // shape.tags)
    tags: list[str] = []
    importer = subprocess.Popen(
        ["git", "fast-import", "--quiet", "--done"], stdin=subprocess.PIPE, env=env
    )
    assert importer.stdin is not None
    stream = _Stream(importer.stdin)
    text = manifest if manifest is not None else LIBRARY_MANIFEST.format(name=name)
    files = {"Package.swift": stream.blob(text.encode())}
    total = len(text)
    for index, path in enumerate(sources):
        data = _text(rng, pool, f"// {path}\npublic func function{index}() -> Int {{ {index} }}\n")
        files[path] = stream.blob(data)
        total += len(data)
    for path in resources:
        files[path] = stream.blob(rng.randbytes(shape.binary_size))
        total += shape.binary_size
    for number in range(shape.commits):
        changed = dict(files) if number == 0 else {}
        if number:
            for path in rng.sample(sources, min(len(sources), shape.touched)):
                changed[path] = stream.blob(_text(rng, pool, f"// {path} revision {number}\n"))
            if shape.binary_every and resources and number % shape.binary_every == 0:
                changed[rng.choice(resources)] = stream.blob(rng.randbytes(shape.binary_size))
        commit = stream.commit(f"{name} revision {number}", WHEN + number * 3600, changed)
        last = number == shape.commits - 1
        if ((number + 1) % every == 0 and len(tags) < shape.tags - 1) or last:
            tags.append(_tag_name(len(tags)))
            stream.tag(tags[-1], commit)
    importer.stdin.write(b"done\n")
    importer.stdin.close()
    if importer.wait() != 0:
        raise RuntimeError(f"git fast-import failed for {name}")
    if repack:
        # Deltas as a host stores them (git gc's window and depth).
        subprocess.run(
            ["git", "repack", "-a", "-d", "-f", "-q", "--window=10", "--depth=50"],
            env=env,
            check=True,
        )
    subprocess.run(["git", "update-server-info"], env=env, check=True)
    packed = sum(path.stat().st_size for path in (bare / "objects").rglob("*") if path.is_file())
    package = Generated(SCOPE, name, bare, len(sources) + len(resources) + 1, total)
    return History(package, tuple(tags), shape.commits, packed)
