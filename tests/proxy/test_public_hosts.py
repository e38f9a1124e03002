"""Several public git hosts in one proxy, each served from its own mirror.

`github` answers for 127.0.0.2 and fetches from `/github/...` on the loopback
git server, `gitlab` answers for 127.0.0.3 and fetches from `/gitlab/...`,
and `corp` is an internal host reached directly. Both public hosts count
connections and must see none.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import structlog

from proxy.app import create_app
from tests.support.git_http import GitHttpServer
from tests.support.git_repos import GitRepo
from tests.support.http import JSON_ACCEPT, ZIP_ACCEPT, Client, ClientFactory, problem
from tests.support.proxy import proxy_settings
from tests.support.public_host import PublicHost

MANIFEST = "// swift-tools-version:5.8\nimport PackageDescription\n"


@pytest.fixture
def git_root(tmp_path: Path, git_server: GitHttpServer) -> Path:
    return git_server.root


@pytest.fixture
def github() -> Iterator[PublicHost]:
    with PublicHost("127.0.0.2") as host:
        yield host


@pytest.fixture
def gitlab() -> Iterator[PublicHost]:
    with PublicHost("127.0.0.3") as host:
        yield host


def publish(root: Path, path: str, tag: str = "1.0.0") -> GitRepo:
    repo = GitRepo.init(root / path)
    repo.write("Package.swift", MANIFEST)
    repo.write("ORIGIN", path)
    repo.commit(path, when=1_700_000_000)
    repo.tag(tag)
    return repo


def _upstreams(github: PublicHost, gitlab: PublicHost, git: str) -> list[dict[str, Any]]:
    return [
        {
            "name": "github",
            "type": "git",
            "url_template": github.url("{scope}/{name}.git"),
            "fetch_url_template": f"{git}/github/{{scope}}/{{name}}.git",
        },
        {
            "name": "gitlab",
            "type": "git",
            "url_template": gitlab.url("{scope}/{name}"),
            "fetch_url_template": f"{git}/gitlab/{{scope}}/{{name}}.git",
        },
        {"name": "corp", "type": "git", "url_template": f"{git}/corp/{{scope}}/{{name}}.git"},
    ]


@pytest.fixture
async def client(
    tmp_path: Path,
    git_server: GitHttpServer,
    github: PublicHost,
    gitlab: PublicHost,
    aiohttp_client: ClientFactory,
) -> Client:
    settings = proxy_settings(
        tmp_path / "data",
        upstreams=_upstreams(github, gitlab, git_server.url),
        routes=[
            {"scopes": ["acme"], "upstreams": ["corp"]},
            {"scopes": ["*"], "upstreams": ["github", "gitlab"]},
        ],
    )
    return await aiohttp_client(create_app(settings))


async def identifiers(client: Client, url: str) -> list[str]:
    response = await client.get(f"/identifiers?url={quote(url, safe=':/@')}", headers=JSON_ACCEPT)
    if response.status == 404:
        await problem(response, 404)
        return []
    assert response.status == 200, await response.text()
    found: list[str] = (await response.json())["identifiers"]
    return found


async def test_each_public_host_is_served_from_its_own_mirror(
    client: Client,
    git_root: Path,
    github: PublicHost,
    gitlab: PublicHost,
    git_server: GitHttpServer,
) -> None:
    publish(git_root, "github/apple/swift-numerics")
    publish(git_root, "gitlab/gitlab-org/swift-tool")
    publish(git_root, "corp/acme/Widgets")

    assert await identifiers(client, github.url("apple/swift-numerics.git")) == [
        "apple.swift-numerics"
    ]
    assert await identifiers(client, f"git@{gitlab.address}:gitlab-org/swift-tool.git") == [
        "gitlab-org.swift-tool"
    ]
    assert await identifiers(client, f"{git_server.url}/corp/acme/Widgets") == ["acme.Widgets"]
    for identity in ("apple/swift-numerics", "gitlab-org/swift-tool", "acme/Widgets"):
        listed = await client.get(f"/{identity}", headers=JSON_ACCEPT)
        assert listed.status == 200, await listed.text()
        archive = await client.get(f"/{identity}/1.0.0.zip", headers=ZIP_ACCEPT)
        assert archive.status == 200, await archive.text()
    metadata = await (await client.get("/gitlab-org/swift-tool/1.0.0", headers=JSON_ACCEPT)).json()
    assert metadata["metadata"]["repositoryURLs"][:2] == [
        gitlab.url("gitlab-org/swift-tool"),
        f"git@{gitlab.address}:gitlab-org/swift-tool.git",
    ]
    assert github.connections == gitlab.connections == 0


@pytest.mark.usefixtures("structlog_defaults")
async def test_an_identity_served_from_one_host_is_never_given_to_another(
    client: Client, git_root: Path, github: PublicHost, gitlab: PublicHost
) -> None:
    # foo/bar exists on both hosts: as `foo.bar` the proxy serves GitHub's,
    # which routing asks first, so GitLab's URL must stay a git dependency.
    served = publish(git_root, "github/foo/bar")
    publish(git_root, "gitlab/foo/bar")
    publish(git_root, "gitlab/baz/qux")

    with structlog.testing.capture_logs() as logs:
        assert await identifiers(client, gitlab.url("foo/bar")) == []
    assert await identifiers(client, github.url("foo/bar")) == ["foo.bar"]
    # Only on GitLab: GitHub's mirror does not know it, so GitLab serves it.
    assert await identifiers(client, gitlab.url("baz/qux.git")) == ["baz.qux"]

    metadata = await (await client.get("/foo/bar/1.0.0", headers=JSON_ACCEPT)).json()
    assert metadata["metadata"]["sourceControl"]["commit"] == served.rev_parse("1.0.0")
    archive = await (await client.get("/baz/qux/1.0.0.zip", headers=ZIP_ACCEPT)).read()
    assert hashlib.sha256(archive).hexdigest()
    [shadowed] = [log for log in logs if log["event"] == "identity_shadowed"]
    assert shadowed["package"] == "foo.bar"
    assert shadowed["served_by"] == "github"
    assert shadowed["answered_by"] == ["gitlab"]
    assert github.connections == gitlab.connections == 0
