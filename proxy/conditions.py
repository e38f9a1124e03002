"""Conditional and range requests for archives (RFC 9110 sections 13 and 14).

Pure functions: the archive handler evaluates a GET's preconditions and its
`Range` against the archive's entity tag (its checksum), publication time and
size. A precondition that fails and a range that cannot be satisfied are
`ProtocolError`s the middleware answers as problems.
"""

from __future__ import annotations

import re
from enum import Enum

from proxy.protocol import RangeNotSatisfiable

# Optional whitespace in header fields is spaces and tabs only (RFC 9110 5.6.3).
_OWS = " \t"
# RFC 9110 14.1.2: positions are ASCII digits (RFC 5234 DIGIT), of any length;
# range unit names are case-insensitive (14.1).
_RANGE = re.compile(r"bytes=([0-9]*)-([0-9]*)", re.IGNORECASE | re.ASCII)
# Larger than any file: a longer position needs no `int()` (whose default limit
# is 4300 digits) to be compared with a size.
_HUGE = 10**18


class Condition(Enum):
    SEND = "send"  # serve, honouring any Range
    WHOLE = "whole"  # serve the whole representation: If-Range did not match
    NOT_MODIFIED = "not_modified"
    FAILED = "failed"


def _entity_tags(value: str) -> list[tuple[bool, str]]:
    """(weak, opaque tag) of each entry of an entity-tag list; `*` is ("", "*")."""
    tags = []
    for item in value.split(","):
        tag = item.strip()
        tags.append((tag.startswith("W/"), tag.removeprefix("W/")))
    return tags


def _matches(value: str, etag: str, *, weak: bool) -> bool:
    return any(tag in ("*", etag) and (weak or not is_weak) for is_weak, tag in _entity_tags(value))


def _later(moment: float | None, than: float | None) -> bool:
    return moment is not None and than is not None and moment > than


def evaluate_conditions(
    *,
    if_match: str | None,
    if_none_match: str | None,
    if_modified_since: float | None,
    if_unmodified_since: float | None,
    if_range: str | None,
    etag: str,
    last_modified: float | None,
) -> Condition:
    """The outcome of a GET's preconditions, in the order of RFC 9110 13.2.2."""
    if if_match is not None:
        if not _matches(if_match, etag, weak=False):
            return Condition.FAILED
    elif _later(last_modified, if_unmodified_since):
        return Condition.FAILED
    if if_none_match is not None:
        if _matches(if_none_match, etag, weak=True):
            return Condition.NOT_MODIFIED
    elif (
        if_modified_since is not None
        and last_modified is not None
        and last_modified <= if_modified_since
    ):
        return Condition.NOT_MODIFIED
    if if_range is not None and if_range.strip() != etag:
        # Only a strong entity tag is a validator worth a partial answer here.
        return Condition.WHOLE
    return Condition.SEND


def byte_range(header: str | None, size: int) -> tuple[int, int]:
    """[start, end) of a single `Range: bytes=...`, the whole body without one.

    Several ranges, a malformed one or one starting past the end cannot be
    satisfied: 416 with the complete length.
    """
    if header is None:
        return 0, size
    match = _RANGE.fullmatch(header.strip(_OWS))
    if match is None or match.groups() == ("", ""):
        raise RangeNotSatisfiable(f"unsupported or malformed Range {header[:80]!r}", size)
    first, last = (_position(text) for text in match.groups())
    if first is None:
        # A suffix range needs a non-zero length to be satisfiable (RFC 9110 14.1.1).
        if not last:
            raise RangeNotSatisfiable(f"the range {header[:80]!r} selects nothing", size)
        return max(0, size - last), size
    end = size if last is None else min(last + 1, size)
    if first >= size or (last is not None and last < first):
        raise RangeNotSatisfiable(f"the range {header[:80]!r} is outside 0-{size - 1}", size)
    return first, end


def _position(digits: str) -> int | None:
    if not digits:
        return None
    significant = digits.lstrip("0")
    return int(significant or "0") if len(significant) < 18 else _HUGE
