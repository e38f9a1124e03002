"""Git repositories in tmp_path, served over smart HTTP on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from cache.embedded.index import DiskcacheIndex
from tests.support.git_http import GitHttpServer
from tests.support.storage import embedded_index
from upstreams.git import GitUpstream

MakeUpstream = Callable[..., GitUpstream]


@pytest.fixture
def git_root(tmp_path: Path) -> Path:
    root = tmp_path / "remote"
    root.mkdir()
    return root


@pytest.fixture
def git_server(git_root: Path) -> Iterator[GitHttpServer]:
    with GitHttpServer(git_root) as server:
        yield server


@pytest.fixture
def names(tmp_path: Path) -> Iterator[DiskcacheIndex]:
    """Learned repository names live in the real embedded index."""
    with embedded_index(tmp_path / "index") as index:
        yield index


@pytest.fixture
def make_upstream(tmp_path: Path, git_server: GitHttpServer, names: DiskcacheIndex) -> MakeUpstream:
    def make(
        *,
        template: str | None = None,
        mirror_root: Path | None = None,
        overrides: Mapping[str, str] | None = None,
        timeout: float = 5.0,
        name: str = "git",
    ) -> GitUpstream:
        return GitUpstream(
            name=name,
            url_template=template or f"{git_server.url}/{{scope}}/{{name}}.git",
            mirror_root=mirror_root or tmp_path / "mirrors",
            overrides=overrides or {},
            timeout=timeout,
            names=names,
        )

    return make
