"""What upstream registries send, parsed for any bytes at all.

Release lists, release metadata, `/identifiers` answers and problem bodies
(SE-0292 4.1, 4.2, 4.5, RFC 9457) either parse into values the proxy can
serve again or raise `DocumentError`, which the registry upstream turns into
a 502 naming the upstream; `Link` headers (RFC 8288) never raise. Each
document is drawn as arbitrary bytes, as arbitrary JSON, and as a valid
document with hostile values in its fields.
"""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from tests.properties.strategies import hostile, hostile_bytes, json_values, semantic_versions
from upstreams.model import is_sha256_hex, version_triple
from upstreams.registry.documents import (
    DocumentError,
    normalise_timestamp,
    parse_identifiers,
    parse_list_page,
    parse_release_metadata,
    problem_detail,
)
from upstreams.registry.links import manifest_links, parse_links

WHOLE_SECOND_UTC = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")

timestamps = hostile(
    st.sampled_from(
        [
            "2023-02-16T04:00:00Z",
            "2023-02-16T04:00:00.123+02:00",
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59-01:00",
        ]
    )
)
checksums = hostile(st.just("a2ac54cf25fbc1ad0028f03f0aa4b96833b83bb05a14e510892bb27dea4dc812"))


def _encoded(value: Any) -> bytes:
    return json.dumps(value).encode("utf-8", "surrogatepass")


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def documents(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    return st.one_of(hostile_bytes, json_values.map(_encoded), valid.map(_encoded))


release_lists = st.builds(
    lambda versions, entry: {"releases": dict.fromkeys(versions, entry)},
    st.lists(hostile(semantic_versions()), max_size=4),
    st.one_of(json_values, st.builds(lambda problem: {"problem": problem}, json_values)),
)


@given(documents(release_lists))
@example(_nested(5000))
@example(b'{"releases": {"1.1\\u0665.0": {}}}')
def test_release_lists(body: bytes) -> None:
    try:
        page = parse_list_page(body)
    except DocumentError:
        return
    for version in page.versions:
        assert str(version).isascii()
    for problem in page.problems.values():
        assert isinstance(problem["detail"], str)


metadata_documents = st.fixed_dictionaries(
    {
        "id": st.just("mona.LinkedList"),
        "version": st.just("1.0.0"),
        "resources": st.lists(
            st.fixed_dictionaries(
                {"name": st.just("source-archive"), "type": st.just("application/zip")},
                optional={"checksum": checksums, "signing": json_values},
            ),
            max_size=2,
        ),
    },
    optional={
        "metadata": st.one_of(
            json_values, st.fixed_dictionaries({"originalPublicationTime": timestamps})
        ),
        "publishedAt": st.one_of(timestamps, json_values),
    },
)


@given(documents(metadata_documents))
@example(_nested(5000))
@example(
    _encoded(
        {
            "id": "mona.LinkedList",
            "version": "1.0.0",
            "resources": [{"name": "source-archive", "checksum": "0" * 64}],
            "publishedAt": "0001-01-01T00:00:00+01:00",
        }
    )
)
def test_release_metadata(body: bytes) -> None:
    try:
        metadata = parse_release_metadata(body)
    except DocumentError:
        return
    assert is_sha256_hex(metadata.checksum)
    assert metadata.published_at is None or WHOLE_SECOND_UTC.fullmatch(metadata.published_at)
    published = metadata.metadata.get("originalPublicationTime")
    assert published is None or WHOLE_SECOND_UTC.fullmatch(published)
    if metadata.signing is not None:
        assert all(isinstance(metadata.signing[key], str) for key in metadata.signing)


@given(documents(st.builds(lambda ids: {"identifiers": ids}, st.lists(json_values))))
@example(_nested(5000))
def test_identifiers(body: bytes) -> None:
    try:
        identifiers = parse_identifiers(body)
    except DocumentError:
        return
    assert all(isinstance(identifier, str) for identifier in identifiers)


@given(documents(st.builds(lambda detail: {"detail": detail}, json_values)))
@example(_nested(5000))
def test_problem_details(body: bytes) -> None:
    detail = problem_detail(body)
    assert detail is None or isinstance(detail, str)


@given(st.one_of(timestamps, json_values))
@example("0001-01-01T00:00:00+01:00")
@example("9999-12-31T23:59:59-01:00")
@example("00011001000000000")  # year 1: four digits all the same
def test_timestamps(value: object) -> None:
    normalised = normalise_timestamp(value)
    assert normalised is None or WHOLE_SECOND_UTC.fullmatch(normalised)


link_headers = hostile(
    st.just(
        '<https://r.example/mona/Node/1.0.0/Package.swift?swift-version=5.9>; rel="alternate"; '
        'filename="Package@swift-5.9.swift"; swift-tools-version="5.9", '
        '<https://r.example/mona/Node/1.0.1>; rel="successor-version"'
    )
)


@given(st.lists(link_headers, max_size=3))
@example(['<x>; rel="alternate"; filename="Package@swift-5.9.swift"; swift-tools-version="5¹"'])
@example(['<x>; rel=alternate; filename="Package@swift-5.9.swift"; swift-tools-version="5.9\\""'])
def test_link_headers(values: list[str]) -> None:
    links = parse_links(values)
    for link in links:
        assert isinstance(link.target, str)
    # SwiftPM refuses a manifest whose alternates' tools versions do not parse
    # (SE-0292 4.3; `getAvailableManifests` in SwiftPM's RegistryClient.swift):
    # none may be passed on to clients.
    for manifest in manifest_links(links):
        assert version_triple(manifest.tools_version) is not None
