"""What the entries of a bundle mean: names, JSON documents, their cross-checks and merges.

Entries besides `toc.json` and `blobs/<sha256>` (see `bundle_format`):

- `releases/<identity key>/<version>.json`: a `ReleaseRecord`
- `lists/<identity key>.json`: a `ReleaseList` limited to the bundled versions
- `identifiers.json`: `{canonical location: [identity, ...]}`
- `ledger.json`: `[LedgerEntry fields, ...]` for every bundled release

Pure: parsing and checking a bundle's documents needs no cache, so that a
bundle is judged complete and self-consistent before the cache is consulted.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass
from typing import Any

from cache.digests import InvalidDigestError, validate_digest
from cache.index import ReleaseList, ReleaseRecord
from cache.ledger import LedgerEntry
from proxy.offline.bundle_format import BLOB_PREFIX, BundleError, blob_entry
from proxy.offline.bundle_records import UnservableRecord, check_listing, check_release
from upstreams.model import InvalidIdentity, InvalidVersion, PackageId, Version

LEDGER_NAME = "ledger.json"
IDENTIFIERS_NAME = "identifiers.json"
_RELEASE = re.compile(r"releases/([^/]+)/([^/]+)\.json")
_LIST = re.compile(r"lists/([^/]+)\.json")
_LEDGER_FIELDS = frozenset(field.name for field in dataclasses.fields(LedgerEntry))

ReleaseId = tuple[str, Version]  # (identity key, version)


def release_entry(key: str, version: Version) -> str:
    return f"releases/{key}/{version}.json"


def list_entry(key: str) -> str:
    return f"lists/{key}.json"


def resources(release: ReleaseRecord) -> list[tuple[str, str]]:
    """(resource, checksum) of everything a release serves, as the ledger names them."""
    return sorted(release.resources().items())


def package_key(identity: str) -> str:
    return PackageId.parse(identity).key


# -- export side ---------------------------------------------------------------


def encode_ledger(entries: Iterable[LedgerEntry]) -> list[dict[str, Any]]:
    ordered = sorted(entries, key=lambda e: (e.identity, e.version, e.resource))
    return [dataclasses.asdict(entry) for entry in ordered]


def limit_listing(listing: ReleaseList, versions: Set[Version]) -> ReleaseList:
    """The listing as an offline proxy may offer it: only versions it can serve."""
    return listing.limited_to(set(versions))


def listing_from_releases(releases: list[ReleaseRecord]) -> ReleaseList:
    """A listing for releases cached without their list (fetched by version only).

    `fetched_at` 0 makes it the oldest possible answer: an online proxy
    refreshes it at once, and any real list wins when lists are merged.
    """
    latest = max(releases, key=lambda release: release.version)
    urls = latest.metadata.get("repositoryURLs")
    return ReleaseList(
        package=latest.package,
        versions=tuple(sorted((release.version for release in releases), reverse=True)),
        repository_urls=tuple(urls) if isinstance(urls, list) else (),
        problems={},
        upstream=latest.upstream,
        fetched_at=0.0,
    )


# -- import side ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BundlePlan:
    """A bundle's documents, parsed and checked against each other and its blobs."""

    releases: dict[ReleaseId, ReleaseRecord]
    listings: dict[str, ReleaseList]  # by identity key
    identifiers: dict[str, list[str]]  # canonical location -> identities
    ledger: list[LedgerEntry]


def parse_documents(documents: Mapping[str, bytes], blobs: Set[str]) -> BundlePlan:
    """Parse every document and check the bundle is complete and consistent.

    Every release's resources must be blobs of the bundle and vouched for by
    its ledger with the same checksums; lists may only offer bundled versions;
    nothing may be carried that no release uses.
    """
    releases: dict[ReleaseId, ReleaseRecord] = {}
    listings: dict[str, ReleaseList] = {}
    for name, data in documents.items():
        if match := _RELEASE.fullmatch(name):
            release = _parse_release(name, data, match.group(1), match.group(2))
            releases[(match.group(1), release.version)] = release
        elif match := _LIST.fullmatch(name):
            listings[match.group(1)] = _parse_listing(name, data, match.group(1))
        elif name not in (LEDGER_NAME, IDENTIFIERS_NAME):
            raise BundleError(f"bundle entry {name}: not part of a spm-proxy bundle")
    for required in (LEDGER_NAME, IDENTIFIERS_NAME):
        if required not in documents:
            raise BundleError(f"bundle entry {required}: missing from the bundle")
    ledger = _parse_ledger(documents[LEDGER_NAME])
    packages = {key for key, _ in releases}
    identifiers = _parse_identifiers(documents[IDENTIFIERS_NAME], packages)
    _check_releases(releases, ledger, blobs)
    _check_listings(listings, releases)
    return BundlePlan(releases, listings, identifiers, ledger)


def _load(name: str, data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError as exc:
        raise BundleError(f"bundle entry {name}: not valid JSON ({exc})") from None
    except RecursionError:
        raise BundleError(f"bundle entry {name}: JSON nested too deeply") from None


def _parse_release(name: str, data: bytes, key: str, version: str) -> ReleaseRecord:
    try:
        release = ReleaseRecord.from_json(_load(name, data))
        for _, checksum in resources(release):
            validate_digest(checksum)
        identity_key = release.package.key
        check_release(release)
    except BundleError:
        raise
    except (KeyError, TypeError, AttributeError, InvalidIdentity, InvalidVersion) as exc:
        raise BundleError(f"bundle entry {name}: not a release record ({exc!r})") from None
    except (InvalidDigestError, UnservableRecord) as exc:
        raise BundleError(f"bundle entry {name}: {exc}") from None
    if identity_key != key or str(release.version) != version:
        raise BundleError(
            f"bundle entry {name}: holds {release.package} {release.version}, not what its "
            "name says"
        )
    return release


def _parse_listing(name: str, data: bytes, key: str) -> ReleaseList:
    try:
        listing = ReleaseList.from_json(_load(name, data))
        identity_key = listing.package.key
        check_listing(listing)
    except BundleError:
        raise
    except UnservableRecord as exc:
        raise BundleError(f"bundle entry {name}: {exc}") from None
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        # ValueError: invalid identities and versions, and `float("soon")` or
        # `dict("ab")` for the notes of what an upstream lost.
        raise BundleError(f"bundle entry {name}: not a release list ({exc!r})") from None
    if identity_key != key:
        raise BundleError(f"bundle entry {name}: lists {listing.package}, not {key}")
    return listing


def _parse_ledger(data: bytes) -> list[LedgerEntry]:
    document = _load(LEDGER_NAME, data)
    if not isinstance(document, list):
        raise BundleError(f"bundle entry {LEDGER_NAME}: not a list of ledger entries")
    entries: list[LedgerEntry] = []
    seen: set[tuple[str, str, str]] = set()
    for item in document:
        entry = _ledger_entry(item)
        slot = (entry.identity, entry.version, entry.resource)
        if slot in seen:
            raise BundleError(
                f"bundle entry {LEDGER_NAME}: {entry.identity} {entry.version} {entry.resource} "
                "is recorded twice"
            )
        seen.add(slot)
        entries.append(entry)
    return entries


def _ledger_entry(item: Any) -> LedgerEntry:
    where = f"bundle entry {LEDGER_NAME}"
    if not isinstance(item, dict) or set(item) != _LEDGER_FIELDS:
        raise BundleError(f"{where}: {item!r} is not a ledger entry")
    texts = ("identity", "version", "resource", "checksum", "upstream", "url")
    if (
        not all(isinstance(item[name], str) for name in texts)
        or not isinstance(item["commit"], str | None)
        or not isinstance(item["recorded_at"], int)
        or isinstance(item["recorded_at"], bool)
    ):
        raise BundleError(f"{where}: {item!r} has fields of the wrong type")
    entry = LedgerEntry(**item)
    try:
        validate_digest(entry.checksum)
        key = package_key(entry.identity)
    except (InvalidDigestError, InvalidIdentity) as exc:
        raise BundleError(f"{where}: {exc}") from None
    if key != entry.identity:
        raise BundleError(f"{where}: {entry.identity!r} is not a lower-cased identity")
    return entry


def _parse_identifiers(data: bytes, packages: Set[str]) -> dict[str, list[str]]:
    where = f"bundle entry {IDENTIFIERS_NAME}"
    document = _load(IDENTIFIERS_NAME, data)
    if not isinstance(document, dict):
        raise BundleError(f"{where}: not an object of locations")
    for location, identities in document.items():
        if not isinstance(identities, list) or not all(isinstance(i, str) for i in identities):
            raise BundleError(f"{where}: {location!r} does not map to a list of identities")
        for identity in identities:
            try:
                key = package_key(identity)
            except InvalidIdentity as exc:
                raise BundleError(f"{where}: {exc}") from None
            if key not in packages:
                # An offline proxy must not send clients to packages it cannot serve.
                raise BundleError(
                    f"{where}: maps {location} to {identity}, which the bundle does not carry"
                )
    return document


def _check_releases(
    releases: Mapping[ReleaseId, ReleaseRecord], ledger: list[LedgerEntry], blobs: Set[str]
) -> None:
    vouched = {(e.identity, e.version, e.resource): e.checksum for e in ledger}
    used: set[str] = set()
    for (key, version), release in releases.items():
        name = release_entry(key, version)
        for resource, checksum in resources(release):
            if checksum not in blobs:
                raise BundleError(
                    f"bundle entry {name}: its {resource} ({blob_entry(checksum)}) is not in "
                    "the bundle"
                )
            recorded = vouched.get((key, str(version), resource))
            if recorded is None:
                raise BundleError(
                    f"bundle entry {LEDGER_NAME}: has no entry for {key} {version} {resource}"
                )
            if recorded != checksum:
                raise BundleError(
                    f"bundle entry {LEDGER_NAME}: records {recorded} for {key} {version} "
                    f"{resource}, but {name} says {checksum}"
                )
            used.add(checksum)
    carried = {(key, str(version)) for key, version in releases}
    for entry in ledger:
        if (entry.identity, entry.version) not in carried:
            raise BundleError(
                f"bundle entry {LEDGER_NAME}: vouches for {entry.identity} {entry.version}, "
                "which the bundle does not carry"
            )
    unused = sorted(blobs - used)
    if unused:
        raise BundleError(f"bundle entry {BLOB_PREFIX}{unused[0]}: not used by any release")


def _check_listings(
    listings: Mapping[str, ReleaseList], releases: Mapping[ReleaseId, ReleaseRecord]
) -> None:
    for key, listing in listings.items():
        for version in listing.versions:
            if (key, version) not in releases:
                raise BundleError(
                    f"bundle entry {list_entry(key)}: offers {version}, which the bundle does "
                    "not carry"
                )


# -- merging into a cache ------------------------------------------------------


def merge_listings(local: ReleaseList, incoming: ReleaseList) -> ReleaseList:
    """Union of versions and problems; the newer fetch wins everything else.

    Idempotent: merging the same incoming listing again changes nothing, so
    importing a bundle twice leaves the index as the first import left it.
    """
    if incoming.fetched_at > local.fetched_at:
        newer, older = incoming, local
    else:
        newer, older = local, incoming
    versions = sorted(set(local.versions) | set(incoming.versions), reverse=True)
    return ReleaseList(
        package=newer.package,
        versions=tuple(versions),
        repository_urls=newer.repository_urls,
        problems={**older.problems, **newer.problems},
        upstream=newer.upstream,
        fetched_at=newer.fetched_at,
        vanished={**older.vanished, **newer.vanished},
        gone=newer.gone,
        unservable={**older.unservable, **newer.unservable},
    )


def merge_identities(local: list[str], incoming: list[str]) -> list[str]:
    """Local answers first, then incoming identities not already known (by key)."""
    merged = list(local)
    known = {identity.lower() for identity in local}
    for identity in incoming:
        if identity.lower() not in known:
            known.add(identity.lower())
            merged.append(identity)
    return merged
