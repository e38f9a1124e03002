"""What the offline commands act on: pins from Package.resolved files and
package specs given on the command line. Pure parsing, no I/O beyond reading
the files handed in."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from upstreams.model import InvalidIdentity, InvalidVersion, PackageId, Version


class SelectionError(ValueError):
    """A Package.resolved file or package spec that cannot be used."""


@dataclass(frozen=True, slots=True)
class RegistryPin:
    package: PackageId
    version: Version


@dataclass(frozen=True, slots=True)
class SourceControlPin:
    """A git dependency; its identity comes from `/identifiers` mapping."""

    url: str
    version: Version


@dataclass(frozen=True, slots=True)
class SkippedPin:
    name: str
    reason: str


Pin = RegistryPin | SourceControlPin | SkippedPin


def _version(state: object) -> Version | None:
    text = state.get("version") if isinstance(state, dict) else None
    if not isinstance(text, str):
        return None
    try:
        return Version.parse(text)
    except InvalidVersion:
        return None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _pin_v1(pin: dict[str, Any]) -> Pin:
    # v1: {"package", "repositoryURL", "state"}; every one a git dependency.
    name = _text(pin.get("package")) or _text(pin.get("repositoryURL")) or "?"
    version = _version(pin.get("state"))
    url = _text(pin.get("repositoryURL"))
    if version is None:
        return SkippedPin(name, "not pinned to a version")
    if url is None:
        return SkippedPin(name, "has no repositoryURL")
    return SourceControlPin(url, version)


def _pin_v2(pin: dict[str, Any]) -> Pin:
    kind = pin.get("kind")
    identity, location = _text(pin.get("identity")), _text(pin.get("location"))
    name = identity or location or "?"
    if kind not in ("registry", "remoteSourceControl"):
        return SkippedPin(name, f"{kind} dependencies are not served by a registry")
    version = _version(pin.get("state"))
    if version is None:
        return SkippedPin(name, "pinned to a branch or revision; registries serve versions only")
    if kind == "registry":
        try:
            return RegistryPin(PackageId.parse(identity or ""), version)
        except InvalidIdentity as exc:
            return SkippedPin(name, f"invalid registry identity: {exc}")
    if location is None:
        return SkippedPin(name, "has no location")
    return SourceControlPin(location, version)


def _pins(document: dict[str, Any], path: Path) -> tuple[int, list[Any]]:
    """The format version and the raw pin objects of a Package.resolved."""
    format_version = document.get("version")
    # `true == 1` in Python: only a JSON integer is a format version.
    if isinstance(format_version, bool) or format_version not in (1, 2, 3):
        raise SelectionError(f"{path}: unsupported Package.resolved version {format_version!r}")
    holder = document.get("object", {}) if format_version == 1 else document
    pins = holder.get("pins", []) if isinstance(holder, dict) else None
    if not isinstance(pins, list):
        raise SelectionError(f"{path}: its pins are not a list")
    return format_version, pins


def parse_resolved(path: Path) -> list[Pin]:
    """Pins of a `Package.resolved`, format version 1, 2 or 3.

    A pin that is not an object, or lacks what its kind needs, is skipped with
    the reason; a file that is not a Package.resolved is a `SelectionError`.
    """
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SelectionError(f"{path}: not a readable Package.resolved ({exc})") from exc
    except RecursionError:
        raise SelectionError(f"{path}: not a Package.resolved (nested too deeply)") from None
    if not isinstance(document, dict):
        raise SelectionError(f"{path}: not a Package.resolved document")
    format_version, pins = _pins(document, path)
    parse = _pin_v1 if format_version == 1 else _pin_v2
    return [
        parse(pin) if isinstance(pin, dict) else SkippedPin("?", "not a pin object") for pin in pins
    ]


@dataclass(frozen=True, slots=True)
class VersionRange:
    """`lower <= v < upper`; `exact` for a single version; neither for latest."""

    lower: Version | None = None
    upper: Version | None = None
    exact: Version | None = None

    def contains(self, version: Version) -> bool:
        if self.exact is not None:
            return version == self.exact
        if self.lower is not None and version < self.lower:
            return False
        return self.upper is None or version < self.upper

    @property
    def latest_only(self) -> bool:
        return self.exact is None and self.lower is None and self.upper is None


@dataclass(frozen=True, slots=True)
class PackageSpec:
    package: PackageId
    versions: VersionRange


def parse_package_spec(text: str) -> PackageSpec:
    """`ID` (latest release), `ID@1.2.3`, `ID@1.2.0..<2.0.0`, `ID@from:1.2.0`.

    The range forms follow SwiftPM's own spelling (`..<`, `from:` = up to the
    next major version) and select every release inside them.
    """
    identity, _, versions = text.partition("@")
    try:
        package = PackageId.parse(identity)
        if not versions:
            return PackageSpec(package, VersionRange())
        if versions.startswith("from:"):
            lower = Version.parse(versions.removeprefix("from:"))
            return PackageSpec(package, VersionRange(lower, Version(lower.major + 1, 0, 0)))
        if "..<" in versions:
            low, high = versions.split("..<", 1)
            return PackageSpec(package, VersionRange(Version.parse(low), Version.parse(high)))
        return PackageSpec(package, VersionRange(exact=Version.parse(versions)))
    except (InvalidIdentity, InvalidVersion) as exc:
        raise SelectionError(
            f"{text!r}: {exc}; expected ID, ID@1.2.3, ID@1.2.0..<2.0.0 or ID@from:1.2.0"
        ) from exc
