"""Shared value types: SemVer parsing and precedence, tag names, tools versions."""

from __future__ import annotations

import pytest

from upstreams.model import InvalidVersion, Version, parse_tools_version


def test_semver_precedence_matches_the_spec_example() -> None:
    ordered = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.0.1",
        "1.10.0",
        "2.0.0",
    ]
    shuffled = list(reversed(ordered))
    assert [str(v) for v in sorted(Version.parse(t) for t in shuffled)] == ordered


@pytest.mark.parametrize("text", ["1.0", "1", "v1.0.0", "1.0.0-", "1.0.0+", "01.0.0", "1.0.0-01"])
def test_strict_semver_rejects(text: str) -> None:
    with pytest.raises(InvalidVersion):
        Version.parse(text)


@pytest.mark.parametrize(
    ("tag", "version"),
    [
        ("1.2.3", "1.2.3"),
        ("v1.2.3", "1.2.3"),
        ("V2.0.0-rc.1", "2.0.0-rc.1"),
        ("release-1", None),
        ("1.2", None),
        ("vv1.2.3", None),
    ],
)
def test_versions_from_tags(tag: str, version: str | None) -> None:
    parsed = Version.from_tag(tag)
    assert (str(parsed) if parsed else None) == version


@pytest.mark.parametrize(
    ("first_line", "expected"),
    [
        (b"// swift-tools-version:5.9", "5.9"),
        (b"// swift-tools-version: 5.7.1", "5.7.1"),
        (b"//swift-tools-version:6.0; experimental", "6.0"),
        (b"// Swift-Tools-Version:5.3", "5.3"),
        (b"\xef\xbb\xbf// swift-tools-version:5.8", "5.8"),
        (b"import PackageDescription", None),
    ],
)
def test_tools_version_from_first_line(first_line: bytes, expected: str | None) -> None:
    assert parse_tools_version(first_line + b"\nimport PackageDescription\n") == expected
