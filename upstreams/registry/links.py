"""`Link` header parsing (RFC 8288), pure standard library.

Registries put pagination (`next`), repository URLs (`canonical`,
`alternate`) and version-specific manifests (4-attribute `alternate`) in
`Link` headers (SE-0292 4.1, 4.3; syntax per RFC 8288).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from upstreams.model import version_triple


@dataclass(frozen=True, slots=True)
class Link:
    """One link: its target as written (maybe relative) and its attributes."""

    target: str
    # Attribute names lower-cased, values unquoted; `rel` kept as written.
    params: dict[str, str] = field(default_factory=dict)

    @property
    def rels(self) -> frozenset[str]:
        """`rel` may hold several space-separated relation types (RFC 8288 3.3)."""
        return frozenset(self.params.get("rel", "").lower().split())


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    """Split on `separator` except inside `<...>` or `"..."`."""
    parts: list[str] = []
    current: list[str] = []
    in_quotes = in_brackets = escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif in_quotes and char == "\\":
            escaped = True
        elif char == '"' and not in_brackets:
            in_quotes = not in_quotes
        elif char == "<" and not in_quotes:
            in_brackets = True
        elif char == ">" and not in_quotes:
            in_brackets = False
        elif char == separator and not in_quotes and not in_brackets:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        inner = value[1:-1]
        result: list[str] = []
        escaped = False
        for char in inner:
            if escaped or char != "\\":
                result.append(char)
                escaped = False
            else:
                escaped = True
        return "".join(result)
    return value


def _parse_entry(entry: str) -> Link | None:
    fields = _split_outside_quotes(entry, ";")
    target = fields[0].strip()
    if not (target.startswith("<") and target.endswith(">")):
        return None
    params: dict[str, str] = {}
    for raw in fields[1:]:
        name, equals, value = raw.partition("=")
        name = name.strip().lower()
        if not name:
            continue
        # RFC 8288 3.4: only the first occurrence of a parameter counts.
        params.setdefault(name, _unquote(value) if equals else "")
    return Link(target[1:-1].strip(), params)


def parse_links(values: Iterable[str]) -> list[Link]:
    """Every well-formed link in the given `Link` header values, in order.

    Several `Link` headers are equivalent to one joined with `,` (RFC 9110 5.3).
    Malformed entries are skipped, as SwiftPM does.
    """
    links: list[Link] = []
    for value in values:
        for entry in _split_outside_quotes(value, ","):
            if not entry.strip():
                continue
            link = _parse_entry(entry)
            if link is not None:
                links.append(link)
    return links


@dataclass(frozen=True, slots=True)
class ManifestLink:
    """A version-specific manifest advertised on the unqualified `Package.swift`."""

    target: str
    filename: str
    tools_version: str


_MANIFEST_ATTRIBUTES = frozenset({"rel", "filename", "swift-tools-version"})


def manifest_links(links: Iterable[Link]) -> list[ManifestLink]:
    """The 4-attribute `alternate` entries (SE-0292 4.3).

    SwiftPM silently ignores entries with other attribute sets, so do we:
    re-serving one would advertise a manifest clients never use. One whose
    `swift-tools-version` is not a tools version (`5`, `5.9`, `5.9.1`) fails
    the client's whole manifest request, so it is never passed on either.
    """
    found: list[ManifestLink] = []
    for link in links:
        if "alternate" not in link.rels or set(link.params) != _MANIFEST_ATTRIBUTES:
            continue
        if version_triple(link.params["swift-tools-version"]) is None:
            continue
        found.append(
            ManifestLink(link.target, link.params["filename"], link.params["swift-tools-version"])
        )
    return found
