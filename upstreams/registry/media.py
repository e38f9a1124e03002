"""What each registry response must look like to be accepted. Pure.

The rules are SE-0292 3.5 as SwiftPM's RegistryClient.swift enforces them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from upstreams.model import JSON_TYPE, SWIFT_TYPE, ZIP_TYPE

# Requests always carry the versioned vendor type (SE-0292 3.5).
ACCEPT_JSON = "application/vnd.swift.registry.v1+json"
ACCEPT_SWIFT = "application/vnd.swift.registry.v1+swift"
ACCEPT_ZIP = "application/vnd.swift.registry.v1+zip"


@dataclass(frozen=True, slots=True)
class Expectation:
    content_type: str
    # SwiftPM requires `Content-Version: 1` on lists, metadata, identifiers and
    # the unqualified manifest; elsewhere it is optional but must be 1 if sent.
    content_version_required: bool


JSON_DOCUMENT = Expectation(JSON_TYPE, content_version_required=True)
MANIFEST = Expectation(SWIFT_TYPE, content_version_required=True)
ALTERNATE_MANIFEST = Expectation(SWIFT_TYPE, content_version_required=False)
ARCHIVE = Expectation(ZIP_TYPE, content_version_required=False)


def violation(headers: Mapping[str, str], expect: Expectation) -> str | None:
    """Why a 200 response would be refused by SwiftPM, or None when it is fine.

    We refuse what SwiftPM refuses: passing it on would only move the failure
    to every client (`validateAPIVersion`, `validateContentType` in SwiftPM's
    RegistryClient.swift).
    """
    version = headers.get("Content-Version")
    if version is None:
        if expect.content_version_required:
            return "no Content-Version: 1 header"
    elif version.strip() != "1":
        return f"Content-Version {version.strip()[:20]!r}, expected 1"
    content_type = headers.get("Content-Type")
    if content_type is None:
        return f"no Content-Type, expected {expect.content_type}"
    # Parameters are allowed after `;` (`application/json; charset=utf-8`).
    if content_type.split(";", 1)[0].strip().lower() != expect.content_type:
        return f"Content-Type {content_type[:60]!r}, expected {expect.content_type}"
    return None
