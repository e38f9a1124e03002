"""Pure functions for the registry wire protocol (SE-0292, the Swift Package Registry spec).

No I/O here: parsing path segments and headers, choosing manifests, building
Link headers and JSON bodies. Handlers call these; tests exercise them directly.
"""

from __future__ import annotations

import base64
import bisect
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any
from urllib.parse import unquote

from upstreams.model import (
    JSON_TYPE,
    PROBLEM_TYPE,
    SOURCE_ARCHIVE,
    SWIFT_TYPE,
    ZIP_TYPE,
    InvalidIdentity,
    InvalidVersion,
    PackageId,
    Version,
    version_triple,
    versioned_manifest_triple,
)

API_VERSION = "1"
# Whether an answer came from the cache (`hit`, `stale`) or an upstream was asked (`miss`).
CACHE_STATUS_HEADER = "X-Cache-Status"
JSON = JSON_TYPE
ZIP = ZIP_TYPE
SWIFT = SWIFT_TYPE
PROBLEM = PROBLEM_TYPE


class ProtocolError(Exception):
    """A request the registry protocol does not allow; `problems` renders it."""

    def __init__(self, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}


class BadRequest(ProtocolError):
    """Malformed input: an invalid identity, version or API version (SE-0292 3.5, 3.6)."""


class UnsupportedMediaType(ProtocolError):
    """A well-formed but unsupported API version, or another endpoint's media type."""


class MethodNotAllowed(ProtocolError):
    def __init__(self, detail: str, allowed: tuple[str, ...]) -> None:
        super().__init__(detail, {"Allow": ", ".join(allowed)})
        self.allowed = allowed


class PreconditionFailed(ProtocolError):
    """An `If-Match` or `If-Unmodified-Since` that the resource does not meet (RFC 9110 13.1)."""


class RangeNotSatisfiable(ProtocolError):
    def __init__(self, detail: str, size: int) -> None:
        # RFC 9110 14.4: the complete length, with an unsatisfied range.
        super().__init__(detail, {"Content-Range": f"bytes */{size}"})


class NotImplementedHere(ProtocolError):
    """An endpoint of the specification this registry does not offer (yet)."""


_ASCII_DIGITS = re.compile(r"[0-9]+")
# Media types compare case-insensitively in ASCII only (RFC 9110 8.3.1): with
# re.ASCII, LONG S and KELVIN SIGN do not fold to `s` and `k`.
_REGISTRY_MEDIA = re.compile(
    r"application/vnd\.swift\.registry(?:\.v(?P<version>[^+;\s]*))?(?:\+(?P<suffix>[^;\s]*))?",
    re.IGNORECASE | re.ASCII,
)
# Optional whitespace in header fields is spaces and tabs only (RFC 9110 5.6.3).
_OWS = " \t"


class Suffix(Enum):
    """The `+suffix` of `application/vnd.swift.registry.v1+suffix` per endpoint."""

    JSON = "json"
    ZIP = "zip"
    SWIFT = "swift"


def check_accept(accept: str | None, expected: Suffix) -> None:
    """Apply the spec's API-version rules (section 3.5) to an `Accept` header.

    No registry media type at all (curl, browsers, or SwiftPM's `/login` and
    `/availability`): serve version 1. A malformed version: 400. A well-formed
    but unsupported version or a suffix for another endpoint: 415.
    """
    if not accept:
        return
    first_error: Exception | None = None
    for media_range in accept.split(","):
        media_type = media_range.split(";", 1)[0].strip(_OWS)
        match = _REGISTRY_MEDIA.fullmatch(media_type)
        if match is None:
            continue
        version, suffix = match.group("version"), match.group("suffix")
        error: Exception | None = None
        if version is not None and not _ASCII_DIGITS.fullmatch(version):
            error = BadRequest(f"invalid API version {version!r} in Accept header {media_type!r}")
        elif version is not None and version != API_VERSION:
            error = UnsupportedMediaType(
                f"API version {version} is not supported; this registry speaks version "
                f"{API_VERSION} (Accept: application/vnd.swift.registry.v1+{expected.value})"
            )
        elif suffix and suffix.lower() != expected.value:
            error = UnsupportedMediaType(
                f"this endpoint serves application/vnd.swift.registry.v1+{expected.value}, "
                f"not +{suffix}"
            )
        if error is None:
            return
        first_error = first_error or error
    if first_error is not None:
        raise first_error


def parse_package(scope: str, name: str) -> PackageId:
    try:
        return PackageId(scope, name)
    except InvalidIdentity as exc:
        raise BadRequest(
            f"{exc}: scopes are 1-39 letters, digits or single hyphens; names are 1-100 "
            "letters, digits, single hyphens or underscores (spec 3.6)"
        ) from exc


def parse_version(text: str) -> Version:
    try:
        return Version.parse(text)
    except InvalidVersion as exc:
        raise BadRequest(str(exc)) from exc


def raw_query_value(query_string: str, name: str) -> str | None:
    """The first `name=` value of a raw (still percent-encoded) query string.

    Decoded here rather than by a form decoder, which would turn `+` into a
    space (SwiftPM's client leaves `+` unencoded: Foundation's URLQueryItem
    encoding). Percent-encoded
    octets must form UTF-8 (RFC 3986 2.5): anything else is a 400, never a
    replacement character that names another repository.
    """
    for pair in query_string.split("&"):
        key, _, value = pair.partition("=")
        if unquote(key) != name:
            continue
        try:
            return unquote(value, errors="strict")
        except UnicodeDecodeError:
            raise BadRequest(
                f"the {name} query parameter is not percent-encoded UTF-8: {value[:100]!r}"
            ) from None
    return None


def repository_url_query(query_string: str) -> str:
    """The `url` of `/identifiers?url=` (SE-0292 4.5): required, and no control
    characters, which no URL and no scp-style location holds (RFC 3986 2)."""
    url = raw_query_value(query_string, "url")
    if not url:
        raise BadRequest("the url query parameter is required, e.g. /identifiers?url=https://...")
    if any(unicodedata.category(char) == "Cc" for char in url):
        raise BadRequest(f"the url query parameter holds control characters: {url[:100]!r}")
    return url


def split_format_suffix(segment: str) -> str:
    """Drop an optional `.json` from `/{scope}/{name}.json` (names never contain a dot)."""
    return segment.removesuffix(".json")


class ReleaseResource(Enum):
    METADATA = "metadata"
    ARCHIVE = "archive"


def classify_release_segment(segment: str) -> tuple[Version, ReleaseResource]:
    """`1.0.0`, `1.0.0.json` -> metadata; `1.0.0.zip` -> archive.

    `1.0.0-rc.zip` is itself valid SemVer, but the `.zip` suffix is mandatory
    for archives (SE-0292 4.4) and SwiftPM only ever means the archive by it,
    so the suffix wins.
    """
    if segment.endswith(".zip"):
        return parse_version(segment.removesuffix(".zip")), ReleaseResource.ARCHIVE
    if segment.endswith(".json"):
        return parse_version(segment.removesuffix(".json")), ReleaseResource.METADATA
    return parse_version(segment), ReleaseResource.METADATA


def parse_swift_version(value: str) -> tuple[int, int, int]:
    """`5.9`, `5.9.0` or `5` -> (5, 9, 0). SwiftPM sends the `X.Y.Z` form.

    ASCII digits only: `str.isdigit` also accepts superscripts (`5¹`) and other
    scripts' digits (Arabic-Indic `5.9`), and numbers must fit SwiftPM's `Int`.
    """
    triple = version_triple(value)
    if triple is None:
        raise BadRequest(f"swift-version {value[:100]!r} is not a Swift version like 5.9 or 5.9.0")
    return triple


@dataclass(frozen=True, slots=True)
class ManifestChoice:
    filename: str
    tools_version: str | None


def _tools_triple(tools_version: str | None) -> tuple[int, int, int] | None:
    if tools_version is None:
        return None
    try:
        return parse_swift_version(tools_version)
    except BadRequest:
        return None


def select_manifest(manifests: Sequence[ManifestChoice], swift_version: str) -> str | None:
    """The `Package@swift-*.swift` that answers `?swift-version=`, or None for a 303.

    Matches the numeric triple of the filename (so `5.9.0` finds
    `Package@swift-5.9.swift`), then falls back to the declared tools version,
    which is what SwiftPM's client derives the query from (SE-0292 4.3.1;
    `getManifestContent` in SwiftPM's RegistryClient.swift).
    """
    wanted = parse_swift_version(swift_version)
    for manifest in manifests:
        if versioned_manifest_triple(manifest.filename) == wanted:
            return manifest.filename
    for manifest in manifests:
        if versioned_manifest_triple(manifest.filename) and (
            _tools_triple(manifest.tools_version) == wanted
        ):
            return manifest.filename
    return None


def link(url: str, rel: str, **attributes: str) -> str:
    """One Link entry. SwiftPM drops entries whose field count it does not expect,
    so callers pass exactly the attributes the relation needs (the Link parsers
    in SwiftPM's RegistryClient.swift; RFC 8288 for the syntax)."""
    entry = f'<{url}>; rel="{rel}"'
    for key, value in attributes.items():
        entry += f'; {key.replace("_", "-")}="{value}"'
    return entry


def join_links(entries: Iterable[str]) -> str:
    return ", ".join(entries)


def neighbours(
    versions: Iterable[Version], current: Version
) -> tuple[Version, Version | None, Version | None]:
    """(latest, predecessor, successor) of `current` by SemVer precedence."""
    # Lists are stored newest first: sorting that is one reversed run (n - 1
    # comparisons), and bisecting finds `current` without hashing every version.
    ordered = sorted(versions)
    low = bisect.bisect_left(ordered, current)
    high = bisect.bisect_right(ordered, current, lo=low)
    predecessor = ordered[low - 1] if low > 0 else None
    successor = ordered[high] if high < len(ordered) else None
    latest = ordered[-1] if ordered and current < ordered[-1] else current
    return latest, predecessor, successor


def swift_version_of(filename: str) -> str:
    """`Package@swift-5.9.swift` -> `5.9`: the `?swift-version=` that selects it."""
    return filename.removeprefix("Package@swift-").removesuffix(".swift")


def timestamp_seconds(text: str) -> float:
    """Unix seconds of a whole-second UTC timestamp as this registry writes them."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def digest_header(hex_digest: str) -> str:
    """RFC 3230 `Digest: sha-256=<base64 of the raw digest>` (not hex, spec 4.4)."""
    return "sha-256=" + base64.b64encode(bytes.fromhex(hex_digest)).decode("ascii")


def release_list_body(
    versions: Iterable[Version], url_for: dict[str, str], problems: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    releases: dict[str, Any] = {}
    for version in sorted(versions, reverse=True):
        key = str(version)
        entry: dict[str, Any] = {"url": url_for[key]}
        if key in problems:
            entry["problem"] = problems[key]
        releases[key] = entry
    return {"releases": releases}


def release_metadata_body(
    *,
    identity: str,
    version: str,
    checksum: str,
    metadata: dict[str, Any],
    published_at: str | None,
    signing: dict[str, str] | None = None,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "name": SOURCE_ARCHIVE,
        "type": ZIP,
        "checksum": checksum,
    }
    if signing:
        resource["signing"] = signing
    body: dict[str, Any] = {
        "id": identity,
        "version": version,
        "resources": [resource],
        "metadata": metadata,
    }
    if published_at:
        body["publishedAt"] = published_at
    return body
