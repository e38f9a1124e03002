"""What every scenario shares: options, the working directory, the git server."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Self

from tests.bench.common import Managed, Proxy, log
from tests.bench.git_server import GitHttpBackend


class Context(Managed):
    """What every scenario shares: options, the working directory, the git server."""

    def __init__(self, *, quick: bool, keep: bool) -> None:
        self.quick = quick
        self.keep = keep
        self.repeats = 1 if quick else 3
        self.load_seconds = 2.0 if quick else 5.0
        self.workdir = Path(tempfile.mkdtemp(prefix="spm-proxy-bench-"))
        self.git_root = self.workdir / "git-root"
        self.git_root.mkdir()
        self.git = GitHttpBackend(self.git_root)

    def path(self, name: str) -> Path:
        target = self.workdir / name
        target.mkdir(parents=True, exist_ok=True)
        return target

    def proxy(self, data_dir: Path, *, workers: int = 1, public_url: str | None = None) -> Proxy:
        return Proxy(
            self.workdir / "proxies", self.git.url, data_dir, workers=workers, public_url=public_url
        )

    def start(self) -> Self:
        self.git.start()
        return self

    def stop(self) -> None:
        self.git.stop()
        if self.keep:
            log(f"kept {self.workdir}")
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)
