"""Real git repositories for tests, driven by the `git` binary.

The environment is scrubbed so that no user or system configuration (signing,
hooks, default branch names, templates) changes what a test builds, and every
author/committer identity and date is fixed so commits are reproducible.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

AUTHOR_NAME = "Mona Lisa"
AUTHOR_EMAIL = "mona@example.com"


def _git_env(home: Path, when: int | None = None) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        # A HOME with nothing in it, and no system/global config, isolates the
        # repository from whatever machine the tests run on.
        "HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_AUTHOR_NAME": AUTHOR_NAME,
        "GIT_AUTHOR_EMAIL": AUTHOR_EMAIL,
        "GIT_COMMITTER_NAME": AUTHOR_NAME,
        "GIT_COMMITTER_EMAIL": AUTHOR_EMAIL,
        "LC_ALL": "C",
        "TZ": "UTC",
    }
    if when is not None:
        stamp = f"@{when} +0000"
        env["GIT_AUTHOR_DATE"] = stamp
        env["GIT_COMMITTER_DATE"] = stamp
    return env


class GitRepo:
    """A normal (non-bare) repository with a working tree at `path`."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def init(cls, path: Path) -> GitRepo:
        path.mkdir(parents=True, exist_ok=True)
        repo = cls(path)
        repo.git("init", "--quiet", "--initial-branch=main")
        return repo

    def git(self, *args: str, when: int | None = None) -> str:
        """Run git in this repository and return its stripped stdout."""
        # HOME only needs to hold no configuration; .git never holds a .gitconfig.
        git_dir = self.path / ".git"
        home = git_dir if git_dir.is_dir() else self.path
        result = subprocess.run(
            ["git", "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false", *args],
            cwd=self.path,
            env=_git_env(home, when),
            check=False,
            capture_output=True,
        )
        if result.returncode != 0:
            raise RuntimeError(f"git {' '.join(args)} failed: {result.stderr.decode().strip()}")
        return result.stdout.decode().strip()

    def write(self, relpath: str, content: str | bytes, *, executable: bool = False) -> None:
        target = self.path / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink():
            target.unlink()
        data = content.encode() if isinstance(content, str) else content
        target.write_bytes(data)
        target.chmod(0o755 if executable else 0o644)
        self.git("add", "--", relpath)

    def symlink(self, relpath: str, target: str) -> None:
        link = self.path / relpath
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target)
        self.git("add", "--", relpath)

    def remove(self, relpath: str) -> None:
        # --force: also for files staged but not committed yet.
        self.git("rm", "-r", "--force", "--quiet", "--", relpath)

    def commit(self, message: str, *, when: int = 1_700_000_000) -> str:
        self.git("commit", "--quiet", "--allow-empty", "-m", message, when=when)
        return self.git("rev-parse", "HEAD")

    def tag(
        self,
        name: str,
        *,
        annotated: bool = False,
        force: bool = False,
        ref: str = "HEAD",
        when: int | None = None,
    ) -> None:
        args = ["tag"]
        if force:
            args.append("--force")
        if annotated:
            args += ["--annotate", "-m", f"Release {name}"]
        args += [name, ref]
        # Annotated tags carry a tagger date; default it to the commit's so the
        # repository stays reproducible.
        stamp = when if when is not None else int(self.git("log", "-1", "--format=%ct", ref))
        self.git(*args, when=stamp)

    def delete_tag(self, name: str) -> None:
        self.git("tag", "--delete", name)

    def rev_parse(self, ref: str) -> str:
        return self.git("rev-parse", ref)
