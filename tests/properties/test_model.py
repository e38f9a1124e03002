"""The shared value types accept exactly their grammar, for any text at all.

Each property pairs the parser with an oracle written from the specification,
character by character, independent of the parser's regular expressions:
identities (SE-0292 3.6), strict SemVer 2.0.0 (section 9, 10, 11), versioned
manifest names and tools versions (SE-0292 4.3), SHA-256 hex digests.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from cache.digests import InvalidDigestError, validate_digest
from proxy.protocol import BadRequest, parse_swift_version
from tests.properties.strategies import (
    ASCII_ALNUM,
    ASCII_DIGITS,
    hostile,
    hostile_bytes,
    names,
    scopes,
    semantic_versions,
    swift_versions,
)
from upstreams.git.tags import release_tags
from upstreams.model import (
    InvalidIdentity,
    InvalidVersion,
    PackageId,
    Version,
    parse_tools_version,
    versioned_manifest_triple,
)

# SwiftPM keeps version and tools-version components in `Int`, 64 bits on every
# platform it supports: a larger one is no version any client can ask for.
INT_MAX = 2**63 - 1


def _fits_int(numeral: str) -> bool:
    significant = numeral.lstrip("0")
    return len(significant) <= 19 and int(significant or "0") <= INT_MAX


def _is_swift_version(text: str) -> bool:
    """`5`, `5.9`, `5.9.0`: one to three ASCII numerals, each an `Int` for SwiftPM."""
    parts = text.split(".")
    return 1 <= len(parts) <= 3 and all(
        part and set(part) <= set(ASCII_DIGITS) and _fits_int(part) for part in parts
    )


def _is_scope(text: str) -> bool:
    """SE-0292 3.6: ASCII alphanumerics and single inner hyphens, 1-39 characters."""
    return (
        1 <= len(text) <= 39
        and all(char in ASCII_ALNUM or char == "-" for char in text)
        and text[0] != "-"
        and text[-1] != "-"
        and "--" not in text
    )


def _is_name(text: str) -> bool:
    """SE-0292 3.6: ASCII alphanumerics, single inner `-` or `_`, 1-100 characters."""
    if not 1 <= len(text) <= 100 or not all(c in ASCII_ALNUM or c in "-_" for c in text):
        return False
    punctuation = [char in "-_" for char in text]
    return (
        not punctuation[0]
        and not punctuation[-1]
        and "TT" not in "".join("T" if flag else "F" for flag in punctuation)
    )


def _is_numeric(text: str) -> bool:
    """SemVer 2.0.0 2: a non-negative integer in ASCII digits, no leading zero."""
    return bool(text) and all(c in ASCII_DIGITS for c in text) and (text == "0" or text[0] != "0")


def _is_semver(text: str) -> bool:
    """SemVer 2.0.0 9 and 10, with SwiftPM's Int-sized core numbers."""
    rest, plus, build = text.partition("+")
    core, minus, prerelease = rest.partition("-")
    numbers = core.split(".")
    if len(numbers) != 3 or not all(_is_numeric(n) and _fits_int(n) for n in numbers):
        return False
    identifier_chars = set(ASCII_ALNUM + "-")
    if minus:
        for part in prerelease.split("."):
            if not part or not set(part) <= identifier_chars:
                return False
            if all(c in ASCII_DIGITS for c in part) and not _is_numeric(part):
                return False
    if plus:
        return all(part and set(part) <= identifier_chars for part in build.split("."))
    return True


@given(hostile(scopes), hostile(names))
@example("mona\u212a", "LinkedList")  # KELVIN SIGN, which folds to `k`
@example("mona", "Linked\u0130ist")
def test_identities_accept_exactly_the_grammar(scope: str, name: str) -> None:
    try:
        package = PackageId(scope, name)
    except InvalidIdentity:
        assert not (_is_scope(scope) and _is_name(name))
        return
    assert _is_scope(scope)
    assert _is_name(name)
    assert PackageId.parse(str(package)) == package
    assert package.key == package.key.lower() == package.key.encode("ascii").decode().lower()


@given(hostile(st.builds(lambda s, n: f"{s}.{n}", scopes, names)))
def test_identifiers_round_trip(text: str) -> None:
    try:
        package = PackageId.parse(text)
    except InvalidIdentity:
        return
    assert str(package) == text


@given(hostile(semantic_versions()))
@example("1.1\u0665.0")  # ARABIC-INDIC DIGIT FIVE: `\d` matched it, and it read as 1.15.0
@example("1.0.0-\u0665a")
@example("1.0.0-1\u0665")
@example("1.0." + "9" * 5000)  # beyond `int()`'s default limit of 4300 digits
@example("1.0.0-" + "9" * 5000)
@example("9223372036854775808.0.0")
def test_versions_accept_exactly_strict_semver(text: str) -> None:
    try:
        version = Version.parse(text)
    except InvalidVersion:
        assert not _is_semver(text)
        return
    assert _is_semver(text), text
    assert str(version) == text
    assert Version.parse(str(version)) == version


@given(semantic_versions(max_digits=25), semantic_versions(max_digits=25))
def test_version_precedence_is_semver_precedence(left: str, right: str) -> None:
    """SemVer 2.0.0 11, for numbers of any length."""

    def key(text: str) -> tuple[object, ...]:
        rest = text.partition("+")[0]
        core, minus, prerelease = rest.partition("-")
        numbers = tuple(int(n) for n in core.split("."))
        parts = tuple(
            (0, int(p), "") if p.isascii() and p.isdigit() else (1, 0, p)
            for p in prerelease.split(".")
        )
        return (numbers, 0 if minus else 1, parts if minus else ())

    try:
        first, second = Version.parse(left), Version.parse(right)
    except InvalidVersion:
        assert not (_is_semver(left) and _is_semver(right))
        return
    if key(left) != key(right):
        assert (first < second) == (key(left) < key(right))


@given(hostile(semantic_versions().map(lambda v: "v" + v)))
def test_tags_name_versions_or_nothing(tag: str) -> None:
    version = Version.from_tag(tag)
    if version is not None:
        assert str(version) in (tag, tag[1:])
        assert _is_semver(str(version))


_VERSIONED = re.compile(r"Package@swift-([0-9]+)(?:\.([0-9]+))?(?:\.([0-9]+))?\.swift")


@given(hostile(swift_versions.map(lambda v: f"Package@swift-{v}.swift")))
@example("Package@swift-\u0665.swift")
@example("Package@swift-" + "9" * 5000 + ".swift")
def test_versioned_manifest_names(filename: str) -> None:
    triple = versioned_manifest_triple(filename)
    if triple is None:
        return
    match = _VERSIONED.fullmatch(filename)
    assert match is not None, filename
    assert all(_fits_int(part or "0") for part in match.groups())
    assert triple == tuple(int(part.lstrip("0") or "0") if part else 0 for part in match.groups())


@given(
    st.one_of(
        hostile_bytes,
        hostile(swift_versions.map(lambda v: f"// swift-tools-version:{v}\n")).map(
            lambda text: text.encode("utf-8", "surrogatepass")
        ),
    )
)
@example(b"// swift-tools-version:" + b"9" * 5000)
@example(b"// swift-tools-version:5.99999999999999999999")
def test_declared_tools_versions_are_swift_versions(content: bytes) -> None:
    """What a manifest declares is always something `?swift-version=` can name."""
    declared = parse_tools_version(content)
    if declared is not None:
        assert parse_swift_version(declared) is not None


@given(hostile(swift_versions))
@example("5\u00b9")  # SUPERSCRIPT ONE: `isdigit`, but not `int`
@example("\u0665.\u0669")
@example("9" * 5000)
@example("0" * 5000 + "5")
def test_swift_versions(text: str) -> None:
    try:
        triple = parse_swift_version(text)
    except BadRequest:
        assert not _is_swift_version(text)
        return
    assert _is_swift_version(text)
    parts = [int(part.lstrip("0") or "0") for part in text.split(".")]
    assert triple == (*parts, *[0] * (3 - len(parts)))


@given(hostile(st.from_regex(r"[0-9a-f]{64}", fullmatch=True)))
def test_digests(text: str) -> None:
    try:
        assert validate_digest(text) == text
    except InvalidDigestError:
        assert not (len(text) == 64 and set(text) <= set("0123456789abcdef"))
        return
    assert len(text) == 64
    assert set(text) <= set("0123456789abcdef")


@pytest.mark.parametrize("value", [None, 5, b"0" * 64, ["a"]])
def test_digests_of_other_types_are_refused(value: object) -> None:
    with pytest.raises(InvalidDigestError):
        validate_digest(value)  # type: ignore[arg-type]


advertised_refs = st.dictionaries(
    st.one_of(
        st.binary(max_size=30),
        hostile(semantic_versions().map(lambda v: f"refs/tags/v{v}")).map(
            lambda ref: ref.encode("utf-8", "surrogatepass")
        ),
    ),
    st.one_of(st.none(), st.binary(max_size=41), st.just(b"0" * 40), st.just(b"\xff" * 40)),
    max_size=4,
)


@given(advertised_refs)
@example({b"refs/tags/1.0.0": b"\xff" * 40})  # not an object name
@example({b"refs/tags/\xff1.0.0": b"0" * 40})
def test_release_tags(refs: dict[bytes, bytes | None]) -> None:
    """What a git remote advertises (any bytes) gives release tags or nothing."""
    for version, tag in release_tags(refs).items():
        assert Version.from_tag(tag.name) == version
        assert re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", tag.sha)
