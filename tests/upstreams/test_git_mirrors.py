"""Public identity, private source: a git upstream answers for a public host and
fetches from a mirror of it under another host and path.

The public host is a loopback listener that counts connections (it must see
none); the mirror is the smart-HTTP server, with repositories under `github/`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.contracts.upstream import ContractSubject, Files, UpstreamContract
from tests.support.git_http import GitHttpServer
from tests.support.git_repos import GitRepo
from tests.support.public_host import PublicHost
from tests.support.storage import Fetched, fetch_to
from tests.upstreams.conftest import MakeUpstream
from upstreams.errors import PackageNotFound
from upstreams.git import GitUpstream, PackageLocation
from upstreams.model import PackageId, Version

MANIFEST = "// swift-tools-version:5.8\nimport PackageDescription\n"
LINKED_LIST = PackageId("mona", "LinkedList")
T0 = 1_700_000_000


@pytest.fixture
def public() -> Iterator[PublicHost]:
    with PublicHost() as host:
        yield host


def publish(root: Path, path: str, *tags: str) -> GitRepo:
    repo = GitRepo.init(root / path)
    repo.write("Package.swift", MANIFEST)
    for index, tag in enumerate(tags):
        repo.write("VERSION", tag)
        repo.commit(tag, when=T0 + index)
        repo.tag(tag)
    return repo


@pytest.fixture
def mirrored(
    make_upstream: MakeUpstream, public: PublicHost, git_server: GitHttpServer
) -> GitUpstream:
    return make_upstream(
        template=public.url("{scope}/{name}"),
        fetch_template=f"{git_server.url}/github/{{scope}}/{{name}}.git",
    )


async def fetch(upstream: GitUpstream, version: str, tmp_path: Path) -> Fetched:
    archive = tmp_path / f"{version}-{time.monotonic_ns()}.zip"
    return await fetch_to(upstream, LINKED_LIST, Version.parse(version), archive)


async def test_fetches_from_the_mirror_and_answers_for_the_public_location(
    mirrored: GitUpstream,
    public: PublicHost,
    git_root: Path,
    git_server: GitHttpServer,
    tmp_path: Path,
) -> None:
    repo = publish(git_root, "github/mona/LinkedList", "1.0.0", "1.1.0")

    listing = await mirrored.list_releases(LINKED_LIST)
    release = await fetch(mirrored, "1.1.0", tmp_path)

    mirror = f"{git_server.url}/github/mona/LinkedList.git"
    urls = (public.url("mona/LinkedList"), f"git@{public.address}:mona/LinkedList.git")
    assert listing.versions == (Version.parse("1.1.0"), Version.parse("1.0.0"))
    # Public URLs first, so SwiftPM de-duplicates against manifests naming them.
    assert listing.repository_urls == (*urls, mirror)
    assert release.metadata["repositoryURLs"] == [*urls, mirror]
    assert release.provenance.url == mirror
    assert release.provenance.commit == repo.rev_parse("1.1.0")
    assert public.connections == 0


@pytest.mark.parametrize(
    "form",
    [
        "https://{public}/mona/LinkedList",
        "https://{public}/mona/LinkedList.git",
        "https://{public}/mona/LinkedList/",
        "http://{public}/mona/LinkedList.GIT",
        "https://user:token@{public}/mona/LinkedList.git",
        "ssh://git@{public}/mona/LinkedList.git",
        "git@{address}:mona/LinkedList.git",
        "https://{address}/mona/LinkedList",  # default port: the same location
        "https://{public}/MONA/linkedlist",  # any case, once the identity is bound
        "{mirror}/github/mona/LinkedList.git",  # the mirror names it too
        "{mirror}/github/mona/LinkedList",
    ],
)
async def test_every_form_of_the_public_location_maps_to_the_identity(
    mirrored: GitUpstream,
    public: PublicHost,
    git_root: Path,
    git_server: GitHttpServer,
    form: str,
) -> None:
    publish(git_root, "github/mona/LinkedList", "1.0.0")
    assert await mirrored.identities_for(public.url("mona/LinkedList.git")) == [LINKED_LIST]
    url = form.format(public=public.host, address=public.address, mirror=git_server.url)

    found = await mirrored.identities_for(url)

    # Identities compare case-insensitively (SE-0292 3.6).
    assert found == [LINKED_LIST]
    assert mirrored.claims(url) == found
    assert public.connections == 0


async def test_unknown_repositories_and_other_hosts_have_no_identities(
    mirrored: GitUpstream, public: PublicHost, git_root: Path, git_server: GitHttpServer
) -> None:
    publish(git_root, "github/mona/LinkedList", "1.0.0")

    # Not on the mirror: the URL stays a git dependency.
    assert await mirrored.identities_for(public.url("mona/Missing.git")) == []
    # The mirror's own root and other hosts are not this upstream's.
    assert await mirrored.identities_for(f"{git_server.url}/mona/LinkedList.git") == []
    assert await mirrored.identities_for("https://gitlab.invalid/mona/LinkedList.git") == []
    with pytest.raises(PackageNotFound) as caught:
        await mirrored.list_releases(PackageId("mona", "Missing"))
    assert "github/mona/Missing.git" in caught.value.detail
    assert public.connections == 0


async def test_overrides_take_the_same_shape(
    make_upstream: MakeUpstream,
    public: PublicHost,
    git_root: Path,
    git_server: GitHttpServer,
    tmp_path: Path,
) -> None:
    publish(git_root, "github/old-team/foo-repo", "1.0.0")
    publish(git_root, "elsewhere/bar", "2.0.0")
    foo_public = public.url("old-team/foo-repo.git")
    bar_public = "https://gitlab.invalid/x/bar.git"
    upstream = make_upstream(
        template=public.url("{scope}/{name}"),
        fetch_template=f"{git_server.url}/github/{{scope}}/{{name}}.git",
        overrides={
            # A public URL of the template's shape is fetched through the mirror...
            "acme.Foo": PackageLocation(foo_public),
            # ...anything else from where it says.
            "acme.Bar": PackageLocation(bar_public, f"{git_server.url}/elsewhere/bar.git"),
        },
    )
    foo, bar = PackageId("acme", "Foo"), PackageId("acme", "Bar")

    foo_listing = await upstream.list_releases(foo)
    bar_release = await fetch_to(upstream, bar, Version.parse("2.0.0"), tmp_path / "bar.zip")

    assert foo_listing.versions == (Version.parse("1.0.0"),)
    assert foo_listing.repository_urls[0] == foo_public
    assert foo_listing.repository_urls[-1] == f"{git_server.url}/github/old-team/foo-repo.git"
    assert bar_release.metadata["repositoryURLs"][0] == bar_public
    assert bar_release.provenance.url == f"{git_server.url}/elsewhere/bar.git"
    for url in (foo_public, "git@127.0.0.2:old-team/foo-repo", foo_listing.repository_urls[-1]):
        assert await upstream.identities_for(url) == [foo]
    assert await upstream.identities_for("https://GitLab.invalid/x/bar") == [bar]
    # The template no longer answers for the identities the overrides name.
    assert await upstream.identities_for(public.url("acme/Foo")) == []
    assert public.connections == 0


@pytest.fixture
def upstream_fixture(
    git_root: Path, git_server: GitHttpServer, mirrored: GitUpstream, public: PublicHost
) -> ContractSubject:
    repos: dict[str, GitRepo] = {}
    commits = iter(range(T0, T0 + 100_000, 3600))

    def publish_files(package: PackageId, version: str, files: Files) -> None:
        repo = repos.get(package.key)
        if repo is None:
            path = git_root / "github" / package.scope / package.name
            repo = repos[package.key] = GitRepo.init(path)
        for path_name, content in files.items():
            repo.write(path_name, content)
        repo.commit(f"Release {version}", when=next(commits))
        repo.tag(version)

    def repository_url(package: PackageId) -> str:
        return public.url(f"{package.scope}/{package.name}.git")

    return ContractSubject(mirrored, publish_files, repository_url)


class TestMirroredGitUpstreamContract(UpstreamContract):
    """A mirrored upstream is an `Upstream` like any other, speaking public URLs."""
