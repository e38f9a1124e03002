"""GitUpstream against real repositories served over smart HTTP on loopback."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.support.git_http import GitHttpServer
from tests.support.git_repos import GitRepo
from tests.support.storage import Fetched, fetch_to
from tests.upstreams.conftest import MakeUpstream
from upstreams.errors import (
    InvalidRelease,
    PackageNotFound,
    ReleaseNotFound,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from upstreams.git import GitUpstream
from upstreams.model import PackageId, Version

MANIFEST = b'// swift-tools-version:5.8\nimport PackageDescription\n\nlet package = Package(name: "LinkedList")\n'  # noqa: E501
MANIFEST_59 = b'// swift-tools-version: 5.9\nimport PackageDescription\n\nlet package = Package(name: "LinkedList")\n'  # noqa: E501
LINKED_LIST = PackageId("mona", "LinkedList")
T0 = 1_700_000_000


@pytest.fixture
def repo(git_root: Path) -> GitRepo:
    repo = GitRepo.init(git_root / "mona" / "LinkedList")
    repo.write("Package.swift", MANIFEST)
    repo.write("Sources/LinkedList/LinkedList.swift", "public struct LinkedList {}\n")
    repo.write("README.md", "# LinkedList\n")
    return repo


@pytest.fixture
def upstream(make_upstream: MakeUpstream) -> GitUpstream:
    return make_upstream()


def entries(archive: Path) -> list[zipfile.ZipInfo]:
    with zipfile.ZipFile(archive) as zipped:
        return zipped.infolist()


def contents(archive: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(archive) as zipped:
        return {info.filename: zipped.read(info) for info in zipped.infolist()}


async def fetch(
    upstream: GitUpstream, version: str, tmp_path: Path, package: PackageId = LINKED_LIST
) -> Fetched:
    archive = tmp_path / f"{package.key}-{version}-{time.monotonic_ns()}.zip"
    return await fetch_to(upstream, package, Version.parse(version), archive)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (kernel backlog) but never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


class _Failing(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def failing_server() -> Iterator[str]:
    """An HTTP server that answers every request with 503."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Failing)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# --- tags -------------------------------------------------------------------------------


async def test_versions_are_semver_tags_with_optional_v_prefix(
    repo: GitRepo, upstream: GitUpstream, git_server: GitHttpServer
) -> None:
    repo.commit("one", when=T0)
    for tag in ["1.0.0", "v1.1.0", "V1.2.0", "2.0.0-beta.1", "2.0.0-rc.1+build.5", "3.0.0+meta"]:
        repo.tag(tag)
    for ignored in ["1.0", "v1.2.3.4", "latest", "release-1.0.0", "01.0.0", "1.0.0-"]:
        repo.tag(ignored)

    listing = await upstream.list_releases(LINKED_LIST)

    assert [str(v) for v in listing.versions] == [
        "3.0.0+meta",
        "2.0.0-rc.1+build.5",
        "2.0.0-beta.1",
        "1.2.0",
        "1.1.0",
        "1.0.0",
    ]
    url = f"{git_server.url}/mona/LinkedList.git"
    assert listing.repository_urls == (url, "git@127.0.0.1:mona/LinkedList.git")


async def test_bare_tag_wins_over_v_prefixed_tag(
    repo: GitRepo, upstream: GitUpstream, tmp_path: Path
) -> None:
    prefixed = repo.commit("prefixed", when=T0)
    repo.tag("v1.2.3")
    repo.write("marker.txt", "bare")
    bare = repo.commit("bare", when=T0 + 60)
    repo.tag("1.2.3")
    assert prefixed != bare

    listing = await upstream.list_releases(LINKED_LIST)
    release = await fetch(upstream, "1.2.3", tmp_path)

    assert listing.versions == (Version.parse("1.2.3"),)
    assert release.provenance.commit == bare
    assert release.metadata["sourceControl"] == {"tag": "1.2.3", "commit": bare}


async def test_prerelease_and_build_metadata_versions_fetch(
    repo: GitRepo, upstream: GitUpstream, tmp_path: Path
) -> None:
    sha = repo.commit("one", when=T0)
    repo.tag("v2.0.0-rc.1+build.5")

    release = await fetch(upstream, "2.0.0-rc.1+build.5", tmp_path)

    assert release.provenance.commit == sha
    assert release.metadata["sourceControl"]["tag"] == "v2.0.0-rc.1+build.5"


async def test_unknown_version_is_release_not_found(
    repo: GitRepo, upstream: GitUpstream, tmp_path: Path
) -> None:
    repo.commit("one", when=T0)
    repo.tag("1.0.0")
    with pytest.raises(ReleaseNotFound):
        await fetch(upstream, "1.0.1", tmp_path)


# --- archives ---------------------------------------------------------------------------


async def test_archive_layout_is_canonical(
    repo: GitRepo, upstream: GitUpstream, tmp_path: Path
) -> None:
    repo.write("scripts/build.sh", "#!/bin/sh\necho hi\n", executable=True)
    repo.write("Sources/LinkedList/Node.swift", "struct Node {}\n")
    repo.commit("one", when=T0 + 1)
    repo.tag("1.0.0")

    release = await fetch(upstream, "1.0.0", tmp_path)
    infos = entries(release.archive)

    names = [info.filename for info in infos]
    assert names == sorted(names)
    assert names == [
        "mona.linkedlist/Package.swift",
        "mona.linkedlist/README.md",
        "mona.linkedlist/Sources/LinkedList/LinkedList.swift",
        "mona.linkedlist/Sources/LinkedList/Node.swift",
        "mona.linkedlist/scripts/build.sh",
    ]
    for info in infos:
        assert info.date_time == (2023, 11, 14, 22, 13, 20)  # T0 + 1, UTC, 2-second rounding
        assert info.create_system == 3
        assert info.compress_type == zipfile.ZIP_DEFLATED
        assert info.extra == b""
        assert not info.is_dir()
        assert ".git/" not in info.filename
        expected = 0o755 if info.filename.endswith(".sh") else 0o644
        assert info.external_attr >> 16 == 0o100000 | expected
    with zipfile.ZipFile(release.archive) as zipped:
        assert zipped.comment == b""
        assert zipped.testzip() is None


async def test_archive_is_byte_identical_across_fetches_mirrors_and_processes(
    repo: GitRepo, make_upstream: MakeUpstream, tmp_path: Path, git_server: GitHttpServer
) -> None:
    repo.write("scripts/run.sh", "#!/bin/sh\n", executable=True)
    repo.symlink("Docs", "Sources")
    repo.commit("one", when=T0)
    repo.tag("1.0.0", annotated=True)
    first_mirror = make_upstream(mirror_root=tmp_path / "a")

    once = await fetch(first_mirror, "1.0.0", tmp_path)
    twice = await fetch(first_mirror, "1.0.0", tmp_path)
    elsewhere = await fetch(make_upstream(mirror_root=tmp_path / "b"), "1.0.0", tmp_path)
    other_process = tmp_path / "process.zip"
    script = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from tests.support.storage import embedded_index, fetch_to\n"
        "from upstreams.git import GitUpstream\n"
        "from upstreams.model import PackageId, Version\n"
        "with embedded_index(Path(sys.argv[2]) / 'index') as names:\n"
        "    u = GitUpstream(name='git', url_template=sys.argv[1], mirror_root=Path(sys.argv[2]),"
        " overrides={}, timeout=5, names=names)\n"
        "    async def main():\n"
        "        try:\n"
        "            await fetch_to(u, PackageId('mona', 'LinkedList'), Version.parse('1.0.0'),"
        " Path(sys.argv[3]))\n"
        "        finally:\n"
        "            await u.close()\n"
        "    asyncio.run(main())\n"
    )
    # A separate interpreter (other hash seed): the server must keep serving meanwhile.
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        f"{git_server.url}/{{scope}}/{{name}}.git",
        str(tmp_path / "c"),
        str(other_process),
        cwd=Path(__file__).parents[2],
        env={**os.environ, "PYTHONHASHSEED": "12345"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()

    reference = once.archive.read_bytes()
    assert twice.archive.read_bytes() == reference
    assert elsewhere.archive.read_bytes() == reference
    assert other_process.read_bytes() == reference


async def test_timestamps_before_1980_are_clamped(
    repo: GitRepo, upstream: GitUpstream, tmp_path: Path
) -> None:
    repo.commit("old", when=100)
    repo.tag("0.1.0")

    release = await fetch(upstream, "0.1.0", tmp_path)

    assert {info.date_time for info in entries(release.archive)} == {(1980, 1, 1, 0, 0, 0)}
    assert release.metadata["originalPublicationTime"] == "1970-01-01T00:01:40Z"


async def test_symlinks_inside_are_replaced_and_outside_dropped(
    repo: GitRepo, upstream: GitUpstream, tmp_path: Path
) -> None:
    repo.write("Sources/Core/A.swift", "let a = 1\n")
    repo.write("Sources/Core/Nested/B.swift", "let b = 2\n")
    repo.write("tool.sh", "#!/bin/sh\n", executable=True)
    repo.symlink("Sources/Alias", "Core")  # directory link
    repo.symlink("LICENSE", "README.md")  # file link
    repo.symlink("chain", "LICENSE")  # link to a link
    repo.symlink("run", "tool.sh")  # keeps the executable bit of its target
    repo.symlink("Sources/Core/Up.swift", "../../README.md")  # `..` inside the package
    repo.symlink("escape", "../../outside.txt")  # leaves the package
    repo.symlink("absolute", "/etc/passwd")
    repo.symlink("dangling", "missing.txt")
    repo.symlink("Sources/Core/loop", "..")  # a cycle
    repo.symlink("self", "self")
    repo.commit("links", when=T0)
    repo.tag("1.0.0")

    release = await fetch(upstream, "1.0.0", tmp_path)
    files = contents(release.archive)
    modes = {info.filename: info.external_attr >> 16 for info in entries(release.archive)}

    top = "mona.linkedlist/"
    readme = b"# LinkedList\n"
    assert files[top + "LICENSE"] == readme
    assert files[top + "chain"] == readme
    assert files[top + "Sources/Core/Up.swift"] == readme
    assert files[top + "Sources/Alias/A.swift"] == b"let a = 1\n"
    assert files[top + "Sources/Alias/Nested/B.swift"] == b"let b = 2\n"
    assert files[top + "Sources/Alias/Up.swift"] == readme
    assert files[top + "run"] == b"#!/bin/sh\n"
    assert modes[top + "run"] == 0o100755
    assert modes[top + "LICENSE"] == 0o100644
    for dropped in ["escape", "absolute", "dangling", "Sources/Core/loop", "self"]:
        assert not any(name.startswith(top + dropped) for name in files), dropped


async def test_submodules_are_reported_not_archived(
    repo: GitRepo, upstream: GitUpstream, tmp_path: Path
) -> None:
    gitlink = "1234567890abcdef1234567890abcdef12345678"
    repo.git("update-index", "--add", "--cacheinfo", f"160000,{gitlink},Vendor/Dependency")
    repo.commit("with submodule", when=T0)
    repo.tag("1.0.0")

    release = await fetch(upstream, "1.0.0", tmp_path)

    assert release.metadata["sourceControl"]["submodules"] == ["Vendor/Dependency"]
    assert not any("Vendor" in name for name in contents(release.archive))


async def test_tree_without_package_swift_is_invalid(
    repo: GitRepo, upstream: GitUpstream, tmp_path: Path
) -> None:
    repo.remove("Package.swift")
    repo.write("Sub/Package.swift", MANIFEST)
    repo.commit("no manifest", when=T0)
    repo.tag("1.0.0")

    with pytest.raises(InvalidRelease) as caught:
        await fetch(upstream, "1.0.0", tmp_path)
    assert "Package.swift" in caught.value.detail


async def test_file_names_that_are_not_utf8_make_the_release_invalid(
    repo: GitRepo, upstream: GitUpstream, tmp_path: Path
) -> None:
    # git stores names as bytes; a zip entry name is UTF-8 (APPNOTE 4.4.4, bit 11).
    repo.write(os.fsdecode(b"Sources/LinkedList/\xff.swift"), "let x = 1\n")
    repo.commit("latin-1 name", when=T0)
    repo.tag("1.0.0")

    with pytest.raises(InvalidRelease) as caught:
        await fetch(upstream, "1.0.0", tmp_path)
    assert "not UTF-8" in caught.value.detail
    assert "Sources/LinkedList/" in caught.value.detail


# --- manifests and metadata -------------------------------------------------------------


async def test_manifests_are_byte_for_byte_with_tools_versions(
    repo: GitRepo, upstream: GitUpstream, tmp_path: Path
) -> None:
    repo.write("Package@swift-5.9.swift", MANIFEST_59)
    repo.write("Package@swift-6.swift", b"// swift-tools-version:6.0\r\n")
    repo.write("Sources/Package@swift-5.10.swift", b"not a manifest")
    repo.commit("manifests", when=T0)
    repo.tag("1.0.0")

    release = await fetch(upstream, "1.0.0", tmp_path)
    files = contents(release.archive)

    manifests = {m.filename: m for m in release.manifests}
    assert sorted(manifests) == [
        "Package.swift",
        "Package@swift-5.9.swift",
        "Package@swift-6.swift",
    ]
    assert manifests["Package.swift"].tools_version == "5.8"
    assert manifests["Package@swift-5.9.swift"].tools_version == "5.9"
    assert manifests["Package@swift-6.swift"].tools_version == "6.0"
    for manifest in release.manifests:
        assert files[f"mona.linkedlist/{manifest.filename}"] == manifest.content
    assert manifests["Package@swift-5.9.swift"].content == MANIFEST_59


async def test_metadata_of_lightweight_tag_uses_commit_time(
    repo: GitRepo, upstream: GitUpstream, tmp_path: Path, git_server: GitHttpServer
) -> None:
    sha = repo.commit("one", when=T0)
    repo.tag("1.0.0")

    release = await fetch(upstream, "1.0.0", tmp_path)

    url = f"{git_server.url}/mona/LinkedList.git"
    assert release.metadata == {
        "repositoryURLs": [url, "git@127.0.0.1:mona/LinkedList.git"],
        "originalPublicationTime": "2023-11-14T22:13:20Z",
        "sourceControl": {"tag": "1.0.0", "commit": sha},
    }
    assert release.provenance.upstream == "git"
    assert release.provenance.url == url
    assert release.provenance.commit == sha


async def test_annotated_tag_is_peeled_and_uses_tagger_time(
    repo: GitRepo, upstream: GitUpstream, tmp_path: Path
) -> None:
    sha = repo.commit("one", when=T0)
    repo.tag("v1.1.0", annotated=True, when=T0 + 3600)

    release = await fetch(upstream, "1.1.0", tmp_path)

    assert release.provenance.commit == sha
    assert release.metadata["sourceControl"] == {"tag": "v1.1.0", "commit": sha}
    assert release.metadata["originalPublicationTime"] == "2023-11-14T23:13:20Z"
    # Entry times are the commit's, not the tagger's.
    assert {info.date_time for info in entries(release.archive)} == {(2023, 11, 14, 22, 13, 20)}


# --- identities -------------------------------------------------------------------------


async def test_dotted_repository_names_map_through_identities(
    git_root: Path, make_upstream: MakeUpstream, git_server: GitHttpServer, tmp_path: Path
) -> None:
    grdb = GitRepo.init(git_root / "groue" / "GRDB.swift")
    grdb.write("Package.swift", MANIFEST)
    grdb.commit("one", when=T0)
    grdb.tag("v6.0.0")
    upstream = make_upstream()

    found = await upstream.identities_for(f"{git_server.url}/groue/GRDB.swift.git")
    assert found == [PackageId("groue", "GRDB_swift")]
    assert [str(package) for package in found] == ["groue.GRDB_swift"]

    git_server.reset_counters()
    release = await fetch(upstream, "6.0.0", tmp_path, PackageId("groue", "grdb_swift"))
    assert release.provenance.url == f"{git_server.url}/groue/GRDB.swift.git"
    # The remembered mapping is used directly: one ls-remote, no miss first.
    assert git_server.ref_advertisements == 2  # ls-remote + the fetch's own discovery

    # Remembered across restarts: a new upstream on the same mirror root.
    restarted = make_upstream()
    assert await restarted.repository_url(PackageId("GROUE", "GRDB_SWIFT")) == (
        f"{git_server.url}/groue/GRDB.swift.git"
    )


async def test_underscore_name_falls_back_to_dotted_repository(
    git_root: Path, make_upstream: MakeUpstream
) -> None:
    grdb = GitRepo.init(git_root / "groue" / "GRDB.swift")
    grdb.write("Package.swift", MANIFEST)
    grdb.commit("one", when=T0)
    grdb.tag("6.0.0")

    listing = await make_upstream().list_releases(PackageId("groue", "GRDB_swift"))

    assert listing.versions == (Version.parse("6.0.0"),)
    assert listing.repository_urls[0].endswith("/groue/GRDB.swift.git")


async def test_a_learned_identity_is_never_repointed(
    upstream: GitUpstream, git_server: GitHttpServer, git_root: Path
) -> None:
    # Both repositories map to the identity `mona.Linked_List`.
    for repository in ("Linked.List", "Linked_List"):
        made = GitRepo.init(git_root / "mona" / repository)
        made.write("Package.swift", MANIFEST)
        made.commit("one", when=T0)
    first = await upstream.identities_for(f"{git_server.url}/mona/Linked.List.git")
    assert [str(p) for p in first] == ["mona.Linked_List"]

    assert await upstream.identities_for(f"{git_server.url}/mona/Linked_List.git") == []
    assert await upstream.repository_url(PackageId("mona", "Linked_List")) == (
        f"{git_server.url}/mona/Linked.List.git"
    )
    # The repository it is bound to still answers, in any URL form.
    again = await upstream.identities_for("git@127.0.0.1:mona/Linked.List.GIT")
    assert [str(p) for p in again] == ["mona.Linked_List"]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("{base}/mona/LinkedList.git", [LINKED_LIST]),
        ("{base}/mona/LinkedList", [LINKED_LIST]),
        ("{base}/mona/LinkedList.GIT", [LINKED_LIST]),
        # The loopback host is case-sensitive: a misspelt path names no repository.
        ("{base}/Mona/linkedlist/", []),
        ("{base}/mona/NoSuchRepo.git", []),
        ("git@127.0.0.1:mona/LinkedList.git", [LINKED_LIST]),
        ("ssh://git@127.0.0.1/mona/LinkedList.git", [LINKED_LIST]),
        ("https://127.0.0.1:9/mona/LinkedList", [LINKED_LIST]),
        ("https://github.com/mona/LinkedList.git", []),
        ("{base}/mona/LinkedList/tree/main", []),
        ("{base}/mona", []),
        ("{base}/mo_na/LinkedList.git", []),
        ("{base}/mona/Linked+List.git", []),
    ],
)
async def test_identities_for_url_forms(
    upstream: GitUpstream,
    git_server: GitHttpServer,
    repo: GitRepo,
    url: str,
    expected: list[PackageId],
) -> None:
    found = await upstream.identities_for(url.format(base=git_server.url))

    assert found == expected
    assert [str(p) for p in found] == [str(p) for p in expected]


async def test_overrides_win_and_are_case_insensitive(
    git_root: Path, make_upstream: MakeUpstream, git_server: GitHttpServer, tmp_path: Path
) -> None:
    other = GitRepo.init(git_root / "elsewhere" / "foo-repo")
    other.write("Package.swift", MANIFEST)
    sha = other.commit("one", when=T0)
    other.tag("1.0.0")
    override_url = f"{git_server.url}/elsewhere/foo-repo.git"
    upstream = make_upstream(overrides={"acme.Foo": override_url})

    listing = await upstream.list_releases(PackageId("ACME", "foo"))
    release = await fetch(upstream, "1.0.0", tmp_path, PackageId("acme", "Foo"))

    assert listing.versions == (Version.parse("1.0.0"),)
    assert release.provenance.commit == sha
    assert await upstream.identities_for(override_url) == [PackageId("acme", "Foo")]
    assert await upstream.identities_for(f"{git_server.url}/acme/Foo.git") == []


# --- mirrors ----------------------------------------------------------------------------


def pack_object_counts(mirror: Path) -> list[int]:
    counts = []
    for index in sorted((mirror / "objects" / "pack").glob("*.idx")):
        listing = subprocess.run(
            ["git", "show-index"], input=index.read_bytes(), check=True, capture_output=True
        )
        counts.append(len(listing.stdout.splitlines()))
    return counts


async def test_fetches_are_incremental_into_one_mirror(
    repo: GitRepo, make_upstream: MakeUpstream, tmp_path: Path, git_root: Path
) -> None:
    for index in range(10):
        repo.write(f"Sources/LinkedList/File{index}.swift", f"let x{index} = {index}\n")
    repo.commit("one", when=T0)
    repo.tag("1.0.0")
    mirrors = tmp_path / "mirrors" / "mirrors"
    # C git's server, as git hosts run it: dulwich's own server ignores the
    # haves of a shallow fetch and sends every object of the tree again.
    with GitHttpServer(git_root, "git") as git_server:
        upstream = make_upstream(template=f"{git_server.url}/{{scope}}/{{name}}.git")

        git_server.reset_counters()
        await fetch(upstream, "1.0.0", tmp_path)
        assert git_server.pack_requests == 1
        (mirror,) = mirrors.iterdir()
        (first_pack,) = pack_object_counts(mirror)

        repo.write("CHANGELOG.md", "1.1.0\n")
        repo.commit("two", when=T0 + 60)
        repo.tag("1.1.0")
        git_server.reset_counters()
        await fetch(upstream, "1.1.0", tmp_path)

        assert git_server.pack_requests == 1
        assert list(mirrors.iterdir()) == [mirror]
        counts = pack_object_counts(mirror)
        assert len(counts) == 2
        new_pack = next(iter(set(counts) - {first_pack}), first_pack)
        # The new commit, its root tree, the new blob (and at most a delta base).
        assert new_pack <= 4 < first_pack

        # Already present: no pack is fetched at all.
        git_server.reset_counters()
        await fetch(upstream, "1.0.0", tmp_path)
        assert git_server.pack_requests == 0


async def test_concurrent_fetches_into_one_mirror(
    repo: GitRepo, upstream: GitUpstream, tmp_path: Path
) -> None:
    shas = []
    for index in range(4):
        repo.write("version.txt", str(index))
        shas.append(repo.commit(f"c{index}", when=T0 + index))
        repo.tag(f"1.0.{index}")

    releases = await asyncio.gather(*(fetch(upstream, f"1.0.{i}", tmp_path) for i in range(4)))

    assert [release.provenance.commit for release in releases] == shas


async def test_moved_tag_builds_from_the_new_commit(
    repo: GitRepo, upstream: GitUpstream, tmp_path: Path
) -> None:
    first = repo.commit("one", when=T0)
    repo.tag("1.0.0")
    before = await fetch(upstream, "1.0.0", tmp_path)

    repo.write("moved.txt", "moved\n")
    second = repo.commit("two", when=T0 + 60)
    repo.tag("1.0.0", force=True)
    after = await fetch(upstream, "1.0.0", tmp_path)

    assert before.provenance.commit == first
    assert after.provenance.commit == second
    assert "mona.linkedlist/moved.txt" in contents(after.archive)
    assert before.archive.read_bytes() != after.archive.read_bytes()


# --- failures ---------------------------------------------------------------------------


async def test_missing_repository_is_package_not_found(
    upstream: GitUpstream, tmp_path: Path
) -> None:
    with pytest.raises(PackageNotFound) as listed:
        await upstream.list_releases(PackageId("mona", "Missing"))
    with pytest.raises(PackageNotFound):
        await fetch(upstream, "1.0.0", tmp_path, PackageId("mona", "Missing"))
    assert listed.value.upstream == "git"
    assert "mona.Missing" in listed.value.detail


def assert_redacted(error: UpstreamError) -> None:
    for text in (str(error), error.detail, error.url or "", repr(error.args)):
        assert "secret" not in text
        assert "user:" not in text


async def test_unreachable_upstream_is_unavailable_quickly_without_credentials(
    make_upstream: MakeUpstream, tmp_path: Path
) -> None:
    port = closed_port()
    upstream = make_upstream(
        name="corp-git",
        template=f"http://user:secret@127.0.0.1:{port}/{{scope}}/{{name}}.git",
        overrides={"acme.Foo": f"https://user:secret@127.0.0.1:{port}/x/foo.git"},
        timeout=2,
    )

    started = time.monotonic()
    with pytest.raises(UpstreamUnavailable) as listed:
        await upstream.list_releases(LINKED_LIST)
    with pytest.raises(UpstreamUnavailable) as fetched:
        await fetch(upstream, "1.0.0", tmp_path, PackageId("acme", "Foo"))
    elapsed = time.monotonic() - started

    assert elapsed < 2
    for caught in (listed, fetched):
        assert caught.value.upstream == "corp-git"
        assert "corp-git" in caught.value.detail
        assert f"127.0.0.1:{port}" in caught.value.detail
        assert_redacted(caught.value)


async def test_silent_upstream_times_out(make_upstream: MakeUpstream, silent_port: int) -> None:
    upstream = make_upstream(
        template=f"http://user:secret@127.0.0.1:{silent_port}/{{scope}}/{{name}}.git",
        timeout=0.5,
    )

    started = time.monotonic()
    with pytest.raises(UpstreamTimeout) as caught:
        await upstream.list_releases(LINKED_LIST)

    assert time.monotonic() - started < 3
    assert_redacted(caught.value)


async def test_server_errors_are_unavailable_not_not_found(
    make_upstream: MakeUpstream, failing_server: str
) -> None:
    upstream = make_upstream(
        template=failing_server.replace("://", "://user:secret@") + "/{scope}/{name}.git"
    )

    with pytest.raises(UpstreamUnavailable) as caught:
        await upstream.list_releases(LINKED_LIST)

    assert not isinstance(caught.value, UpstreamTimeout)
    assert "503" in caught.value.detail
    assert_redacted(caught.value)


async def test_local_path_repositories_work(repo: GitRepo, make_upstream: MakeUpstream) -> None:
    sha = repo.commit("one", when=T0)
    repo.tag("1.0.0")
    upstream = make_upstream(template=str(repo.path.parent.parent) + "/{scope}/{name}")

    listing = await upstream.list_releases(LINKED_LIST)

    assert listing.versions == (Version.parse("1.0.0"),)
    assert listing.repository_urls == (str(repo.path),)
    assert sha


async def test_identity_casing_on_a_case_sensitive_host(
    repo: GitRepo, upstream: GitUpstream, git_server: GitHttpServer
) -> None:
    # Clients send identities in whatever case the depending manifest used.
    with pytest.raises(PackageNotFound):
        await upstream.list_releases(PackageId("Mona", "linkedlist"))
    # A misspelt /identifiers URL binds nothing...
    assert await upstream.identities_for(f"{git_server.url}/MONA/linkedlist.git") == []
    # ...so the correct spelling still works, and is remembered for every spelling.
    right = f"{git_server.url}/mona/LinkedList.git"
    assert (await upstream.list_releases(LINKED_LIST)).repository_urls[0] == right
    listed = await upstream.list_releases(PackageId("MONA", "LINKEDLIST"))
    assert listed.repository_urls[0] == right
    assert await upstream.repository_url(PackageId("mona", "linkedlist")) == (
        f"{git_server.url}/mona/LinkedList.git"
    )
