"""Export cached releases to a bundle file, and import a bundle into a cache.

Export reads the index, the ledger and the blob store of `Services` and writes
a deterministic bundle (`bundle_format`, entries as in `bundle_layout`).
Import verifies everything first (container, table of contents, every hash,
the bundle's own consistency, then the local ledger), and only then makes
anything visible, in the order that keeps a crash harmless: blobs (invisible
until referenced), ledger entries, then index records.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping, Set
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import structlog

from cache.index import MetadataIndex
from cache.ledger import Ledger, LedgerEntry
from proxy.offline.bundle_format import (
    BundleError,
    CorruptBlobError,
    Progress,
    encode_json,
    read_bundle,
    write_bundle,
)
from proxy.offline.bundle_layout import (
    IDENTIFIERS_NAME,
    LEDGER_NAME,
    BundlePlan,
    ReleaseId,
    encode_ledger,
    limit_listing,
    list_entry,
    listing_from_releases,
    merge_identities,
    merge_listings,
    package_key,
    parse_documents,
    release_entry,
    resources,
)
from proxy.offline.selection import VersionRange
from proxy.records import (
    IDENTIFIERS_PREFIX,
    RELEASE_PREFIX,
    StoredListing,
    StoredRelease,
    identifiers_key,
    list_key,
    missing_package_key,
    missing_release_key,
    release_key,
)
from proxy.services import Services
from upstreams.model import InvalidIdentity, InvalidVersion, PackageId, Version

__all__ = [
    "BundleError",
    "ExportSummary",
    "ImportSummary",
    "Selection",
    "export_bundle",
    "import_bundle",
]

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Selection:
    """What to export.

    `packages` maps an identity (any case) to the versions wanted: None for every
    cached release, a `VersionRange` for those inside it (`VersionRange()`, the
    "latest" spec, picks the newest cached release). `exact` adds (identity,
    version) pairs, e.g. the pins of a Package.resolved. `everything` exports the
    whole cache. A package or pin with nothing cached fails the export: a bundle
    silently missing what was asked for would only fail later, offline.
    """

    packages: Mapping[str, VersionRange | None] = field(default_factory=dict)
    everything: bool = False
    exact: Set[tuple[str, str]] = frozenset()

    @classmethod
    def whole_cache(cls) -> Selection:
        return cls(everything=True)


@dataclass(frozen=True, slots=True)
class ExportSummary:
    releases: int
    files: int  # bundle entries, toc.json included
    bytes: int  # size of the bundle file


@dataclass(frozen=True, slots=True)
class ImportSummary:
    releases_added: int
    releases_present: int
    blobs_added: int
    ledger_entries_added: int


# -- export --------------------------------------------------------------------


async def export_bundle(
    services: Services,
    selection: Selection,
    output: Path,
    *,
    progress: Callable[[int], object] | None = None,
) -> ExportSummary:
    """Write the selected releases to `output`; `progress` receives bytes written.

    Raises `BundleError` when a selected release, blob or ledger entry is
    missing or a cached blob is corrupt; no output file is left behind then.
    """
    log = structlog.get_logger().bind(bundle=str(output))
    releases = await _select(services.index, selection)
    documents: dict[str, bytes] = {}
    blobs: dict[str, Path] = {}
    users: dict[str, list[str]] = {}
    ledger: list[LedgerEntry] = []
    for release in releases:
        key = package_key(release.identity)
        documents[release_entry(key, release.version)] = encode_json(
            release.to_json(), sort_keys=False
        )
        for resource, checksum in resources(release):
            # Not `path_of`: it would hash every blob once more before the
            # writer hashes it again while streaming, which catches corruption.
            path = services.blobs.location(checksum)
            if not await asyncio.to_thread(path.is_file):
                raise BundleError(
                    f"{release.identity} {release.version}: its {resource} (blob {checksum}) "
                    "is missing from the cache"
                )
            blobs[checksum] = path
            users.setdefault(checksum, []).append(
                f"{resource} of {release.identity} {release.version}"
            )
        ledger.extend(await _vouching_entries(services.ledger, release))
    documents.update(await _listings(services.index, releases))
    exported = {package_key(release.identity) for release in releases}
    documents[IDENTIFIERS_NAME] = encode_json(await _identifiers(services.index, exported))
    documents[LEDGER_NAME] = encode_json(encode_ledger(ledger))

    report = _on_loop(progress)
    try:
        written = await _in_thread(
            lambda stop: write_bundle(output, documents, blobs, progress=report, stop=stop)
        )
    except CorruptBlobError as exc:
        log.error(  # noqa: TRY400 - the traceback adds nothing to this fact
            "cached_blob_corrupt", digest=exc.digest, actual=exc.actual, used_by=users[exc.digest]
        )
        raise BundleError(
            f"{exc}; it is the {', '.join(users[exc.digest])}; nothing was exported "
            "(`spm-proxy verify` reports and quarantines corrupt blobs)"
        ) from exc
    log.info("bundle_exported", releases=len(releases), files=written.files, bytes=written.size)
    return ExportSummary(releases=len(releases), files=written.files, bytes=written.size)


async def _select(index: MetadataIndex, selection: Selection) -> list[StoredRelease]:
    if not (selection.everything or selection.packages or selection.exact):
        # Most likely every pin was skipped; an empty bundle would only fail later.
        raise BundleError("nothing is selected for export")
    chosen: dict[ReleaseId, StoredRelease] = {}

    def choose(releases: list[StoredRelease]) -> None:
        for release in releases:
            chosen[(package_key(release.identity), release.version)] = release

    if selection.everything:
        choose(await _cached_releases(index, RELEASE_PREFIX))
    for identity, versions in selection.packages.items():
        cached = await _cached_releases(index, f"{RELEASE_PREFIX}{identity.lower()}/")
        picked = _pick(cached, versions)
        if not picked:
            wanted = "release" if versions is None else f"release matching {_describe(versions)}"
            raise BundleError(f"{identity}: no {wanted} is in the cache (warm it first)")
        choose(picked)
    for identity, version in sorted(selection.exact):
        try:
            key = release_key(PackageId.parse(identity), Version.parse(version))
        except (InvalidIdentity, InvalidVersion) as exc:
            raise BundleError(f"{identity} {version}: {exc}") from None
        stored = await index.get(key)
        if stored is None:
            raise BundleError(f"{identity} {version}: not in the cache (warm it first)")
        choose([StoredRelease.from_json(stored)])
    return [chosen[release_id] for release_id in sorted(chosen)]


async def _cached_releases(index: MetadataIndex, prefix: str) -> list[StoredRelease]:
    releases = []
    for key in await index.keys(prefix):
        stored = await index.get(key)
        if stored is not None:  # deleted since the keys were listed
            releases.append(StoredRelease.from_json(stored))
    return releases


def _pick(cached: list[StoredRelease], versions: VersionRange | None) -> list[StoredRelease]:
    if versions is None or not cached:
        return cached
    if versions.latest_only:
        return [max(cached, key=lambda release: release.version)]
    return [release for release in cached if versions.contains(release.version)]


def _describe(versions: VersionRange) -> str:
    if versions.exact is not None:
        return str(versions.exact)
    if versions.latest_only:
        return "latest"
    return f"{versions.lower or ''}..<{versions.upper or ''}"


async def _vouching_entries(ledger: Ledger, release: StoredRelease) -> list[LedgerEntry]:
    """The ledger entries of a release, which must vouch for every resource it serves."""
    version = str(release.version)
    entries = await ledger.entries(package_key(release.identity), version)
    recorded = {entry.resource: entry.checksum for entry in entries}
    for resource, checksum in resources(release):
        if recorded.get(resource) != checksum:
            found = recorded.get(resource)
            what = "has no entry" if found is None else f"records {found}"
            raise BundleError(
                f"{release.identity} {version}: the ledger {what} for its {resource} "
                f"({checksum}); this cache is inconsistent (run `spm-proxy verify`)"
            )
    return entries


async def _listings(index: MetadataIndex, releases: list[StoredRelease]) -> dict[str, bytes]:
    by_package: dict[str, list[StoredRelease]] = {}
    for release in releases:
        by_package.setdefault(package_key(release.identity), []).append(release)
    documents = {}
    for key, chosen in by_package.items():
        listing = listing_from_releases(chosen)
        cached = await index.get(list_key(PackageId.parse(chosen[0].identity)))
        if cached is not None:
            # Limited to what is exported, and completed with exported releases a
            # stale list does not show yet: offline, the list is what can be served.
            versions = {release.version for release in chosen}
            listing = merge_listings(
                limit_listing(StoredListing.from_json(cached), versions), listing
            )
        documents[list_entry(key)] = encode_json(listing.to_json(), sort_keys=False)
    return documents


async def _identifiers(index: MetadataIndex, exported: set[str]) -> dict[str, list[str]]:
    answers: dict[str, list[str]] = {}
    for key in await index.keys(IDENTIFIERS_PREFIX):
        cached: list[str] = await index.get(key) or []
        identities = [identity for identity in cached if _key_or_none(identity) in exported]
        if identities:
            answers[key.removeprefix(IDENTIFIERS_PREFIX)] = identities
    return answers


def _key_or_none(identity: str) -> str | None:
    try:
        return package_key(identity)
    except InvalidIdentity:
        return None


# -- import --------------------------------------------------------------------


async def import_bundle(
    services: Services,
    bundle: Path,
    *,
    progress: Callable[[int], object] | None = None,
) -> ImportSummary:
    """Verify `bundle` completely, then add what it carries; `progress` receives bytes read.

    Raises `BundleError` (naming the entry at fault) on any damage, inconsistency
    or conflict with the local ledger; the cache is then left exactly as it was.
    """
    log = structlog.get_logger().bind(bundle=str(bundle))
    report = _on_loop(progress)
    try:
        contents = await _in_thread(
            lambda stop: read_bundle(
                bundle, services.blobs.staging_path, progress=report, stop=stop
            )
        )
    except BundleError as exc:
        log.warning("bundle_import_refused", reason=str(exc))
        raise
    staged = dict(contents.blobs)
    try:
        plan = await asyncio.to_thread(parse_documents, contents.documents, set(staged))
        new_entries = await _unrecorded(services.ledger, plan.ledger)
        summary = await _commit(services, plan, staged, new_entries)
    except BundleError as exc:
        log.warning("bundle_import_refused", reason=str(exc))
        raise
    finally:
        # Whatever was not committed (refusal, failure, cancellation) must not
        # linger in the staging directory.
        for path in staged.values():
            await services.blobs.discard(path)
    log.info(
        "bundle_imported",
        releases_added=summary.releases_added,
        releases_present=summary.releases_present,
        blobs_added=summary.blobs_added,
        ledger_entries_added=summary.ledger_entries_added,
    )
    return summary


async def _unrecorded(ledger: Ledger, entries: list[LedgerEntry]) -> list[LedgerEntry]:
    """The bundle's entries this ledger lacks; any disagreement refuses the import."""
    missing = []
    for entry in entries:
        local = await ledger.lookup(entry.identity, entry.version, entry.resource)
        if local is None:
            missing.append(entry)
        elif local.checksum != entry.checksum:
            raise BundleError(
                f"bundle entry {LEDGER_NAME}: {entry.identity} {entry.version} {entry.resource} "
                f"has checksum {entry.checksum} in the bundle, but this cache's ledger recorded "
                f"{local.checksum} (from {local.upstream}, {local.url}); a published release "
                "never changes, so nothing was imported"
            )
    return missing


async def _commit(
    services: Services,
    plan: BundlePlan,
    staged: dict[str, Path],
    new_entries: list[LedgerEntry],
) -> ImportSummary:
    blobs_added = 0
    for digest in sorted(staged):
        known = await services.blobs.contains(digest)
        # Popped first: commit consumes the staged file whatever happens.
        await services.blobs.commit(staged.pop(digest), digest)
        blobs_added += not known

    for entry in new_entries:
        winner = await services.ledger.record(entry)
        if winner.checksum != entry.checksum:
            # Another process recorded a different checksum since the check.
            raise BundleError(
                f"bundle entry {LEDGER_NAME}: {entry.identity} {entry.version} {entry.resource} "
                f"was just recorded locally as {winner.checksum}, not {entry.checksum}"
            )

    index = services.index
    added = present = 0
    for (_, version), release in sorted(plan.releases.items()):
        package = PackageId.parse(release.identity)
        key = release_key(package, version)
        if await index.get(key) is None:
            await index.set(key, release.to_json())
            added += 1
        else:
            present += 1
        await _forget(index, missing_release_key(package, version))
    for listing in plan.listings.values():
        package = PackageId.parse(listing.identity)
        await _merge_listing(index, list_key(package), listing)
        await _forget(index, missing_package_key(package))
    for location, identities in sorted(plan.identifiers.items()):
        key = identifiers_key(location)
        local = await index.get(key) or []
        merged = merge_identities(local, identities)
        if merged != local:
            await index.set(key, merged)
    return ImportSummary(
        releases_added=added,
        releases_present=present,
        blobs_added=blobs_added,
        ledger_entries_added=len(new_entries),
    )


async def _merge_listing(index: MetadataIndex, key: str, incoming: StoredListing) -> None:
    stored = await index.get(key)
    if stored is None:
        await index.set(key, incoming.to_json())
        return
    local = StoredListing.from_json(stored)
    merged = merge_listings(local, incoming)
    # Writing only on change keeps a repeated import from touching the index.
    if merged.to_json() != local.to_json():
        await index.set(key, merged.to_json())


async def _forget(index: MetadataIndex, key: str) -> None:
    """Drop a cached "not found" that the import has just made untrue."""
    if await index.get(key) is not None:
        await index.delete(key)


# -- worker threads --------------------------------------------------------------


def _on_loop(progress: Callable[[int], object] | None) -> Progress | None:
    """Report progress from a worker thread on the event loop's thread."""
    if progress is None:
        return None
    loop = asyncio.get_running_loop()

    def report(count: int) -> None:
        loop.call_soon_threadsafe(progress, count)

    return report


async def _in_thread(work: Callable[[threading.Event], _T]) -> _T:
    """Run blocking bundle I/O in a worker thread that stops when the caller is cancelled.

    A cancelled `to_thread` call leaves its thread running; without the event an
    abandoned export would still finish and publish its file.
    """
    stop = threading.Event()
    try:
        return await asyncio.to_thread(work, stop)
    except asyncio.CancelledError:
        stop.set()
        raise
