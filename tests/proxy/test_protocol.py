"""The pure protocol rules, row by row."""

from __future__ import annotations

import pytest

from proxy import protocol
from proxy.protocol import BadRequest, ManifestChoice, ReleaseResource, Suffix, UnsupportedMediaType
from upstreams.model import Version, utc_timestamp


@pytest.mark.parametrize(
    "accept",
    [
        None,
        "",
        "application/vnd.swift.registry.v1+json",
        "application/vnd.swift.registry.v1",
        "application/vnd.swift.registry+json",
        "application/vnd.swift.registry",
        "application/json",
        "*/*",
        "application/vnd.swift.registry.v2+json, application/vnd.swift.registry.v1+json",
        "application/vnd.swift.registry.v1+json; q=0.9",
    ],
)
def test_acceptable_accept_headers(accept: str | None) -> None:
    protocol.check_accept(accept, Suffix.JSON)


@pytest.mark.parametrize(
    ("accept", "error"),
    [
        ("application/vnd.swift.registry.vX+json", BadRequest),
        ("application/vnd.swift.registry.v+json", BadRequest),
        ("application/vnd.swift.registry.v2+json", UnsupportedMediaType),
        ("application/vnd.swift.registry.v1+zip", UnsupportedMediaType),
    ],
)
def test_rejected_accept_headers(accept: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        protocol.check_accept(accept, Suffix.JSON)


@pytest.mark.parametrize(
    ("segment", "version", "resource"),
    [
        ("1.0.0", "1.0.0", ReleaseResource.METADATA),
        ("1.0.0.json", "1.0.0", ReleaseResource.METADATA),
        ("1.0.0.zip", "1.0.0", ReleaseResource.ARCHIVE),
        ("1.0.0-rc.zip", "1.0.0-rc", ReleaseResource.ARCHIVE),
        ("1.0.0+exp.1.zip", "1.0.0+exp.1", ReleaseResource.ARCHIVE),
        ("2.0.0-beta.1", "2.0.0-beta.1", ReleaseResource.METADATA),
    ],
)
def test_release_segments(segment: str, version: str, resource: ReleaseResource) -> None:
    assert protocol.classify_release_segment(segment) == (Version.parse(version), resource)


@pytest.mark.parametrize("segment", ["1.0", "v1.0.0", "01.0.0", "1.0.0.tar", "latest", ""])
def test_invalid_release_segments(segment: str) -> None:
    with pytest.raises(BadRequest):
        protocol.classify_release_segment(segment)


@pytest.mark.parametrize(
    ("scope", "name"),
    [
        ("-mona", "x"),
        ("mo--na", "x"),
        ("mona", "_x"),
        ("mona", "a__b"),
        ("a" * 40, "x"),
        ("mona", "Linked.List"),
        ("mona", "a" * 101),
        ("mo na", "x"),
    ],
)
def test_invalid_identities(scope: str, name: str) -> None:
    with pytest.raises(BadRequest):
        protocol.parse_package(scope, name)


def test_identity_is_case_insensitive() -> None:
    assert protocol.parse_package("Mona", "LinkedList") == protocol.parse_package(
        "mona", "linkedlist"
    )


@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        ("5.9.0", "Package@swift-5.9.swift"),
        ("5.9", "Package@swift-5.9.swift"),
        ("5.8.0", "Package@swift-5.swift"),  # declared tools version 5.8 in Package@swift-5
        ("5.0.0", "Package@swift-5.swift"),
        ("6.0.0", None),
        ("4.2.0", None),
    ],
)
def test_manifest_selection(requested: str, expected: str | None) -> None:
    manifests = [
        ManifestChoice("Package.swift", "5.7"),
        ManifestChoice("Package@swift-5.9.swift", "5.9"),
        ManifestChoice("Package@swift-5.swift", "5.8"),
    ]
    assert protocol.select_manifest(manifests, requested) == expected


@pytest.mark.parametrize("value", ["five", "5..9", "5.9.0.1", "", "5.x"])
def test_invalid_swift_versions(value: str) -> None:
    with pytest.raises(BadRequest):
        protocol.parse_swift_version(value)


def test_link_entries_have_exactly_the_attributes_swiftpm_expects() -> None:
    entry = protocol.link(
        "http://p/mona/x/1.0.0/Package.swift?swift-version=5.9",
        "alternate",
        filename="Package@swift-5.9.swift",
        swift_tools_version="5.9",
    )
    assert entry == (
        '<http://p/mona/x/1.0.0/Package.swift?swift-version=5.9>; rel="alternate"; '
        'filename="Package@swift-5.9.swift"; swift-tools-version="5.9"'
    )
    assert len(entry.split(";")) == 4


def test_neighbours_follow_semver_precedence() -> None:
    versions = [Version.parse(v) for v in ["1.0.0", "1.1.0-beta.2", "1.1.0", "1.0.1", "2.0.0-rc.1"]]
    latest, before, after = protocol.neighbours(versions, Version.parse("1.1.0"))
    assert (str(latest), str(before), str(after)) == ("2.0.0-rc.1", "1.1.0-beta.2", "2.0.0-rc.1")
    latest, before, after = protocol.neighbours(versions, Version.parse("1.0.0"))
    assert before is None
    assert str(after) == "1.0.1"
    # Newest first, as lists are stored, and a version the list does not hold.
    newest_first = sorted(versions, reverse=True)
    latest, before, after = protocol.neighbours(newest_first, Version.parse("1.0.5"))
    assert (str(latest), str(before), str(after)) == ("2.0.0-rc.1", "1.0.1", "1.1.0-beta.2")
    latest, before, after = protocol.neighbours(newest_first, Version.parse("3.0.0"))
    assert (str(latest), str(before), after) == ("3.0.0", "2.0.0-rc.1", None)


def test_timestamps_are_whole_second_utc() -> None:
    assert utc_timestamp(1_700_000_000.75) == "2023-11-14T22:13:20Z"


def test_digest_header_is_base64_of_raw_sha256() -> None:
    # sha256("") in hex and in the RFC 3230 base64 form.
    hex_digest = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert protocol.digest_header(hex_digest) == (
        "sha-256=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
    )
