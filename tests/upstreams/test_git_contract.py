"""GitUpstream passes the shared Upstream contract."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.contracts.upstream import ContractSubject, Files, UpstreamContract
from tests.support.git_http import GitHttpServer
from tests.support.git_repos import GitRepo
from tests.upstreams.conftest import MakeUpstream
from upstreams.model import PackageId


@pytest.fixture
def upstream_fixture(
    git_root: Path, git_server: GitHttpServer, make_upstream: MakeUpstream
) -> ContractSubject:
    repos: dict[str, GitRepo] = {}
    commits = iter(range(1_700_000_000, 1_800_000_000, 3600))

    def publish(package: PackageId, version: str, files: Files) -> None:
        repo = repos.get(package.key)
        if repo is None:
            repo = repos[package.key] = GitRepo.init(git_root / package.scope / package.name)
        for path, content in files.items():
            repo.write(path, content)
        repo.commit(f"Release {version}", when=next(commits))
        repo.tag(version)

    def repository_url(package: PackageId) -> str:
        return f"{git_server.url}/{package.scope}/{package.name}.git"

    return ContractSubject(make_upstream(), publish, repository_url)


class TestGitUpstreamContract(UpstreamContract):
    pass
