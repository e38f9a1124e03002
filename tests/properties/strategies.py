"""Inputs for the parser properties: arbitrary text and bytes, and near misses.

Arbitrary Unicode rarely lands next to a grammar's edge by chance, so every
parser is also fed valid inputs with a few characters replaced, inserted or
removed, drawing from characters that have fooled parsers before: digits of
other scripts (`str.isdigit`, and `\\d` in a Python str pattern, accept them),
superscripts (`isdigit` but not `int`), letters whose case folding lands on
ASCII (KELVIN SIGN folds to `k`, LONG S to `s` under `re.IGNORECASE`),
whitespace beyond ASCII, controls, lone surrogates and the protocol's own
punctuation.
"""

from __future__ import annotations

import string

from hypothesis import strategies as st

OTHER_DIGITS = "٠٥٩۵०५০৫০๕༥၅០᠕０５９𝟓𝟘"
SUPERSCRIPTS = "⁰¹²³⁴⁵⁹₀₅₉①⑤"
# KELVIN SIGN, LONG S, dotted and dotless I, ANGSTROM SIGN, the fi ligature.
FOLDING_TO_ASCII = "\u212a\u017f\u0130\u0131\u212b\ufb01"
WHITESPACE = " \t\n\r\x0b\x0c\x85\xa0\u1680\u2000\u2028\u2029\u3000\ufeff"
CONTROLS = "\x00\x01\x1b\x7f\x80\x9f"
# Lone surrogates: no UTF-8 form, yet JSON's `\ud800` escapes produce them.
SURROGATES = "\ud800\udcff"
PUNCTUATION = ".-_+/:@%?#=&;,*~\\\"'<>[]{} "
TRICKY = (
    OTHER_DIGITS
    + SUPERSCRIPTS
    + FOLDING_TO_ASCII
    + WHITESPACE
    + CONTROLS
    + SURROGATES
    + PUNCTUATION
)
ASCII_DIGITS = string.digits
ASCII_ALNUM = string.ascii_letters + string.digits

tricky_characters = st.one_of(
    st.sampled_from(TRICKY),
    st.sampled_from(ASCII_ALNUM),
    st.characters(),
)


@st.composite
def near_misses(draw: st.DrawFn, valid: st.SearchStrategy[str]) -> str:
    """A valid input with up to three characters replaced, inserted or removed."""
    text = draw(valid)
    for _ in range(draw(st.integers(0, 3))):
        position = draw(st.integers(0, len(text)))
        edit = draw(st.sampled_from(("replace", "insert", "delete")))
        character = draw(tricky_characters)
        if edit == "insert" or not text:
            text = text[:position] + character + text[position:]
        elif edit == "replace":
            position = min(position, len(text) - 1)
            text = text[:position] + character + text[position + 1 :]
        else:
            position = min(position, len(text) - 1)
            text = text[:position] + text[position + 1 :]
    return text


def hostile(valid: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Valid inputs, near misses of them, and arbitrary text."""
    return st.one_of(valid, near_misses(valid), st.text(), st.text(alphabet=TRICKY))


def numeral(max_digits: int = 25) -> st.SearchStrategy[str]:
    """A decimal numeral as SemVer writes one: `0`, or no leading zero."""
    return st.one_of(
        st.just("0"),
        st.integers(1, 10**max_digits - 1).map(str),
    )


identifier_characters = st.sampled_from(ASCII_ALNUM + "-")
alphanumeric_identifier = st.text(identifier_characters, min_size=1, max_size=8).filter(
    lambda text: not text.isdigit()
)
prerelease_identifier = st.one_of(numeral(), alphanumeric_identifier)
build_identifier = st.text(identifier_characters, min_size=1, max_size=8)


@st.composite
def semantic_versions(draw: st.DrawFn, max_digits: int = 4) -> str:
    """A strict SemVer 2.0.0 string (section 9 and 10 of the specification)."""
    core = ".".join(draw(numeral(max_digits)) for _ in range(3))
    if draw(st.booleans()):
        core += "-" + ".".join(draw(st.lists(prerelease_identifier, min_size=1, max_size=3)))
    if draw(st.booleans()):
        core += "+" + ".".join(draw(st.lists(build_identifier, min_size=1, max_size=3)))
    return core


scopes = st.from_regex(r"[a-zA-Z0-9](?:[a-zA-Z0-9]|-(?=[a-zA-Z0-9])){0,38}", fullmatch=True)
names = st.from_regex(r"[a-zA-Z0-9](?:[a-zA-Z0-9]|[-_](?=[a-zA-Z0-9])){0,99}", fullmatch=True)
swift_versions = st.lists(numeral(3), min_size=1, max_size=3).map(".".join)

# Bytes: arbitrary, and valid UTF-8 text with stray bytes mixed in.
hostile_bytes = st.one_of(
    st.binary(),
    st.text().map(lambda text: text.encode("utf-8", "surrogatepass")),
    st.lists(st.one_of(st.binary(max_size=3), st.text(max_size=3).map(str.encode))).map(b"".join),
)

# Any JSON document, as upstreams, bundles and Package.resolved files may hold.
json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)

REGISTRY_TYPE = "application/vnd.swift.registry"

media_ranges = st.builds(
    lambda version, suffix, parameters: f"{REGISTRY_TYPE}{version}{suffix}{parameters}",
    st.sampled_from(["", ".v1", ".v2", ".vX", ".v", ".v01"]),
    st.sampled_from(["", "+json", "+zip", "+swift", "+JSON", "+xml"]),
    st.sampled_from(["", "; q=0.9", ";charset=utf-8"]),
)
accept_headers = st.lists(
    st.one_of(media_ranges, st.sampled_from(["*/*", "application/json", "text/html"])),
    min_size=1,
    max_size=3,
).map(", ".join)

# `Range: bytes=first-last` (RFC 9110 14.1.2), positions of any length.
ranges = st.builds(
    lambda first, last: f"bytes={first}-{last}",
    st.one_of(st.just(""), numeral(30)),
    st.one_of(st.just(""), numeral(30)),
)
