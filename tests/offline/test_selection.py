"""Package.resolved formats 1-3 and package specs, row by row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from proxy.offline.selection import (
    RegistryPin,
    SelectionError,
    SkippedPin,
    SourceControlPin,
    parse_package_spec,
    parse_resolved,
)
from upstreams.model import PackageId, Version

V1 = {
    "object": {
        "pins": [
            {
                "package": "LinkedList",
                "repositoryURL": "https://github.com/mona/LinkedList.git",
                "state": {"branch": None, "revision": "abc", "version": "1.1.0"},
            },
            {
                "package": "Edge",
                "repositoryURL": "https://github.com/mona/Edge.git",
                "state": {"branch": "main", "revision": "def", "version": None},
            },
        ]
    },
    "version": 1,
}
V2_PINS = [
    {
        "identity": "mona.linkedlist",
        "kind": "registry",
        "location": "",
        "state": {"version": "1.1.0"},
    },
    {
        "identity": "node",
        "kind": "remoteSourceControl",
        "location": "git@github.com:mona/Node.git",
        "state": {"revision": "r", "version": "1.0.0"},
    },
    {
        "identity": "local",
        "kind": "localSourceControl",
        "location": "/src/local",
        "state": {"revision": "r"},
    },
    {
        "identity": "tip",
        "kind": "remoteSourceControl",
        "location": "https://h/x/tip",
        "state": {"branch": "main", "revision": "r"},
    },
]


def _write(tmp_path: Path, document: object) -> Path:
    path = tmp_path / "Package.resolved"
    path.write_text(json.dumps(document))
    return path


def test_format_1(tmp_path: Path) -> None:
    pins = parse_resolved(_write(tmp_path, V1))
    assert pins[0] == SourceControlPin("https://github.com/mona/LinkedList.git", Version(1, 1, 0))
    assert isinstance(pins[1], SkippedPin)


@pytest.mark.parametrize("version", [2, 3])
def test_formats_2_and_3(tmp_path: Path, version: int) -> None:
    document: dict[str, object] = {"pins": V2_PINS, "version": version}
    if version == 3:
        document["originHash"] = "0" * 64
    pins = parse_resolved(_write(tmp_path, document))
    assert pins[0] == RegistryPin(PackageId("mona", "linkedlist"), Version(1, 1, 0))
    assert pins[1] == SourceControlPin("git@github.com:mona/Node.git", Version(1, 0, 0))
    assert isinstance(pins[2], SkippedPin)
    assert "not served by a registry" in pins[2].reason
    assert isinstance(pins[3], SkippedPin)
    assert "branch" in pins[3].reason


@pytest.mark.parametrize("document", [{"version": 9, "pins": []}, ["not", "an", "object"]])
def test_unusable_files_are_refused(tmp_path: Path, document: object) -> None:
    with pytest.raises(SelectionError, match=r"Package\.resolved"):
        parse_resolved(_write(tmp_path, document))


def test_unreadable_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "Package.resolved"
    path.write_text("{ not json")
    with pytest.raises(SelectionError):
        parse_resolved(path)


@pytest.mark.parametrize(
    ("spec", "inside", "outside"),
    [
        ("mona.LinkedList@1.2.3", ["1.2.3"], ["1.2.4", "1.2.3-rc.1"]),
        ("mona.LinkedList@1.2.0..<2.0.0", ["1.2.0", "1.9.9"], ["2.0.0", "1.1.9"]),
        ("mona.LinkedList@from:1.2.0", ["1.2.0", "1.99.0"], ["2.0.0", "1.1.0"]),
    ],
)
def test_package_specs(spec: str, inside: list[str], outside: list[str]) -> None:
    parsed = parse_package_spec(spec)
    assert parsed.package == PackageId("mona", "LinkedList")
    assert all(parsed.versions.contains(Version.parse(v)) for v in inside)
    assert not any(parsed.versions.contains(Version.parse(v)) for v in outside)


def test_bare_identity_means_latest() -> None:
    assert parse_package_spec("mona.LinkedList").versions.latest_only


@pytest.mark.parametrize(
    "spec", ["monaLinkedList", "mona.LinkedList@1.2", "mona.x@from:v1.0.0", "mona.x@1.0.0..<two"]
)
def test_bad_specs(spec: str) -> None:
    with pytest.raises(SelectionError, match="expected ID"):
        parse_package_spec(spec)
