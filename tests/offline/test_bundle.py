"""Bundles: export a cache filled from real git repositories, import it elsewhere, serve offline.

The corpus (a cache holding mona.Node 1.0.0 and mona.LinkedList 1.0.0 and
1.1.0, and bundles exported from it) is built once per module; tests that
change a data directory work on copies.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import shutil
import socket
import sqlite3
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cache.index import ReleaseList
from proxy.app import create_app
from proxy.offline.bundle_format import BundleError
from proxy.offline.bundle_layout import merge_identities, merge_listings
from proxy.offline.bundle_reader import read_bundle
from proxy.offline.bundle_writer import write_bundle
from proxy.offline.commands import exporter, importer
from proxy.offline.export import Selection
from proxy.offline.import_ import ImportSummary
from proxy.offline.selection import VersionRange
from proxy.wiring import open_registry
from tests.support.git_http import GitHttpServer
from tests.support.http import JSON_ACCEPT, SWIFT_ACCEPT, ZIP_ACCEPT, Client, ClientFactory
from tests.support.proxy import proxy_settings
from tests.support.swift_packages import (
    NODE_MANIFEST,
    NODE_MANIFEST_5_9,
    publish_linked_list,
    publish_node,
)
from upstreams.locations import canonical_location
from upstreams.model import PackageId, Version

RELEASES = {"mona.Node": ["1.0.0"], "mona.LinkedList": ["1.0.0", "1.1.0"]}
SQLITE_FILES = {"ledger.sqlite3", "cache.db"}
TRAILER_SIZE = 90


# -- helpers -------------------------------------------------------------------


def closed_port_url() -> str:
    """An upstream URL nothing listens on: an offline proxy must never need it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def repository_url(git_url: str, identity: str) -> str:
    scope, name = identity.split(".")
    return f"{git_url}/{scope}/{name}.git"


async def fill_cache(data_dir: Path, git_url: str, releases: dict[str, list[str]]) -> None:
    async with open_registry(proxy_settings(data_dir, git_url)) as wired:
        registry = wired.registry
        for identity, versions in releases.items():
            package = PackageId.parse(identity)
            await registry.release_list(package)
            for version in versions:
                await registry.release(package, Version.parse(version))
            await registry.identifiers(repository_url(git_url, identity))


async def export(data_dir: Path, selection: Selection, output: Path) -> bytes:
    async with open_registry(proxy_settings(data_dir, closed_port_url(), offline=True)) as wired:
        await exporter(wired).export(selection, output)
    return await asyncio.to_thread(output.read_bytes)


async def import_into(data_dir: Path, bundle: Path) -> ImportSummary:
    async with open_registry(proxy_settings(data_dir, closed_port_url(), offline=True)) as wired:
        return await importer(wired).import_bundle(bundle)


def _sqlite_digest(path: Path) -> str:
    # sqlite rewrites header counters whenever a database is opened for
    # writing (diskcache does on every open), so databases are compared by
    # content: every row of every table.
    connection = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        # Sorted: diskcache re-inserts its settings on open, which reorders
        # rows without changing any.
        dump = "\n".join(sorted(connection.iterdump()))
    finally:
        connection.close()
    return "sqlite:" + hashlib.sha256(dump.encode()).hexdigest()


def snapshot(data_dir: Path) -> dict[str, str]:
    """Every file's path and sha256 (sqlite databases by content), but the staging dir."""
    staging = data_dir / "blobs" / "staging"
    state: dict[str, str] = {}
    for path in sorted(data_dir.rglob("*")):
        if not path.is_file() or path.is_relative_to(staging):
            continue
        relative = path.relative_to(data_dir).as_posix()
        if path.name in SQLITE_FILES:
            state[relative] = _sqlite_digest(path)
        else:
            state[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
    return state


def staging_files(data_dir: Path) -> list[Path]:
    """Partial blobs and import scratch files: none may outlive an import."""
    return [
        path
        for directory in (data_dir / "blobs" / "staging", data_dir / "scratch")
        if directory.is_dir()
        for path in directory.rglob("*")
        if path.is_file()
    ]


def file_names(directory: Path, pattern: str = "*") -> list[str]:
    return sorted(path.name for path in directory.glob(pattern))


def members(bundle: bytes) -> list[tarfile.TarInfo]:
    # The bundle is a standard tar followed by the trailer line, which tar
    # readers never reach: they stop at the end-of-archive blocks.
    with tarfile.open(fileobj=io.BytesIO(bundle), mode="r:") as archive:
        return archive.getmembers()


def entry(bundle: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(bundle), mode="r:") as archive:
        handle = archive.extractfile(name)
        assert handle is not None
        return handle.read()


def entry_json(bundle: bytes, name: str) -> Any:
    return json.loads(entry(bundle, name))


def released(bundle: bytes) -> set[str]:
    return {
        m.name.removeprefix("releases/").removesuffix(".json")
        for m in members(bundle)
        if m.name.startswith("releases/")
    }


def flip(data: bytes, position: int, mask: int = 0x01) -> bytes:
    damaged = bytearray(data)
    damaged[position] ^= mask
    return bytes(damaged)


# -- the corpus ----------------------------------------------------------------


@dataclass(frozen=True)
class Corpus:
    git_url: str
    source: Path  # the cache every bundle is exported from (do not modify)
    everything: Path  # bundle of the whole cache
    node_only: Path  # bundle of mona.Node alone
    partial_target: Path  # a data directory that imported `node_only` (do not modify)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Corpus]:
    root = tmp_path_factory.mktemp("corpus")
    git_root = root / "git-root"
    publish_node(git_root)
    publish_linked_list(git_root)
    with GitHttpServer(git_root) as server:
        corpus = Corpus(
            git_url=server.url,
            source=root / "source",
            everything=root / "everything.bundle",
            node_only=root / "node.bundle",
            partial_target=root / "partial-target",
        )

        async def build() -> None:
            await fill_cache(corpus.source, server.url, RELEASES)
            await export(corpus.source, Selection.whole_cache(), corpus.everything)
            await export(corpus.source, Selection({"mona.Node": None}), corpus.node_only)
            await import_into(corpus.partial_target, corpus.node_only)

        asyncio.run(build())
        yield corpus


@pytest.fixture
def source_copy(corpus: Corpus, tmp_path: Path) -> Path:
    return shutil.copytree(corpus.source, tmp_path / "source")


# -- format --------------------------------------------------------------------


def test_bundle_is_a_deterministic_tar_with_toc_first(corpus: Corpus) -> None:
    bundle = corpus.everything.read_bytes()
    infos = members(bundle)
    names = [m.name for m in infos]
    assert names[0] == "toc.json"
    assert names[1:] == sorted(names[1:])
    for info in infos:
        assert info.isreg()
        assert (info.mtime, info.uid, info.gid, info.uname, info.gname, info.mode) == (
            0,
            0,
            0,
            "",
            "",
            0o644,
        )

    toc = entry_json(bundle, "toc.json")
    assert toc["format"] == "spm-proxy-bundle"
    assert toc["version"] == 1
    assert set(toc["files"]) == set(names[1:])
    assert (
        entry(bundle, "toc.json") == json.dumps(toc, sort_keys=True, separators=(",", ":")).encode()
    )
    for name, described in toc["files"].items():
        content = entry(bundle, name)
        assert described == {"sha256": hashlib.sha256(content).hexdigest(), "size": len(content)}
        if name.startswith("blobs/"):
            assert name == "blobs/" + hashlib.sha256(content).hexdigest()

    trailer = bundle[-TRAILER_SIZE:]
    digest = hashlib.sha256(bundle[:-TRAILER_SIZE]).hexdigest()
    assert trailer == f"\nSPM-PROXY-BUNDLE-SHA256 {digest}\n".encode()

    assert released(bundle) == {"mona.node/1.0.0", "mona.linkedlist/1.0.0", "mona.linkedlist/1.1.0"}
    ledger = entry_json(bundle, "ledger.json")
    assert [(e["identity"], e["version"], e["resource"]) for e in ledger] == [
        ("mona.linkedlist", "1.0.0", "Package.swift"),
        ("mona.linkedlist", "1.0.0", "source-archive"),
        ("mona.linkedlist", "1.1.0", "Package.swift"),
        ("mona.linkedlist", "1.1.0", "source-archive"),
        ("mona.node", "1.0.0", "Package.swift"),
        ("mona.node", "1.0.0", "Package@swift-5.9.swift"),
        ("mona.node", "1.0.0", "source-archive"),
    ]
    assert set(ledger[0]) == {
        "identity",
        "version",
        "resource",
        "checksum",
        "upstream",
        "url",
        "commit",
        "recorded_at",
    }
    identifiers = entry_json(bundle, "identifiers.json")
    assert {location: [i.lower() for i in ids] for location, ids in identifiers.items()} == {
        canonical_location(repository_url(corpus.git_url, identity)): [identity.lower()]
        for identity in RELEASES
    }


async def test_export_is_deterministic_across_runs_and_reopening(
    corpus: Corpus, source_copy: Path, tmp_path: Path
) -> None:
    settings = proxy_settings(source_copy, closed_port_url(), offline=True)
    async with open_registry(settings) as wired:
        await exporter(wired).export(Selection.whole_cache(), tmp_path / "a.bundle")
        await exporter(wired).export(Selection.whole_cache(), tmp_path / "b.bundle")
    async with open_registry(settings) as wired:
        await exporter(wired).export(Selection.whole_cache(), tmp_path / "c.bundle")
    first = (tmp_path / "a.bundle").read_bytes()
    assert (tmp_path / "b.bundle").read_bytes() == first
    assert (tmp_path / "c.bundle").read_bytes() == first
    assert corpus.everything.read_bytes() == first
    assert file_names(tmp_path, "*.bundle") == [
        "a.bundle",
        "b.bundle",
        "c.bundle",
    ]


# -- selection -----------------------------------------------------------------


async def test_select_one_package(corpus: Corpus, tmp_path: Path) -> None:
    bundle = corpus.node_only.read_bytes()
    assert released(bundle) == {"mona.node/1.0.0"}
    assert [m.name for m in members(bundle) if m.name.startswith("lists/")] == [
        "lists/mona.node.json"
    ]
    assert [i.lower() for ids in entry_json(bundle, "identifiers.json").values() for i in ids] == [
        "mona.node"
    ]
    assert {e["identity"] for e in entry_json(bundle, "ledger.json")} == {"mona.node"}
    # Archive and both manifests.
    assert sum(m.name.startswith("blobs/") for m in members(bundle)) == 3


async def test_select_version_range_limits_the_list(corpus: Corpus, tmp_path: Path) -> None:
    output = tmp_path / "range.bundle"
    selection = Selection({"mona.linkedlist": VersionRange(lower=Version.parse("1.1.0"))})
    bundle = await export(corpus.source, selection, output)
    assert released(bundle) == {"mona.linkedlist/1.1.0"}
    listing = entry_json(bundle, "lists/mona.linkedlist.json")
    assert listing["versions"] == ["1.1.0"]
    assert {e["version"] for e in entry_json(bundle, "ledger.json")} == {"1.1.0"}


async def test_select_exact_pins_and_latest(corpus: Corpus, tmp_path: Path) -> None:
    pins = Selection(exact=frozenset({("mona.LinkedList", "1.0.0"), ("mona.node", "1.0.0")}))
    bundle = await export(corpus.source, pins, tmp_path / "pins.bundle")
    assert released(bundle) == {"mona.node/1.0.0", "mona.linkedlist/1.0.0"}

    latest = Selection({"mona.LinkedList": VersionRange()})
    bundle = await export(corpus.source, latest, tmp_path / "latest.bundle")
    assert released(bundle) == {"mona.linkedlist/1.1.0"}


async def test_select_everything(corpus: Corpus) -> None:
    assert released(corpus.everything.read_bytes()) == {
        "mona.node/1.0.0",
        "mona.linkedlist/1.0.0",
        "mona.linkedlist/1.1.0",
    }


@pytest.mark.parametrize(
    ("selection", "named"),
    [
        (Selection(), "nothing is selected"),
        (Selection(exact=frozenset({("mona.node", "9.9.9")})), "mona.node 9.9.9"),
        (Selection({"mona.Missing": None}), "mona.Missing"),
        (Selection({"mona.node": VersionRange(exact=Version.parse("2.0.0"))}), "2.0.0"),
    ],
)
async def test_selected_release_missing_from_cache_fails(
    corpus: Corpus, tmp_path: Path, selection: Selection, named: str
) -> None:
    output = tmp_path / "out" / "missing.bundle"
    output.parent.mkdir()
    with pytest.raises(BundleError, match=named):
        await export(corpus.source, selection, output)
    assert file_names(output.parent) == []


async def test_export_of_a_corrupted_blob_is_refused(source_copy: Path, tmp_path: Path) -> None:
    settings = proxy_settings(source_copy, closed_port_url(), offline=True)
    async with open_registry(settings) as wired:
        release = (
            await wired.registry.release(PackageId.parse("mona.Node"), Version.parse("1.0.0"))
        ).record
        blob = await wired.storage.blobs.open(release.archive_checksum)
        assert blob is not None
        assert blob.local_path is not None
        path = blob.local_path
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))

        out_dir = tmp_path / "out"
        out_dir.mkdir()
        with pytest.raises(BundleError) as refused:
            await exporter(wired).export(Selection.whole_cache(), out_dir / "x.bundle")
    message = str(refused.value)
    assert f"blobs/{release.archive_checksum}" in message
    assert "source-archive of mona.Node 1.0.0" in message
    assert file_names(out_dir) == []


# -- round trip ----------------------------------------------------------------


async def _registry_answers(client: Client, git_url: str) -> dict[str, bytes]:
    """Every answer a client needs for the corpus, with the proxy's origin masked."""
    origin = str(client.make_url("")).rstrip("/").encode()
    answers: dict[str, bytes] = {}

    async def get(label: str, path: str, headers: dict[str, str], **params: str) -> None:
        response = await client.get(path, headers=headers, params=params)
        assert response.status == 200, (label, await response.text())
        answers[label] = (await response.read()).replace(origin, b"ORIGIN")
        if "Link" in response.headers:
            answers[label + " Link"] = response.headers["Link"].encode().replace(origin, b"ORIGIN")

    for identity, versions in RELEASES.items():
        path = "/" + identity.replace(".", "/")
        await get(f"{identity} list", path, JSON_ACCEPT)
        for version in versions:
            await get(f"{identity} {version}", f"{path}/{version}", JSON_ACCEPT)
            await get(f"{identity} {version} zip", f"{path}/{version}.zip", ZIP_ACCEPT)
            await get(
                f"{identity} {version} manifest", f"{path}/{version}/Package.swift", SWIFT_ACCEPT
            )
        await get(
            f"{identity} identifiers",
            "/identifiers",
            JSON_ACCEPT,
            url=repository_url(git_url, identity),
        )
    await get(
        "node 5.9 manifest",
        "/mona/Node/1.0.0/Package.swift",
        SWIFT_ACCEPT,
        **{"swift-version": "5.9"},
    )
    return answers


async def test_round_trip_serves_the_same_answers_offline(
    tmp_path: Path, git_server: GitHttpServer, aiohttp_client: ClientFactory
) -> None:
    publish_node(git_server.root)
    publish_linked_list(git_server.root)
    online = await aiohttp_client(create_app(proxy_settings(tmp_path / "src", git_server.url)))
    expected = await _registry_answers(online, git_server.url)
    await online.close()
    assert expected["node 5.9 manifest"] == NODE_MANIFEST_5_9.encode()
    assert expected["mona.Node 1.0.0 manifest"] == NODE_MANIFEST.encode()

    bundle = tmp_path / "all.bundle"
    await export(tmp_path / "src", Selection.whole_cache(), bundle)
    summary = await import_into(tmp_path / "dst", bundle)
    assert summary == ImportSummary(
        releases_added=3, releases_present=0, blobs_added=6, ledger_entries_added=7
    )

    git_url = git_server.url
    git_server.stop()  # no upstream at all on the offline side
    offline = await aiohttp_client(
        create_app(proxy_settings(tmp_path / "dst", closed_port_url(), offline=True))
    )
    assert await _registry_answers(offline, git_url) == expected


async def test_offline_list_offers_exactly_the_exported_versions(
    corpus: Corpus, tmp_path: Path, aiohttp_client: ClientFactory
) -> None:
    bundle = tmp_path / "range.bundle"
    selection = Selection({"mona.LinkedList": VersionRange(exact=Version.parse("1.0.0"))})
    await export(corpus.source, selection, bundle)
    await import_into(tmp_path / "dst", bundle)
    offline = await aiohttp_client(
        create_app(proxy_settings(tmp_path / "dst", closed_port_url(), offline=True))
    )
    body = await (await offline.get("/mona/LinkedList", headers=JSON_ACCEPT)).json()
    assert list(body["releases"]) == ["1.0.0"]
    missing = await offline.get("/mona/LinkedList/1.1.0", headers=JSON_ACCEPT)
    assert missing.status >= 400


# -- import --------------------------------------------------------------------


async def test_import_twice_changes_nothing(corpus: Corpus, tmp_path: Path) -> None:
    target = tmp_path / "target"
    first = await import_into(target, corpus.everything)
    assert first == ImportSummary(
        releases_added=3, releases_present=0, blobs_added=6, ledger_entries_added=7
    )
    before = snapshot(target)
    second = await import_into(target, corpus.everything)
    assert second == ImportSummary(
        releases_added=0, releases_present=3, blobs_added=0, ledger_entries_added=0
    )
    assert snapshot(target) == before
    assert staging_files(target) == []


async def test_import_merges_into_a_partly_filled_cache(corpus: Corpus, tmp_path: Path) -> None:
    target = shutil.copytree(corpus.partial_target, tmp_path / "target")
    summary = await import_into(target, corpus.everything)
    assert summary == ImportSummary(
        releases_added=2, releases_present=1, blobs_added=3, ledger_entries_added=4
    )
    exported = await export(target, Selection.whole_cache(), tmp_path / "again.bundle")
    assert exported == corpus.everything.read_bytes()


def test_list_and_identity_merges_are_unions_and_idempotent() -> None:
    v = Version.parse
    local = ReleaseList(
        PackageId.parse("mona.Node"),
        (v("1.0.0"),),
        ("https://a/mona/Node.git",),
        {},
        "git",
        fetched_at=100.0,
    )
    incoming = ReleaseList(
        PackageId.parse("mona.Node"),
        (v("2.0.0"), v("1.5.0")),
        ("https://b/mona/Node.git",),
        {"1.5.0": {"detail": "withdrawn"}},
        "git",
        fetched_at=50.0,
    )
    merged = merge_listings(local, incoming)
    assert merged.versions == (v("2.0.0"), v("1.5.0"), v("1.0.0"))
    assert merged.problems == {"1.5.0": {"detail": "withdrawn"}}
    assert merged.repository_urls == ("https://a/mona/Node.git",)  # the newer fetch
    assert merged.fetched_at == 100.0
    assert merge_listings(merged, incoming) == merged
    assert merge_listings(incoming, local).versions == merged.versions

    identities = merge_identities(["mona.Node"], ["MONA.node", "mona.Other"])
    assert identities == ["mona.Node", "mona.Other"]
    assert merge_identities(identities, ["mona.Other"]) == identities


# -- refusals ------------------------------------------------------------------


def _region(bundle: bytes, region: str) -> tuple[int, str]:
    """A byte position inside `region` and what the refusal must name."""
    infos = {m.name: m for m in members(bundle)}
    ordered = list(infos.values())
    blob = next(m for m in ordered if m.name.startswith("blobs/"))
    release = infos["releases/mona.node/1.0.0.json"]
    last = ordered[-1]
    end_of_entries = last.offset_data + last.size + (-last.size % 512)
    padded = next(m for m in ordered if m.size % 512 and not m.name.startswith("blobs/"))
    positions = {
        "blob content middle": (blob.offset_data + blob.size // 2, blob.name),
        "blob content first byte": (blob.offset_data, blob.name),
        "blob content last byte": (blob.offset_data + blob.size - 1, blob.name),
        "toc.json middle": (
            infos["toc.json"].offset_data + infos["toc.json"].size // 2,
            "toc.json",
        ),
        "toc.json first byte": (infos["toc.json"].offset_data, "toc.json"),
        "release json": (release.offset_data + release.size // 2, release.name),
        "list json": (
            infos["lists/mona.linkedlist.json"].offset_data + 3,
            "lists/mona.linkedlist.json",
        ),
        "identifiers.json": (infos["identifiers.json"].offset_data + 5, "identifiers.json"),
        "ledger.json": (
            infos["ledger.json"].offset_data + infos["ledger.json"].size // 2,
            "ledger.json",
        ),
        "toc.json tar header": (infos["toc.json"].offset + 2, "toc.json"),
        "tar header name": (release.offset + 10, release.name),
        "tar header size": (release.offset + 124 + 5, release.name),
        "tar header mtime": (release.offset + 136 + 10, release.name),
        "tar header checksum": (release.offset + 148 + 3, release.name),
        "tar header checksum trailing space": (release.offset + 155, release.name),
        "tar header magic": (release.offset + 257 + 1, release.name),
        "tar header unused tail": (release.offset + 511, release.name),
        "blob tar header": (blob.offset + 100, blob.name),
        "tar padding": (padded.offset_data + padded.size, padded.name),
        "tar padding last byte": (
            padded.offset_data + padded.size + (-padded.size % 512) - 1,
            padded.name,
        ),
        "end-of-archive first block": (end_of_entries, "bundle container"),
        "end-of-archive second block": (end_of_entries + 512 + 17, "bundle container"),
        "end-of-archive record padding": (len(bundle) - TRAILER_SIZE - 1, "bundle container"),
        "trailer leading newline": (len(bundle) - TRAILER_SIZE, "bundle container"),
        "trailer tag": (len(bundle) - TRAILER_SIZE + 5, "bundle container"),
        "trailer digest": (len(bundle) - 20, "bundle container"),
        "trailer final newline": (len(bundle) - 1, "bundle container"),
    }
    return positions[region]


REGIONS = [
    "blob content middle",
    "blob content first byte",
    "blob content last byte",
    "toc.json middle",
    "toc.json first byte",
    "release json",
    "list json",
    "identifiers.json",
    "ledger.json",
    "toc.json tar header",
    "tar header name",
    "tar header size",
    "tar header mtime",
    "tar header checksum",
    "tar header checksum trailing space",
    "tar header magic",
    "tar header unused tail",
    "blob tar header",
    "tar padding",
    "tar padding last byte",
    "end-of-archive first block",
    "end-of-archive second block",
    "end-of-archive record padding",
    "trailer leading newline",
    "trailer tag",
    "trailer digest",
    "trailer final newline",
]


async def _assert_refused(
    corpus: Corpus, tmp_path: Path, damaged: bytes, named: str
) -> BundleError:
    target = shutil.copytree(corpus.partial_target, tmp_path / "target")
    before = snapshot(target)
    assert before == snapshot(corpus.partial_target)
    bad = tmp_path / "damaged.bundle"
    bad.write_bytes(damaged)
    with pytest.raises(BundleError) as refused:
        await import_into(target, bad)
    assert named in str(refused.value)
    assert snapshot(target) == before
    assert staging_files(target) == []
    shutil.rmtree(target)
    return refused.value


@pytest.mark.parametrize("region", REGIONS)
async def test_one_flipped_byte_refuses_the_import(
    corpus: Corpus, tmp_path: Path, region: str
) -> None:
    bundle = corpus.everything.read_bytes()
    position, named = _region(bundle, region)
    await _assert_refused(corpus, tmp_path, flip(bundle, position), named)


async def test_flipped_bytes_anywhere_are_refused(corpus: Corpus, tmp_path: Path) -> None:
    """A sweep over the whole file, with both a one-bit and a whole-byte flip."""
    bundle = corpus.everything.read_bytes()
    step = max(1, len(bundle) // 24)
    for index, position in enumerate(range(0, len(bundle), step)):
        damaged = flip(bundle, position, 0x01 if index % 2 else 0xFF)
        error = await _assert_refused(corpus, tmp_path, damaged, "bundle ")
        assert str(error).startswith(("bundle entry ", "bundle container: ")), str(error)


async def test_truncated_bundle_is_refused(corpus: Corpus, tmp_path: Path) -> None:
    bundle = corpus.everything.read_bytes()
    await _assert_refused(corpus, tmp_path, bundle[: len(bundle) // 2], "bundle container")
    await _assert_refused(corpus, tmp_path / "b", bundle[:-TRAILER_SIZE], "bundle container")


async def test_ledger_conflict_refuses_the_import(
    tmp_path: Path, git_server: GitHttpServer
) -> None:
    node = publish_node(git_server.root)
    first = tmp_path / "first"
    await fill_cache(first, git_server.url, {"mona.Node": ["1.0.0"]})

    # The tag moves to other content; a second cache records the new bytes.
    node.write("Sources/Node/Node.swift", 'public func nodeGreeting() -> String { "moved" }\n')
    node.commit("moved", when=1_700_009_000)
    node.tag("1.0.0", force=True)
    second = tmp_path / "second"
    await fill_cache(second, git_server.url, {"mona.Node": ["1.0.0"]})
    bundle = tmp_path / "moved.bundle"
    await export(second, Selection({"mona.Node": None}), bundle)

    async with open_registry(proxy_settings(first, closed_port_url(), offline=True)) as wired:
        found = await wired.storage.ledger.lookup(PackageId("mona", "node"), Version.parse("1.0.0"))
        recorded = found.get("source-archive")
    moved = entry_json(bundle.read_bytes(), "releases/mona.node/1.0.0.json")["archive_checksum"]
    assert recorded is not None
    assert recorded.checksum != moved

    before = snapshot(first)
    with pytest.raises(BundleError) as refused:
        await import_into(first, bundle)
    message = str(refused.value)
    for part in ("mona.node", "1.0.0", "source-archive", recorded.checksum, moved):
        assert part in message
    assert snapshot(first) == before
    assert staging_files(first) == []


async def test_inconsistent_bundle_is_refused(corpus: Corpus, tmp_path: Path) -> None:
    """A well-formed container whose ledger does not vouch for a release it carries."""
    staged = tmp_path / "staged"
    staged.mkdir()
    counter = iter(range(1000))
    contents = read_bundle(corpus.node_only, lambda: staged / f"{next(counter)}")
    documents = dict(contents.documents)
    ledger = json.loads(documents["ledger.json"])
    documents["ledger.json"] = json.dumps(ledger[:-1]).encode()
    forged = tmp_path / "forged.bundle"
    write_bundle(forged, documents, contents.blobs)
    error = await _assert_refused(corpus, tmp_path / "t", forged.read_bytes(), "ledger.json")
    assert "no entry for mona.node 1.0.0" in str(error)


async def test_progress_adds_up_to_the_bundle_size(corpus: Corpus, tmp_path: Path) -> None:
    written: list[int] = []
    read: list[int] = []
    settings = proxy_settings(tmp_path / "target", closed_port_url(), offline=True)
    source = proxy_settings(corpus.source, closed_port_url(), offline=True)
    async with open_registry(source) as wired:
        summary = await exporter(wired).export(
            Selection.whole_cache(), tmp_path / "p.bundle", progress=written.append
        )
    async with open_registry(settings) as wired:
        await importer(wired).import_bundle(tmp_path / "p.bundle", progress=read.append)
    assert summary.bytes == corpus.everything.stat().st_size
    assert summary.files == 14
    assert summary.releases == 3
    assert sum(written) == sum(read) == summary.bytes
