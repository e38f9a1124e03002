"""`spm-proxy import`: verify a bundle completely, then record it through the recorder.

Everything is checked before anything becomes visible: the container, the
table of contents, every hash, the bundle's own consistency, and then every
release against the local ledger. Only then is each release recorded, through
the same write path as a fill, so a refused bundle changes nothing and an
imported release is exactly as trustworthy as a fetched one.
"""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import structlog

from cache.blobs import BlobStore
from cache.index import Identifiers, Lists, Misses, ReleaseRecord, Releases
from cache.ledger import Ledger
from proxy.offline.bundle_format import BundleError
from proxy.offline.bundle_layout import (
    LEDGER_NAME,
    BundlePlan,
    merge_identities,
    merge_listings,
    parse_documents,
    resources,
)
from proxy.offline.bundle_reader import BundleContents, read_bundle
from proxy.offline.threads import in_thread, on_loop
from proxy.service.errors import ChecksumConflict
from proxy.service.recorder import Candidate, Recorder
from upstreams.model import Manifest, PackageId, Provenance


@dataclass(frozen=True, slots=True)
class ImportSummary:
    releases_added: int
    releases_present: int
    blobs_added: int
    ledger_entries_added: int


@dataclass(frozen=True, slots=True)
class Importer:
    recorder: Recorder
    blobs: BlobStore
    ledger: Ledger
    releases: Releases
    lists: Lists
    identifiers: Identifiers
    misses: Misses
    # Where a bundle's blobs wait, verified, until they are recorded: on the
    # blob store's file system, so handing them over is a link, not a copy.
    scratch: Path

    async def import_bundle(
        self, bundle: Path, *, progress: Callable[[int], object] | None = None
    ) -> ImportSummary:
        """Raises `BundleError` (naming the entry at fault) on any damage, inconsistency
        or conflict with the local ledger; the cache is then left exactly as it was."""
        log = structlog.get_logger().bind(bundle=str(bundle))
        await asyncio.to_thread(self.scratch.mkdir, parents=True, exist_ok=True)
        try:
            with tempfile.TemporaryDirectory(dir=self.scratch, prefix="import-") as directory:
                contents = await self._read(bundle, Path(directory), progress)
                plan = await asyncio.to_thread(
                    parse_documents, contents.documents, set(contents.blobs)
                )
                summary = await self._record(plan, contents)
        except BundleError as exc:
            log.warning("bundle_import_refused", reason=str(exc))
            raise
        log.info(
            "bundle_imported",
            releases_added=summary.releases_added,
            releases_present=summary.releases_present,
            blobs_added=summary.blobs_added,
            ledger_entries_added=summary.ledger_entries_added,
        )
        return summary

    async def _read(
        self, bundle: Path, directory: Path, progress: Callable[[int], object] | None
    ) -> BundleContents:
        report = on_loop(progress)
        return await in_thread(
            lambda stop: read_bundle(
                bundle, lambda: directory / uuid.uuid4().hex, progress=report, stop=stop
            )
        )

    async def _record(self, plan: BundlePlan, contents: BundleContents) -> ImportSummary:
        async with AsyncExitStack() as stack:
            candidates = [
                await self._candidate(release, plan, contents, stack)
                for _, release in sorted(plan.releases.items())
            ]
            # Every release is checked before any is recorded: all or nothing.
            for candidate in candidates:
                try:
                    await self.recorder.check(candidate)
                except ChecksumConflict as conflict:
                    raise _refused(conflict) from None
            summary = await self._count(plan)
            for candidate in candidates:
                await self.recorder.record(candidate)
                await self.misses.forget_missing(candidate.package, candidate.version)
        await self._merge_lists(plan)
        await self._merge_identifiers(plan)
        return summary

    async def _candidate(
        self,
        release: ReleaseRecord,
        plan: BundlePlan,
        contents: BundleContents,
        stack: AsyncExitStack,
    ) -> Candidate:
        archive = await stack.enter_async_context(self.blobs.writer())
        await archive.write_file(contents.blobs[release.archive_checksum])
        manifests = []
        for manifest in release.manifests:
            content = await asyncio.to_thread(contents.blobs[manifest.checksum].read_bytes)
            manifests.append(Manifest(manifest.filename, content, manifest.tools_version))
        entries = {
            entry.resource: entry
            for entry in plan.ledger
            if (entry.identity, entry.version) == (release.package.key, str(release.version))
        }
        first = min(entries.values(), key=lambda entry: (entry.recorded_at, entry.resource))
        return Candidate(
            package=release.package,
            version=release.version,
            archive=archive,
            manifests=tuple(manifests),
            metadata=release.metadata,
            upstream=release.upstream,
            provenance=Provenance(first.upstream, first.url, first.commit),
            signing=release.signing,
            published_at=release.published_at,
            entries=entries,
        )

    async def _count(self, plan: BundlePlan) -> ImportSummary:
        present = blobs = entries = 0
        digests = {checksum for r in plan.releases.values() for _, checksum in resources(r)}
        for digest in digests:
            blobs += await self.blobs.stat(digest) is None
        for release in plan.releases.values():
            present += await self.releases.release(release.package, release.version) is not None
            recorded = await self.ledger.lookup(release.package, release.version)
            entries += sum(1 for resource, _ in resources(release) if resource not in recorded)
        return ImportSummary(len(plan.releases) - present, present, blobs, entries)

    async def _merge_lists(self, plan: BundlePlan) -> None:
        for incoming in plan.listings.values():
            local = await self.lists.release_list(incoming.package)
            merged = incoming if local is None else merge_listings(local, incoming)
            # Writing only on change keeps a repeated import from touching the index.
            if local is None or merged.to_json() != local.to_json():
                await self.lists.put_release_list(merged)
            await self.misses.forget_missing(incoming.package)

    async def _merge_identifiers(self, plan: BundlePlan) -> None:
        for location, names in sorted(plan.identifiers.items()):
            local = await self.identifiers.identities(location)
            known = [str(package) for package in local.identities] if local else []
            merged = merge_identities(known, names)
            if merged != known:
                await self.identifiers.put_identities(
                    location,
                    [PackageId.parse(name) for name in merged],
                    local.fetched_at if local else 0.0,
                )


def _refused(conflict: ChecksumConflict) -> BundleError:
    return BundleError(
        f"bundle entry {LEDGER_NAME}: {conflict.package.lower()} {conflict.version} "
        f"{conflict.resource} "
        f"has checksum {conflict.actual} in the bundle, but this cache's ledger recorded "
        f"{conflict.recorded}; a published release never changes, so nothing was imported"
    )
