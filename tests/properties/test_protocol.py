"""The wire-protocol parsers of `proxy.protocol`, for any text at all.

Each one either returns a value that satisfies its grammar or raises the
`ProtocolError` its handler turns into a 4xx problem: `Accept` (SE-0292 3.5;
media types are ASCII tokens, RFC 9110 8.3.1), path segments (3.6, 4),
`swift-version` (4.3), `Range` (RFC 9110 14.1.2: ASCII digits) and the
conditional headers (RFC 9110 13).
"""

from __future__ import annotations

import re

from hypothesis import example, given
from hypothesis import strategies as st

from proxy import conditions, protocol
from proxy.conditions import Condition
from proxy.protocol import (
    BadRequest,
    ManifestChoice,
    RangeNotSatisfiable,
    ReleaseResource,
    Suffix,
    UnsupportedMediaType,
)
from tests.properties.strategies import (
    REGISTRY_TYPE,
    accept_headers,
    hostile,
    names,
    ranges,
    scopes,
    semantic_versions,
    swift_versions,
)


def _names_registry_type(accept: str) -> bool:
    """Whether any media range's type is the registry's, compared as ASCII
    case-insensitively as RFC 9110 8.3.1 compares media types."""
    for media_range in accept.split(","):
        prefix = media_range.split(";", 1)[0].strip(" \t")[: len(REGISTRY_TYPE)]
        if prefix.isascii() and prefix.lower() == REGISTRY_TYPE:
            return True
    return False


@given(hostile(accept_headers), st.sampled_from(Suffix))
@example("application/vnd.\u017fwift.registry.v2+json", Suffix.JSON)  # LONG S folds to `s`
@example("application/vnd.swift.registry.v1+json", Suffix.JSON)
@example("\u00a0application/vnd.swift.registry.v2+json", Suffix.JSON)  # no-break space
@example("application/vnd.swift.registry.v\u0661+json", Suffix.JSON)
def test_accept_headers(accept: str, suffix: Suffix) -> None:
    try:
        protocol.check_accept(accept, suffix)
    except (BadRequest, UnsupportedMediaType):
        # Only a registry media type can be refused; any other is served as v1.
        assert _names_registry_type(accept), accept


@given(hostile(scopes), hostile(names.map(lambda name: name + ".json")))
def test_package_segments(scope: str, name: str) -> None:
    try:
        package = protocol.parse_package(scope, protocol.split_format_suffix(name))
    except BadRequest:
        return
    assert package.scope == scope
    assert package.name in (name, name.removesuffix(".json"))


release_segments = st.builds(
    lambda version, suffix: version + suffix,
    semantic_versions(),
    st.sampled_from(["", ".zip", ".json"]),
)


@given(hostile(release_segments))
@example("1.0.0-rc.zip")
@example("1.1\u0665.0.zip")
def test_release_segments(segment: str) -> None:
    try:
        version, resource = protocol.classify_release_segment(segment)
    except BadRequest:
        return
    suffix = ".zip" if resource is ReleaseResource.ARCHIVE else segment.removeprefix(str(version))
    assert str(version) + suffix == segment
    assert suffix in ("", ".json", ".zip")


@given(hostile(swift_versions), st.lists(swift_versions, max_size=3))
@example("5\u00b9", ["5.9"])
def test_manifest_selection(wanted: str, available: list[str]) -> None:
    manifests = [ManifestChoice(f"Package@swift-{v}.swift", v) for v in available]
    try:
        chosen = protocol.select_manifest(manifests, wanted)
    except BadRequest:
        return
    assert chosen is None or chosen in {m.filename for m in manifests}


_POSITION = re.compile(r"[0-9]*")


@given(hostile(ranges), st.integers(1, 2**40))
@example("bytes=\u0665-", 10)  # ARABIC-INDIC FIVE is no RFC 5234 DIGIT
@example("bytes=" + "9" * 5000 + "-", 10)
@example("bytes=-" + "9" * 5000, 10)
@example("bytes=0-" + "9" * 5000, 10)
def test_ranges(header: str, size: int) -> None:
    try:
        start, end = conditions.byte_range(header, size)
    except RangeNotSatisfiable:
        return
    first, _, last = header.strip(" \t").removeprefix("bytes=").partition("-")
    assert _POSITION.fullmatch(first, re.ASCII) is not None
    assert _POSITION.fullmatch(last, re.ASCII) is not None
    assert 0 <= start < end <= size


validators = st.one_of(
    st.none(),
    hostile(st.sampled_from(['"abc"', 'W/"abc"', "*", '"abc", "def"'])),
)
moments = st.one_of(st.none(), st.floats(allow_nan=False), st.integers(-(2**40), 2**40))


@given(validators, validators, moments, moments, validators, moments)
def test_conditions(
    if_match: str | None,
    if_none_match: str | None,
    if_modified_since: float | None,
    if_unmodified_since: float | None,
    if_range: str | None,
    last_modified: float | None,
) -> None:
    outcome = conditions.evaluate_conditions(
        if_match=if_match,
        if_none_match=if_none_match,
        if_modified_since=if_modified_since,
        if_unmodified_since=if_unmodified_since,
        if_range=if_range,
        etag='"abc"',
        last_modified=last_modified,
    )
    assert isinstance(outcome, Condition)


@given(hostile(st.just("url=https://github.com/mona/LinkedList.git&x=1")))
@example("url=%FF%FE")
@example("url=a+b%2Bc%2525")
def test_raw_query_values(query: str) -> None:
    try:
        value = protocol.raw_query_value(query, "url")
    except BadRequest:
        return
    assert value is None or "\ufffd" not in value or "\ufffd" in query
