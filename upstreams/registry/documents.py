"""Parsing release lists and release metadata (SE-0292 4.1, 4.2), pure stdlib.

Raises `DocumentError` with a short reason; the client turns it into an
`InvalidUpstreamResponse` naming the upstream and URL.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from upstreams.model import SOURCE_ARCHIVE, InvalidVersion, Version, is_sha256_hex, utc_timestamp


class DocumentError(ValueError):
    """A list or metadata body that does not follow the registry protocol."""


def _json(body: bytes, what: str) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DocumentError(f"{what} is not valid JSON ({error.__class__.__name__})") from None
    except RecursionError:
        # The decoder recurses once per nested array or object.
        raise DocumentError(f"{what} nests JSON arrays or objects too deeply") from None


def _object(body: bytes, what: str) -> dict[str, Any]:
    document = _json(body, what)
    if not isinstance(document, dict):
        raise DocumentError(f"{what} is not a JSON object")
    return document


def normalise_timestamp(value: object) -> str | None:
    """Whole-second UTC `YYYY-MM-DDTHH:MM:SSZ`, or None when unparseable.

    Older Foundation rejects fractional seconds and one bad date fails the
    whole metadata response in SwiftPM's client, so dates are re-emitted in the
    one form every client decodes.
    """
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        # A registry that omits the offset means UTC in practice.
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return utc_timestamp(parsed.timestamp())
    except (OverflowError, ValueError):
        # 0001-01-01T00:00:00+01:00 is in year 0 once in UTC: no datetime holds it.
        return None


@dataclass(frozen=True, slots=True)
class ListPage:
    versions: tuple[Version, ...]
    problems: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Keys that were not strict SemVer: dropped, as SwiftPM's client drops them.
    dropped: tuple[str, ...] = ()


def _problem(value: object) -> dict[str, Any]:
    """A per-release problem, verbatim when it already has the `detail` SwiftPM needs.

    A problem without a string `detail` makes SwiftPM's client reject the whole
    list; such a release is still unavailable (SE-0292 4.1), so it keeps a
    problem, with a detail added.
    """
    if isinstance(value, dict) and isinstance(value.get("detail"), str):
        return value
    problem = dict(value) if isinstance(value, dict) else {}
    title = problem.get("title")
    problem["detail"] = title if isinstance(title, str) else "release unavailable upstream"
    return problem


def parse_list_page(body: bytes) -> ListPage:
    document = _object(body, "release list")
    releases = document.get("releases")
    if not isinstance(releases, dict):
        raise DocumentError("release list has no `releases` object")
    versions: list[Version] = []
    problems: dict[str, dict[str, Any]] = {}
    dropped: list[str] = []
    for key, entry in releases.items():
        try:
            version = Version.parse(key)
        except InvalidVersion:
            dropped.append(key)
            continue
        versions.append(version)
        if isinstance(entry, dict) and entry.get("problem") is not None:
            problems[str(version)] = _problem(entry["problem"])
    return ListPage(tuple(versions), problems, tuple(dropped))


@dataclass(frozen=True, slots=True)
class ReleaseMetadata:
    checksum: str
    signing: dict[str, str] | None
    metadata: dict[str, Any]
    published_at: str | None


def _signing(value: object) -> dict[str, str] | None:
    if value is None:
        return None
    if (
        not isinstance(value, dict)
        or not isinstance(value.get("signatureBase64Encoded"), str)
        or not isinstance(value.get("signatureFormat"), str)
    ):
        # SwiftPM requires both keys when `signing` is present (SE-0292 4.2.1).
        raise DocumentError("source-archive `signing` lacks signatureBase64Encoded/signatureFormat")
    return value


def _metadata(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        return {}
    metadata = dict(value)
    if "originalPublicationTime" in metadata:
        # Same decoding rule as `publishedAt` (see `normalise_timestamp`).
        normalised = normalise_timestamp(metadata["originalPublicationTime"])
        if normalised is None:
            del metadata["originalPublicationTime"]
        else:
            metadata["originalPublicationTime"] = normalised
    return metadata


def parse_release_metadata(body: bytes) -> ReleaseMetadata:
    document = _object(body, "release metadata")
    if not isinstance(document.get("id"), str) or not isinstance(document.get("version"), str):
        raise DocumentError("release metadata lacks string `id`/`version`")
    resources = document.get("resources")
    if not isinstance(resources, list):
        raise DocumentError("release metadata has no `resources` array")
    # SwiftPM's client finds the archive by name alone, not by `type`.
    archive = next(
        (r for r in resources if isinstance(r, dict) and r.get("name") == SOURCE_ARCHIVE), None
    )
    if archive is None:
        raise DocumentError("release metadata has no source-archive resource")
    checksum = archive.get("checksum")
    if not isinstance(checksum, str) or not is_sha256_hex(checksum):
        # Clients compare checksums as strings with their own lowercase hex
        # SHA-256 (SE-0292 4.2.1): anything else can never verify.
        raise DocumentError("source-archive checksum is missing or not lowercase hex SHA-256")
    return ReleaseMetadata(
        checksum=checksum,
        signing=_signing(archive.get("signing")),
        metadata=_metadata(document.get("metadata")),
        published_at=normalise_timestamp(document.get("publishedAt")),
    )


def parse_identifiers(body: bytes) -> list[str]:
    document = _object(body, "identifiers")
    identifiers = document.get("identifiers")
    if not isinstance(identifiers, list):
        raise DocumentError("identifiers response has no `identifiers` array")
    return [item for item in identifiers if isinstance(item, str)]


def problem_detail(body: bytes) -> str | None:
    """The `detail` of a problem body (SE-0292 3.3, RFC 9457), if there is one."""
    try:
        document = _json(body, "problem")
    except DocumentError:
        return None
    if isinstance(document, dict) and isinstance(document.get("detail"), str):
        return str(document["detail"])
    return None
