"""The pure parts of the registry upstream: Link headers, documents, media rules."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict

from upstreams.model import Version
from upstreams.registry.documents import (
    DocumentError,
    normalise_timestamp,
    parse_list_page,
    parse_release_metadata,
)
from upstreams.registry.links import manifest_links, parse_links
from upstreams.registry.media import ARCHIVE, JSON_DOCUMENT, MANIFEST, violation

CHECKSUM = "a2ac54cf25fbc1ad0028f03f0aa4b96833b83bb05a14e510892bb27dea4dc812"


def test_links_split_on_commas_outside_quotes_and_brackets() -> None:
    links = parse_links(
        [
            '<https://r/x?a=1,2>; rel="next", <https://github.com/m/l>; rel=canonical',
            '<https://r/y>; rel="alternate"; title="a, b; c"',
        ]
    )
    assert [link.target for link in links] == [
        "https://r/x?a=1,2",
        "https://github.com/m/l",
        "https://r/y",
    ]
    assert links[0].rels == {"next"}
    assert links[1].rels == {"canonical"}
    assert links[2].params["title"] == "a, b; c"


def test_malformed_link_entries_are_skipped() -> None:
    assert parse_links(['https://no-brackets; rel="next", , <ok>; rel="next"']) == [
        parse_links(['<ok>; rel="next"'])[0]
    ]


def test_manifest_links_need_exactly_four_attributes() -> None:
    links = parse_links(
        [
            '<P?swift-version=5.8>; rel="alternate"; filename="Package@swift-5.8.swift"; '
            'swift-tools-version="5.8", '
            '<P?swift-version=5.7>; rel="alternate"; filename="Package@swift-5.7.swift"; '
            'swift-tools-version="5.7"; extra="1", '
            '<P?swift-version=5.6>; rel="alternate"; filename="Package@swift-5.6.swift"'
        ]
    )
    found = manifest_links(links)
    assert [(m.target, m.filename, m.tools_version) for m in found] == [
        ("P?swift-version=5.8", "Package@swift-5.8.swift", "5.8")
    ]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2023-02-16T04:00:00Z", "2023-02-16T04:00:00Z"),
        ("2023-02-16T04:00:00.999Z", "2023-02-16T04:00:00Z"),
        ("2023-02-16T05:30:00.1+01:30", "2023-02-16T04:00:00Z"),
        ("2023-02-16T04:00:00", "2023-02-16T04:00:00Z"),
        ("yesterday", None),
        (12, None),
        (None, None),
    ],
)
def test_timestamps_become_whole_second_utc(raw: object, expected: str | None) -> None:
    assert normalise_timestamp(raw) == expected


def test_list_page_requires_releases_object() -> None:
    with pytest.raises(DocumentError):
        parse_list_page(b'{"versions": []}')
    with pytest.raises(DocumentError):
        parse_list_page(b"[]")


def test_list_page_keeps_strict_semver_keys_only() -> None:
    page = parse_list_page(
        b'{"releases": {"1.0.0": {}, "v1.1.0": {}, "1.2": {}, "2.0.0-rc.1+b.5": null,'
        b' "3.0.0": {"problem": {"detail": "gone", "status": 410}}}}'
    )
    assert page.versions == (
        Version.parse("1.0.0"),
        Version.parse("2.0.0-rc.1+b.5"),
        Version.parse("3.0.0"),
    )
    assert page.dropped == ("v1.1.0", "1.2")
    assert page.problems == {"3.0.0": {"detail": "gone", "status": 410}}


def _metadata(resource: str, extra: str = "") -> bytes:
    return (
        f'{{"id": "mona.LinkedList", "version": "1.0.0", "resources": [{resource}]{extra}}}'
    ).encode()


def test_metadata_checksum_must_be_lowercase_hex_sha256() -> None:
    ok = parse_release_metadata(
        _metadata(f'{{"name": "source-archive", "checksum": "{CHECKSUM}"}}')
    )
    assert ok.checksum == CHECKSUM
    assert ok.metadata == {}
    assert ok.signing is None
    for bad in (
        '{"name": "source-archive"}',
        f'{{"name": "source-archive", "checksum": "{CHECKSUM.upper()}"}}',
        '{"name": "source-archive", "checksum": "abc"}',
        f'{{"name": "other", "checksum": "{CHECKSUM}"}}',
    ):
        with pytest.raises(DocumentError):
            parse_release_metadata(_metadata(bad))


def test_metadata_signing_needs_both_keys() -> None:
    resource = (
        f'{{"name": "source-archive", "checksum": "{CHECKSUM}", '
        '"signing": {"signatureFormat": "cms-1.0.0"}}'
    )
    with pytest.raises(DocumentError):
        parse_release_metadata(_metadata(resource))


def test_metadata_that_is_not_an_object_becomes_empty() -> None:
    parsed = parse_release_metadata(
        _metadata(
            f'{{"name": "source-archive", "checksum": "{CHECKSUM}"}}',
            ', "metadata": "nope", "publishedAt": "2023-02-16T04:00:00.5Z"',
        )
    )
    assert parsed.metadata == {}
    assert parsed.published_at == "2023-02-16T04:00:00Z"


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"Content-Type": "application/json", "Content-Version": "1"}, None),
        ({"Content-Type": "application/json; charset=utf-8", "Content-Version": "1"}, None),
        ({"Content-Type": "application/json"}, "no Content-Version"),
        ({"Content-Type": "application/json", "Content-Version": "2"}, "Content-Version"),
        (
            {"Content-Type": "application/vnd.swift.registry.v1+json", "Content-Version": "1"},
            "Content-Type",
        ),
        ({"Content-Version": "1"}, "no Content-Type"),
    ],
)
def test_json_documents_are_checked_like_swiftpm(
    headers: dict[str, str], reason: str | None
) -> None:
    found = violation(CIMultiDict(headers), JSON_DOCUMENT)
    if reason is None:
        assert found is None
    else:
        assert found is not None
        assert reason in found


def test_archives_may_omit_content_version_but_not_the_zip_type() -> None:
    assert violation(CIMultiDict({"Content-Type": "application/zip"}), ARCHIVE) is None
    assert violation(CIMultiDict({"Content-Type": "application/octet-stream"}), ARCHIVE)
    assert violation(CIMultiDict({"Content-Type": "text/x-swift"}), MANIFEST)
