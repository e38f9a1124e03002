"""Value types shared by every layer: identities, versions, releases, manifests.

Pure standard library on purpose (enforced by import-linter): these types cross
the boundary between the HTTP layer, the upstreams and the cache.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import total_ordering
from typing import Any

# Registry spec section 3.6. `re.fullmatch` anchors both ends; `$` would also
# accept a trailing newline.
_SCOPE = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9]|-(?=[a-zA-Z0-9])){0,38}")
_NAME = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9]|[-_](?=[a-zA-Z0-9])){0,99}")

# SemVer 2.0.0, strict: the form SwiftPM's `Version(_:)` accepts (three numeric
# components without leading zeros, optional pre-release, optional build).
# Digits are ASCII (SemVer's grammar, section "Backus-Naur Form"): in a Python
# str pattern `\d` would also match every other script's digits.
_NUM = r"0|[1-9][0-9]*"
_IDENT = r"[0-9A-Za-z-]+"
_PRE_IDENT = rf"(?:{_NUM}|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
_SEMVER = re.compile(
    rf"(?P<major>{_NUM})\.(?P<minor>{_NUM})\.(?P<patch>{_NUM})"
    rf"(?:-(?P<pre>{_PRE_IDENT}(?:\.{_PRE_IDENT})*))?"
    rf"(?:\+(?P<build>{_IDENT}(?:\.{_IDENT})*))?",
    re.ASCII,
)
_NUMERAL = re.compile(r"[0-9]+", re.ASCII)
# SwiftPM keeps version, tools-version and Swift-version numbers in `Int`, 64
# bits on every platform it supports: a larger number is no version a client
# can send or resolve. (Bounding them also keeps `int()` within its default
# limit of 4300 digits.)
INT_MAX = 2**63 - 1


# The one name of the archive resource (SE-0292 4.2), in metadata and the ledger.
SOURCE_ARCHIVE = "source-archive"

# Content types of registry responses (SE-0292 4); SwiftPM's client matches
# them exactly, allowing only `;` parameters.
JSON_TYPE = "application/json"
ZIP_TYPE = "application/zip"
SWIFT_TYPE = "text/x-swift"
PROBLEM_TYPE = "application/problem+json"

# The SHA-256 form of checksums: exactly what `hexdigest()` produces. Clients
# compare checksums as strings (SE-0292 4.2.1, 4.4.1); anything else is refused
# before it can become a name of stored bytes.
SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def is_sha256_hex(text: object) -> bool:
    return isinstance(text, str) and SHA256_HEX.fullmatch(text) is not None


def utc_timestamp(seconds: float) -> str:
    """Whole-second UTC ISO 8601 (`2023-02-16T04:00:00Z`).

    Fractional seconds break older Foundation `.iso8601` decoders, and a decode
    failure loses the whole metadata response in SwiftPM's client.
    """
    moment = datetime.fromtimestamp(int(seconds), UTC).replace(tzinfo=None)
    # isoformat, not strftime("%Y"): the C library writes years before 1000
    # without leading zeros (`1-10-01T...`), which is no ISO 8601 date.
    return moment.isoformat(timespec="seconds") + "Z"


class InvalidIdentity(ValueError):
    """A scope, name or identifier that the registry grammar rejects."""


class InvalidVersion(ValueError):
    """A version string that is not strict SemVer."""


def is_valid_scope(scope: str) -> bool:
    return _SCOPE.fullmatch(scope) is not None


def is_valid_name(name: str) -> bool:
    return _NAME.fullmatch(name) is not None


@dataclass(frozen=True, slots=True, eq=False)
class PackageId:
    """`scope.name`, compared case-insensitively (spec 3.6), displayed as given."""

    scope: str
    name: str

    def __post_init__(self) -> None:
        if not is_valid_scope(self.scope):
            raise InvalidIdentity(f"invalid scope {self.scope!r}")
        if not is_valid_name(self.name):
            raise InvalidIdentity(f"invalid package name {self.name!r}")

    @classmethod
    def parse(cls, identity: str) -> PackageId:
        scope, dot, name = identity.partition(".")
        if not dot:
            raise InvalidIdentity(f"identifier {identity!r} is not of the form scope.name")
        return cls(scope, name)

    @property
    def key(self) -> str:
        """Lower-cased `scope.name`: the storage key for everything about this package."""
        return f"{self.scope.lower()}.{self.name.lower()}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PackageId) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __str__(self) -> str:
        return f"{self.scope}.{self.name}"


@total_ordering
@dataclass(frozen=True, slots=True, eq=False)
class Version:
    """A strict SemVer version, ordered by SemVer precedence.

    Build metadata does not affect precedence; it only breaks ties so that the
    ordering is total and sorting is deterministic.
    """

    major: int
    minor: int
    patch: int
    prerelease: tuple[str, ...] = ()
    build: str = ""
    # Derived once: versions are compared and hashed on every cached answer.
    _text: str = field(init=False, repr=False, compare=False)
    _key: tuple[Any, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += "-" + ".".join(self.prerelease)
        if self.build:
            text += "+" + self.build
        # A release sorts above its pre-releases; numeric identifiers sort below
        # alphanumeric ones and compare numerically (SemVer 2.0.0 section 11).
        # Build metadata does not affect precedence; it only breaks ties.
        # Numeric identifiers of any length, without `int()`: numerals without
        # leading zeros order by length first, then digit by digit.
        pre = tuple(
            (0, len(part), part) if _NUMERAL.fullmatch(part) else (1, 0, part)
            for part in self.prerelease
        )
        key = (self.major, self.minor, self.patch, 0 if self.prerelease else 1, pre, self.build)
        object.__setattr__(self, "_text", text)
        object.__setattr__(self, "_key", key)

    @classmethod
    def parse(cls, text: str) -> Version:
        match = _SEMVER.fullmatch(text)
        if match is None:
            raise InvalidVersion(f"{text[:100]!r} is not a semantic version (X.Y.Z[-pre][+build])")
        major, minor, patch = (swift_int(match.group(part)) for part in ("major", "minor", "patch"))
        if major is None or minor is None or patch is None:
            raise InvalidVersion(f"{text[:100]!r}: a version number exceeds {INT_MAX}")
        pre = match.group("pre")
        return cls(
            major, minor, patch, tuple(pre.split(".")) if pre else (), match.group("build") or ""
        )

    @classmethod
    def from_tag(cls, tag: str) -> Version | None:
        """The version a git tag names (`1.2.3` or `v1.2.3`), or None."""
        text = tag[1:] if tag[:1] in ("v", "V") else tag
        try:
            return cls.parse(text)
        except InvalidVersion:
            return None

    def __str__(self) -> str:
        return self._text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Version) and self._text == other._text

    def __hash__(self) -> int:
        return hash(self._text)

    def __lt__(self, other: Version) -> bool:
        return self._key < other._key


# `Package@swift-5.9.swift`, `Package@swift-5.swift`, `Package@swift-5.9.1.swift`
# at the package root (spec 4.3).
MANIFEST_NAME = "Package.swift"
_VERSIONED_PREFIX = "Package@swift-"
_VERSIONED_SUFFIX = ".swift"
# A bytes pattern: `\s` and IGNORECASE are ASCII-only here.
_TOOLS_VERSION = re.compile(
    rb"//\s*swift-tools-version\s*:\s*([0-9]+(?:\.[0-9]+){0,2})", re.IGNORECASE
)


def swift_int(numeral: str) -> int | None:
    """The value of an ASCII numeral (leading zeros allowed) that fits SwiftPM's
    `Int`, else None."""
    if not _NUMERAL.fullmatch(numeral):
        return None
    significant = numeral.lstrip("0")
    if len(significant) > len(str(INT_MAX)):
        return None
    value = int(significant or "0")
    return value if value <= INT_MAX else None


def version_triple(text: str) -> tuple[int, int, int] | None:
    """`5`, `5.9` or `5.9.1` (a Swift or tools version) as (major, minor, patch),
    missing parts 0; None for anything else."""
    parts = text.split(".")
    if not 1 <= len(parts) <= 3:
        return None
    numbers = [number for number in map(swift_int, parts) if number is not None]
    if len(numbers) != len(parts):
        return None
    numbers += [0] * (3 - len(numbers))
    return (numbers[0], numbers[1], numbers[2])


def versioned_manifest_triple(filename: str) -> tuple[int, int, int] | None:
    """The Swift version a `Package@swift-X[.Y[.Z]].swift` file targets, or None."""
    if not (filename.startswith(_VERSIONED_PREFIX) and filename.endswith(_VERSIONED_SUFFIX)):
        return None
    return version_triple(filename[len(_VERSIONED_PREFIX) : -len(_VERSIONED_SUFFIX)])


def is_manifest_filename(filename: str) -> bool:
    return filename == MANIFEST_NAME or versioned_manifest_triple(filename) is not None


def parse_tools_version(content: bytes) -> str | None:
    """The `// swift-tools-version:` declared on a manifest's first line.

    Read from the text, never by running Swift: the specifier must be the first
    line, as SwiftPM's ToolsVersionParser requires.
    """
    first_line = content.split(b"\n", 1)[0].lstrip(b"\xef\xbb\xbf")
    match = _TOOLS_VERSION.match(first_line.strip())
    if match is None:
        return None
    declared = match.group(1).decode("ascii")
    # One whose numbers overflow SwiftPM's `Int` is no tools version at all.
    return declared if version_triple(declared) is not None else None


@dataclass(frozen=True, slots=True)
class Manifest:
    """One manifest file from a release, with its exact bytes."""

    filename: str
    content: bytes
    tools_version: str | None


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where the bytes of a release came from, recorded in the ledger."""

    upstream: str
    url: str
    commit: str | None = None


@dataclass(frozen=True, slots=True)
class ReleaseListing:
    """What an upstream says about a package: its versions and repositories."""

    package: PackageId
    versions: tuple[Version, ...]
    repository_urls: tuple[str, ...] = ()
    # Per-version problems reported by an upstream registry (spec 4.1), kept verbatim.
    problems: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FetchedRelease:
    """What an upstream says about a release it has written to an `ArchiveSink`.

    The archive bytes themselves went to the sink the caller passed in; the
    caller decides whether they are kept.
    """

    package: PackageId
    version: Version
    manifests: tuple[Manifest, ...]
    metadata: dict[str, Any]
    provenance: Provenance
    # Upstream registries report the checksum they vouch for; git upstreams
    # produce the bytes themselves and leave this empty.
    upstream_checksum: str | None = None
    # SE-0391 `signing` object of the source archive, passed through verbatim.
    signing: dict[str, str] | None = None
    # The upstream registry's own `publishedAt`, whole-second UTC.
    published_at: str | None = None
