"""The contract every `Upstream` implementation passes.

Use it by subclassing `UpstreamContract` in a `Test*` class and providing a
fixture named `upstream_fixture` that returns a `ContractSubject`: the upstream
under test, a way to publish a version with given files where that upstream
will find it, and (optionally) the repository URL it serves a package from.
"""

from __future__ import annotations

import hashlib
import inspect
import io
import zipfile
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.support.storage import FileSink, fetch_to
from upstreams.base import Upstream
from upstreams.errors import PackageNotFound, ReleaseNotFound
from upstreams.model import PackageId, Version

Files = Mapping[str, str | bytes]
Publish = Callable[[PackageId, str, Files], Awaitable[None] | None]

MANIFEST = b'// swift-tools-version:5.9\nimport PackageDescription\n\nlet package = Package(\n    name: "LinkedList",\n    targets: [.target(name: "LinkedList")]\n)\n'  # noqa: E501
SOURCE = b"public struct LinkedList {}\n"


class ContractSubject(NamedTuple):
    upstream: Upstream
    publish: Publish
    # The repository URL the upstream serves a package from, when it has one.
    repository_url: Callable[[PackageId], str] | None = None


def package_files(extra: Files | None = None) -> dict[str, str | bytes]:
    files: dict[str, str | bytes] = {
        "Package.swift": MANIFEST,
        "Sources/LinkedList/LinkedList.swift": SOURCE,
    }
    files.update(extra or {})
    return files


async def publish(subject: ContractSubject, package: PackageId, version: str, files: Files) -> None:
    result = subject.publish(package, version, files)
    if inspect.isawaitable(result):
        await result


class UpstreamContract:
    package = PackageId("mona", "LinkedList")

    async def test_name_is_set(self, upstream_fixture: ContractSubject) -> None:
        assert upstream_fixture.upstream.name

    async def test_lists_published_versions_newest_first(
        self, upstream_fixture: ContractSubject
    ) -> None:
        await publish(upstream_fixture, self.package, "1.0.0", package_files())
        await publish(upstream_fixture, self.package, "1.1.0", package_files({"b.txt": "b"}))

        listing = await upstream_fixture.upstream.list_releases(self.package)

        assert listing.package == self.package
        assert listing.versions[:2] == (Version.parse("1.1.0"), Version.parse("1.0.0"))
        assert list(listing.versions) == sorted(listing.versions, reverse=True)

    async def test_fetch_writes_an_archive_with_one_top_level_directory(
        self, upstream_fixture: ContractSubject, tmp_path: Path
    ) -> None:
        await publish(upstream_fixture, self.package, "1.0.0", package_files())
        archive = tmp_path / "release.zip"

        sink = FileSink(archive)
        release = await upstream_fixture.upstream.fetch_release(
            self.package, Version.parse("1.0.0"), sink
        )

        assert release.package == self.package
        assert release.version == Version.parse("1.0.0")
        assert sink.size == archive.stat().st_size
        assert sink.digest == hashlib.sha256(archive.read_bytes()).hexdigest()
        assert release.provenance.upstream == upstream_fixture.upstream.name
        with zipfile.ZipFile(io.BytesIO(archive.read_bytes())) as zipped:
            names = zipped.namelist()
            tops = {name.split("/", 1)[0] for name in names}
            assert len(tops) == 1, names
            (top,) = tops
            assert zipped.read(f"{top}/Package.swift") == MANIFEST
            assert zipped.read(f"{top}/Sources/LinkedList/LinkedList.swift") == SOURCE
        manifests = {manifest.filename: manifest for manifest in release.manifests}
        assert manifests["Package.swift"].content == MANIFEST
        assert manifests["Package.swift"].tools_version == "5.9"

    async def test_fetch_twice_gives_the_same_bytes(
        self, upstream_fixture: ContractSubject, tmp_path: Path
    ) -> None:
        await publish(upstream_fixture, self.package, "1.0.0", package_files())
        first, second = tmp_path / "first.zip", tmp_path / "second.zip"
        upstream = upstream_fixture.upstream

        await fetch_to(upstream, self.package, Version.parse("1.0.0"), first)
        await fetch_to(upstream, self.package, Version.parse("1.0.0"), second)

        assert first.read_bytes() == second.read_bytes()

    async def test_unknown_package_is_not_found(self, upstream_fixture: ContractSubject) -> None:
        with pytest.raises(PackageNotFound) as caught:
            await upstream_fixture.upstream.list_releases(PackageId("nobody", "Nothing"))
        assert caught.value.upstream == upstream_fixture.upstream.name

    async def test_fetch_of_unknown_package_is_not_found(
        self, upstream_fixture: ContractSubject, tmp_path: Path
    ) -> None:
        with pytest.raises(PackageNotFound):
            await fetch_to(
                upstream_fixture.upstream,
                PackageId("nobody", "Nothing"),
                Version.parse("1.0.0"),
                tmp_path / "a.zip",
            )

    async def test_fetch_of_unknown_version_is_release_not_found(
        self, upstream_fixture: ContractSubject, tmp_path: Path
    ) -> None:
        await publish(upstream_fixture, self.package, "1.0.0", package_files())
        with pytest.raises(ReleaseNotFound):
            await fetch_to(
                upstream_fixture.upstream, self.package, Version.parse("9.9.9"), tmp_path / "a.zip"
            )

    async def test_unknown_url_has_no_identities(self, upstream_fixture: ContractSubject) -> None:
        found = await upstream_fixture.upstream.identities_for(
            "https://unknown.invalid/someone/something.git"
        )
        assert found == []

    async def test_repository_url_maps_back_to_the_identity(
        self, upstream_fixture: ContractSubject
    ) -> None:
        if upstream_fixture.repository_url is None:
            pytest.skip("this upstream serves packages without repository URLs")
        await publish(upstream_fixture, self.package, "1.0.0", package_files())
        url = upstream_fixture.repository_url(self.package)

        assert await upstream_fixture.upstream.identities_for(url) == [self.package]

    async def test_serves_is_decided_without_io(self, upstream_fixture: ContractSubject) -> None:
        assert isinstance(upstream_fixture.upstream.serves(self.package), bool)

    async def test_claims_are_decided_without_io_and_agree_with_identities(
        self, upstream_fixture: ContractSubject
    ) -> None:
        upstream = upstream_fixture.upstream
        assert upstream.claims("https://unknown.invalid/someone/something.git") in (None, [])
        if upstream_fixture.repository_url is None:
            return
        await publish(upstream_fixture, self.package, "1.0.0", package_files())
        url = upstream_fixture.repository_url(self.package)
        claimed = upstream.claims(url)
        # An upstream that can tell claims exactly what it would answer.
        assert claimed is None or claimed == await upstream.identities_for(url)

    async def test_an_unknown_release_writes_nothing_to_the_sink(
        self, upstream_fixture: ContractSubject, tmp_path: Path
    ) -> None:
        await publish(upstream_fixture, self.package, "1.0.0", package_files())
        sink = FileSink(tmp_path / "never.zip")

        with pytest.raises(ReleaseNotFound):
            await upstream_fixture.upstream.fetch_release(
                self.package, Version.parse("9.9.9"), sink
            )

        assert sink.size == 0
