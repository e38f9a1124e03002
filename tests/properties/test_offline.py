"""The offline workflow's inputs, for any content at all.

`Package.resolved` files and package specs (`warm`, `export`) give pins or a
`SelectionError`; bundles (`import`) are refused with a `BundleError` naming
the entry at fault, and a bundle that is accepted holds only records an
offline proxy can serve: every value that reaches a response header or body
has the form the protocol gives it (SE-0292 4.2, 4.3, 4.4).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from proxy.offline.bundle_format import BundleError, encode_json
from proxy.offline.bundle_layout import BundlePlan, parse_documents
from proxy.offline.bundle_reader import read_bundle
from proxy.offline.selection import (
    RegistryPin,
    SelectionError,
    SkippedPin,
    SourceControlPin,
    parse_package_spec,
    parse_resolved,
)
from tests.properties.strategies import (
    hostile,
    hostile_bytes,
    json_values,
    names,
    scopes,
    semantic_versions,
)
from upstreams.model import (
    PackageId,
    Version,
    is_manifest_filename,
    utc_timestamp,
    version_triple,
)

# -- Package.resolved and package specs ---------------------------------------------

pins_v2 = st.fixed_dictionaries(
    {
        "identity": st.one_of(hostile(st.just("mona.LinkedList")), json_values),
        "kind": st.sampled_from(["registry", "remoteSourceControl", "localSourceControl", 5]),
        "location": st.one_of(hostile(st.just("https://github.com/mona/x.git")), json_values),
        "state": st.one_of(
            json_values, st.fixed_dictionaries({"version": hostile(semantic_versions())})
        ),
    }
)
resolved_documents = st.one_of(
    json_values,
    st.builds(lambda pins: {"version": 2, "pins": pins}, st.lists(pins_v2, max_size=3)),
    st.builds(lambda pins: {"version": 3, "pins": pins}, st.one_of(json_values, st.lists(pins_v2))),
    st.builds(
        lambda pins: {"version": 1, "object": {"pins": pins}},
        st.one_of(json_values, st.lists(st.dictionaries(st.text(max_size=14), json_values))),
    ),
    st.builds(lambda objects: {"version": 1, "object": objects}, json_values),
)


@given(
    st.one_of(
        hostile_bytes,
        resolved_documents.map(lambda doc: json.dumps(doc).encode("utf-8", "surrogatepass")),
    )
)
@example(b'{"version": 1, "object": []}')
@example(b'{"version": 2, "pins": [5]}')
@example(b'{"version": 2, "pins": [{"kind": "remoteSourceControl", "state": {"version": 1}}]}')
@example(b'{"version": 1, "object": {"pins": [{"state": {"version": "1.0.0"}}]}}')
@example(b"[" * 5000)
def test_package_resolved_files(tmp_path_factory: pytest.TempPathFactory, content: bytes) -> None:
    path = tmp_path_factory.mktemp("resolved") / "Package.resolved"
    path.write_bytes(content)
    try:
        pins = parse_resolved(path)
    except SelectionError as error:
        message = str(error)
        pins = []
    else:
        message = str(path)
    assert str(path) in message
    for pin in pins:
        if isinstance(pin, RegistryPin):
            assert isinstance(pin.package, PackageId)
            assert isinstance(pin.version, Version)
        elif isinstance(pin, SourceControlPin):
            assert isinstance(pin.url, str)
            assert isinstance(pin.version, Version)
        else:
            assert isinstance(pin, SkippedPin)
            assert isinstance(pin.name, str)
            assert isinstance(pin.reason, str)


specs = st.builds(
    lambda scope, name, versions: f"{scope}.{name}{versions}",
    scopes,
    names,
    st.one_of(
        st.just(""),
        semantic_versions().map(lambda v: "@" + v),
        semantic_versions().map(lambda v: "@from:" + v),
        st.tuples(semantic_versions(), semantic_versions()).map(lambda r: f"@{r[0]}..<{r[1]}"),
    ),
)


@given(hostile(specs))
@example("mona.LinkedList@from:" + "9" * 19 + ".0.0")  # its next major is past Int
def test_package_specs(text: str) -> None:
    try:
        spec = parse_package_spec(text)
    except SelectionError:
        return
    assert isinstance(spec.package, PackageId)


# -- bundle containers ----------------------------------------------------------------


def _container(toc_files: dict[str, Any] | bytes, entries: list[tuple[str, bytes]]) -> bytes:
    """A bundle as the format describes it (PAX tar, toc.json first, SHA-256
    trailer), holding whatever table of contents and entries it is given."""
    toc = (
        toc_files
        if isinstance(toc_files, bytes)
        else encode_json({"format": "spm-proxy-bundle", "version": 1, "files": toc_files})
    )
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, data in [("toc.json", toc), *entries]:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            info.uname = info.gname = ""
            archive.addfile(info, io.BytesIO(data))
    body = buffer.getvalue()
    digest = hashlib.sha256(body).hexdigest()
    return body + f"\nSPM-PROXY-BUNDLE-SHA256 {digest}\n".encode()


def _refusal(bundle: Path, staging: Callable[[], Path]) -> str:
    """Why reading `bundle` failed; an accepted bundle is no refusal at all."""
    try:
        read_bundle(bundle, staging)
    except BundleError as error:
        return str(error)
    return "bundle container: accepted"


def _listed(name: str, data: bytes) -> dict[str, Any]:
    return {name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}}


entry_names = hostile(
    st.sampled_from(["ledger.json", "identifiers.json", "releases/mona.node/1.0.0.json"])
)


@given(entry_names, st.binary(max_size=40))
@example("\ud800", b"{}")  # a lone surrogate: no UTF-8 form for a tar header
@example("ledger.json\x00", b"[]")
@example("releases/../ledger.json", b"[]")
def test_tables_of_contents_naming_anything(
    tmp_path_factory: pytest.TempPathFactory, name: str, data: bytes
) -> None:
    """toc.json may name entries no tar header can carry: refused, not a crash."""
    directory = tmp_path_factory.mktemp("bundle")
    bundle = directory / "crafted.bundle"
    try:
        bundle.write_bytes(_container(_listed(name, data), [(name, data)]))
    except (UnicodeEncodeError, ValueError):
        # tarfile cannot write the entry either: the table of contents alone names it.
        bundle.write_bytes(_container(_listed(name, data), []))
    counter = iter(range(1000))
    assert _refusal(bundle, lambda: directory / f"staged-{next(counter)}").startswith(
        ("bundle entry ", "bundle container: ")
    )


@given(hostile_bytes)
def test_any_table_of_contents(tmp_path_factory: pytest.TempPathFactory, toc: bytes) -> None:
    directory = tmp_path_factory.mktemp("bundle")
    bundle = directory / "toc.bundle"
    bundle.write_bytes(_container(toc, []))
    assert _refusal(bundle, lambda: directory / "staged").startswith("bundle entry toc.json: ")


def test_a_deeply_nested_table_of_contents_is_refused(tmp_path: Path) -> None:
    bundle = tmp_path / "nested.bundle"
    bundle.write_bytes(_container(b"[" * 5000 + b"]" * 5000, []))
    assert "nested too deeply" in _refusal(bundle, lambda: tmp_path / "staged")


@given(hostile_bytes)
@example(b"\n" * 1100 + b"\nSPM-PROXY-BUNDLE-SHA256 " + b"0" * 64 + b"\n")
def test_any_bytes_as_a_bundle(tmp_path_factory: pytest.TempPathFactory, content: bytes) -> None:
    directory = tmp_path_factory.mktemp("bundle")
    bundle = directory / "any.bundle"
    bundle.write_bytes(content)
    assert _refusal(bundle, lambda: directory / "staged").startswith(
        ("bundle entry ", "bundle container: ")
    )


# -- bundle documents -----------------------------------------------------------------

ARCHIVE = "a" * 64
MANIFEST = "b" * 64
MANIFEST_5_9 = "c" * 64
RELEASE_NAME = "releases/mona.node/1.0.0.json"
LIST_NAME = "lists/mona.node.json"


def _documents() -> dict[str, Any]:
    """What `spm-proxy export` writes for mona.Node 1.0.0, as JSON values."""
    ledger = [
        {
            "identity": "mona.node",
            "version": "1.0.0",
            "resource": resource,
            "checksum": checksum,
            "upstream": "loopback-git",
            "url": "https://git.example/mona/Node.git",
            "commit": "0" * 40,
            "recorded_at": 1_700_000_000,
        }
        for resource, checksum in (
            ("source-archive", ARCHIVE),
            ("Package.swift", MANIFEST),
            ("Package@swift-5.9.swift", MANIFEST_5_9),
        )
    ]
    return {
        RELEASE_NAME: {
            "identity": "mona.Node",
            "version": "1.0.0",
            "archive_checksum": ARCHIVE,
            "manifests": [
                {"filename": "Package.swift", "checksum": MANIFEST, "tools_version": "5.7"},
                {
                    "filename": "Package@swift-5.9.swift",
                    "checksum": MANIFEST_5_9,
                    "tools_version": "5.9",
                },
            ],
            "metadata": {"repositoryURLs": ["https://git.example/mona/Node.git"]},
            "published_at": "2023-11-14T22:15:00Z",
            "upstream": "loopback-git",
            "signing": None,
        },
        LIST_NAME: {
            "identity": "mona.Node",
            "versions": ["1.0.0"],
            "repository_urls": ["https://git.example/mona/Node.git"],
            "problems": {},
            "upstream": "loopback-git",
            "fetched_at": 1_700_000_000.0,
            # What the proxy noted about releases an upstream lost or cannot serve.
            "vanished": {"1.0.0": {"since": 1_700_000_000.0, "detail": "no longer listed"}},
            "gone": None,
            "unservable": {"1.0.0": "the tag moved"},
        },
        "identifiers.json": {"git.example/mona/node": ["mona.Node"]},
        "ledger.json": ledger,
    }


# Where a hostile value may go: (document, path of keys and indexes).
FIELDS = [
    *[(RELEASE_NAME, (key,)) for key in _documents()[RELEASE_NAME]],
    *[(RELEASE_NAME, ("manifests", 1, key)) for key in ("filename", "checksum", "tools_version")],
    (RELEASE_NAME, ("manifests", 0)),
    *[(LIST_NAME, (key,)) for key in _documents()[LIST_NAME]],
    (LIST_NAME, ("repository_urls", 0)),
    (LIST_NAME, ("problems",)),
    (LIST_NAME, ("vanished", "1.0.0")),
    (LIST_NAME, ("vanished", "1.0.0", "since")),
    (LIST_NAME, ("unservable", "1.0.0")),
    ("identifiers.json", ("git.example/mona/node",)),
    ("ledger.json", (0,)),
    *[("ledger.json", (1, key)) for key in ("identity", "version", "recorded_at", "commit")],
]
field_values = st.one_of(
    json_values,
    hostile(
        st.sampled_from(
            ["2023-11-14T22:15:00Z", "5.9", "Package@swift-5.9.swift", "cms-1.0.0", "mona.Node"]
        )
    ),
    st.fixed_dictionaries(
        {
            "signatureFormat": hostile(st.just("cms-1.0.0")),
            "signatureBase64Encoded": hostile(st.just("MA==")),
        }
    ),
    st.fixed_dictionaries({"1.0.0": st.fixed_dictionaries({"detail": json_values})}),
)


def _set(document: Any, path: tuple[str | int, ...], value: Any) -> None:
    for key in path[:-1]:
        document = document[key]
    document[path[-1]] = value


_HEADER_SAFE = re.compile(r"[\x20-\x7e]*")
_WHOLE_SECOND_UTC = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")


def _servable(plan: BundlePlan) -> None:
    """What serving an imported release puts in headers and bodies (SE-0292 4)."""
    for release in plan.releases.values():
        assert _WHOLE_SECOND_UTC.fullmatch(release.published_at)  # Last-Modified
        assert isinstance(release.metadata, dict)
        assert isinstance(release.upstream, str)
        for manifest in release.manifests:
            assert is_manifest_filename(manifest.filename)  # Content-Disposition
            tools = manifest.tools_version
            assert tools is None or version_triple(tools) is not None  # Link
        if release.signing is not None:  # X-Swift-Package-Signature(-Format)
            assert set(release.signing) == {"signatureFormat", "signatureBase64Encoded"}
            assert all(_HEADER_SAFE.fullmatch(value) for value in release.signing.values())
    for listing in plan.listings.values():
        assert all(_HEADER_SAFE.fullmatch(url) for url in listing.repository_urls)  # Link
        assert all(
            isinstance(p, dict) and isinstance(p.get("detail"), str)
            for p in listing.problems.values()
        )
        assert isinstance(listing.fetched_at, int | float)
        assert not isinstance(listing.fetched_at, bool)
        assert isinstance(listing.upstream, str)
        # Served as versions, with problems whose details say since when.
        for name, note in listing.vanished.items():
            Version.parse(name)
            assert _WHOLE_SECOND_UTC.fullmatch(utc_timestamp(note.since))
            assert isinstance(note.detail, str)
        assert listing.gone is None or isinstance(listing.gone.detail, str)
        for name, detail in listing.unservable.items():
            Version.parse(name)
            assert isinstance(detail, str)


@given(st.sampled_from(FIELDS), field_values)
@example((RELEASE_NAME, ("published_at",)), "14 Nov 2023")
@example((RELEASE_NAME, ("metadata",)), [])
@example(
    (RELEASE_NAME, ("signing",)),
    {"signatureFormat": "cms\r\nX: 1", "signatureBase64Encoded": "MA=="},
)
@example((RELEASE_NAME, ("manifests", 1, "tools_version")), '5.9"; rel="x')
@example((RELEASE_NAME, ("manifests", 1, "filename")), "../Package.swift")
@example((LIST_NAME, ("repository_urls", 0)), "https://git.example/x\r\nX: 1")
@example((LIST_NAME, ("fetched_at",)), "yesterday")
@example((LIST_NAME, ("problems",)), {"1.0.0": "gone"})
@example((LIST_NAME, ("vanished", "1.0.0", "since")), "soon")
@example((LIST_NAME, ("vanished", "1.0.0", "since")), 1e300)
@example((LIST_NAME, ("vanished",)), {"latest": {"since": 0, "detail": "x"}})
@example((LIST_NAME, ("unservable",)), "ab")
def test_bundle_documents(field: tuple[str, tuple[str | int, ...]], value: Any) -> None:
    name, path = field
    documents = _documents()
    _set(documents[name], path, value)
    encoded = {
        entry: json.dumps(doc).encode("utf-8", "surrogatepass") for entry, doc in documents.items()
    }
    try:
        plan = parse_documents(encoded, {ARCHIVE, MANIFEST, MANIFEST_5_9})
    except BundleError as error:
        message = str(error)
    else:
        _servable(plan)
        return
    assert message.startswith("bundle entry ")


@given(
    st.dictionaries(
        entry_names,
        st.one_of(
            hostile_bytes, json_values.map(lambda v: json.dumps(v).encode("utf-8", "surrogatepass"))
        ),
        max_size=4,
    )
)
@example({"ledger.json": b"[" * 5000, "identifiers.json": b"{}"})
def test_any_bundle_documents(documents: dict[str, bytes]) -> None:
    try:
        plan = parse_documents(documents, set())
    except BundleError as error:
        message = str(error)
    else:
        _servable(plan)
        return
    assert message.startswith("bundle entry ")
