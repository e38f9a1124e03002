"""`spm-proxy export`: write a verified bundle of cached releases.

Reads release records, lists, identifier answers, the ledger and blobs through
their seams and writes a deterministic bundle (`bundle_writer`, entries as in
`bundle_layout`). Every blob is re-hashed while it is written; a release the
ledger does not vouch for is not exported.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable, Mapping, Set
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from cache.blobs import BlobStore
from cache.index import Identifiers, Lists, ReleaseRecord, Releases
from cache.ledger import Ledger, LedgerEntry
from proxy.offline.bundle_format import BundleError, CorruptBlobError, encode_json
from proxy.offline.bundle_layout import (
    IDENTIFIERS_NAME,
    LEDGER_NAME,
    ReleaseId,
    encode_ledger,
    limit_listing,
    list_entry,
    listing_from_releases,
    merge_listings,
    release_entry,
    resources,
)
from proxy.offline.bundle_writer import write_bundle
from proxy.offline.selection import VersionRange
from proxy.offline.threads import in_thread, on_loop
from upstreams.model import InvalidIdentity, InvalidVersion, PackageId, Version


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
class Exporter:
    releases: Releases
    lists: Lists
    identifiers: Identifiers
    ledger: Ledger
    blobs: BlobStore

    async def export(
        self,
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
        chosen = await self._select(selection)
        documents: dict[str, bytes] = {}
        users: dict[str, list[str]] = {}
        ledger: list[LedgerEntry] = []
        for release in chosen:
            documents[release_entry(release.package.key, release.version)] = encode_json(
                release.to_json(), sort_keys=False
            )
            for resource, checksum in resources(release):
                users.setdefault(checksum, []).append(
                    f"{resource} of {release.package} {release.version}"
                )
            ledger.extend(await self._vouching_entries(release))
        documents.update(await self._listings(chosen))
        exported = {release.package.key for release in chosen}
        documents[IDENTIFIERS_NAME] = encode_json(await self._identifiers(exported))
        documents[LEDGER_NAME] = encode_json(encode_ledger(ledger))
        async with AsyncExitStack() as stack:
            files = await self._local_files(sorted(users), users, output.parent, stack)
            report = on_loop(progress)
            try:
                written = await in_thread(
                    lambda stop: write_bundle(output, documents, files, progress=report, stop=stop)
                )
            except CorruptBlobError as exc:
                log.error(  # noqa: TRY400 - the traceback adds nothing to this fact
                    "cached_blob_corrupt",
                    digest=exc.digest,
                    actual=exc.actual,
                    used_by=users[exc.digest],
                )
                raise BundleError(
                    f"{exc}; it is the {', '.join(users[exc.digest])}; nothing was exported "
                    "(`spm-proxy verify` reports and quarantines corrupt blobs)"
                ) from exc
        log.info("bundle_exported", releases=len(chosen), files=written.files, bytes=written.size)
        return ExportSummary(releases=len(chosen), files=written.files, bytes=written.size)

    async def _local_files(
        self, digests: list[str], users: Mapping[str, list[str]], near: Path, stack: AsyncExitStack
    ) -> dict[str, Path]:
        """A local file for each blob: the store's own, or a copy made for the export."""
        files: dict[str, Path] = {}
        spool: Path | None = None
        for digest in digests:
            # Not verified on open: the bundle writer hashes every byte it copies.
            blob = await self.blobs.open(digest, verify=False)
            if blob is None:
                raise BundleError(
                    f"the {', '.join(users[digest])} (blob {digest}) is missing from the cache"
                )
            if blob.local_path is not None:
                files[digest] = blob.local_path
                continue
            if spool is None:
                spool = Path(stack.enter_context(tempfile.TemporaryDirectory(dir=near)))
            files[digest] = spool / digest
            with files[digest].open("wb") as handle:
                async for chunk in blob.chunks():
                    await asyncio.to_thread(handle.write, chunk)
        return files

    async def _select(self, selection: Selection) -> list[ReleaseRecord]:
        if not (selection.everything or selection.packages or selection.exact):
            # Most likely every pin was skipped; an empty bundle would only fail later.
            raise BundleError("nothing is selected for export")
        chosen: dict[ReleaseId, ReleaseRecord] = {}

        def choose(records: list[ReleaseRecord]) -> None:
            for record in records:
                chosen[(record.package.key, record.version)] = record

        if selection.everything:
            choose([record async for record in self.releases.releases()])
        for identity, versions in selection.packages.items():
            package = _package(identity)
            cached = [record async for record in self.releases.releases(package)]
            picked = _pick(cached, versions)
            if not picked:
                wanted = (
                    "release" if versions is None else f"release matching {_describe(versions)}"
                )
                raise BundleError(f"{identity}: no {wanted} is in the cache (warm it first)")
            choose(picked)
        for identity, version in sorted(selection.exact):
            try:
                record = await self.releases.release(
                    PackageId.parse(identity), Version.parse(version)
                )
            except (InvalidIdentity, InvalidVersion) as exc:
                raise BundleError(f"{identity} {version}: {exc}") from None
            if record is None:
                raise BundleError(f"{identity} {version}: not in the cache (warm it first)")
            choose([record])
        return [chosen[release_id] for release_id in sorted(chosen)]

    async def _vouching_entries(self, release: ReleaseRecord) -> list[LedgerEntry]:
        """The ledger entries of a release, which must vouch for every resource it serves."""
        entries = await self.ledger.lookup(release.package, release.version)
        for resource, checksum in resources(release):
            found = entries.get(resource)
            if found is None or found.checksum != checksum:
                what = "has no entry" if found is None else f"records {found.checksum}"
                raise BundleError(
                    f"{release.package} {release.version}: the ledger {what} for its {resource} "
                    f"({checksum}); this cache is inconsistent (run `spm-proxy verify`)"
                )
        return sorted(entries.values(), key=lambda entry: entry.resource)

    async def _listings(self, releases: list[ReleaseRecord]) -> dict[str, bytes]:
        by_package: dict[str, list[ReleaseRecord]] = {}
        for release in releases:
            by_package.setdefault(release.package.key, []).append(release)
        documents = {}
        for key, chosen in by_package.items():
            listing = listing_from_releases(chosen)
            cached = await self.lists.release_list(chosen[0].package)
            if cached is not None:
                # Limited to what is exported, and completed with exported releases a
                # stale list does not show yet: offline, the list is what can be served.
                versions = {release.version for release in chosen}
                listing = merge_listings(limit_listing(cached, versions), listing)
            documents[list_entry(key)] = encode_json(listing.to_json(), sort_keys=False)
        return documents

    async def _identifiers(self, exported: set[str]) -> dict[str, list[str]]:
        answers: dict[str, list[str]] = {}
        async for answer in self.identifiers.answers():
            kept = [str(package) for package in answer.identities if package.key in exported]
            if kept:
                answers[answer.location] = kept
        return dict(sorted(answers.items()))


def _package(identity: str) -> PackageId:
    try:
        return PackageId.parse(identity)
    except InvalidIdentity as exc:
        raise BundleError(f"{identity}: {exc}") from None


def _pick(cached: list[ReleaseRecord], versions: VersionRange | None) -> list[ReleaseRecord]:
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
