"""`Puller`, the plain `Filler`: ask the candidates in order, record what one gives.

Within a route the next upstream is asked only when the previous one does
not know the package: a failing upstream never lets a later one answer in
its place (that would invite dependency confusion). A release the upstream
has but cannot serve (a tag without `Package.swift`) is noted, so the
release list marks it from then on.
"""

from __future__ import annotations

from typing import Protocol

import structlog

from cache.blobs import BlobStore
from proxy.service.candidates import Candidates
from proxy.service.errors import NotFound
from proxy.service.recorder import Candidate, Recorder
from upstreams.errors import InvalidRelease, PackageNotFound, ReleaseNotFound
from upstreams.model import PackageId, Version


class UnservableNotes(Protocol):
    async def note_unservable(self, package: PackageId, version: Version, detail: str) -> None:
        """The upstream lists `version`, but it cannot be served."""
        ...


class Puller:
    def __init__(
        self,
        candidates: Candidates,
        blobs: BlobStore,
        recorder: Recorder,
        notes: UnservableNotes | None = None,
    ) -> None:
        self._candidates = candidates
        self._blobs = blobs
        self._recorder = recorder
        self._notes = notes

    async def fill(self, package: PackageId, version: Version) -> None:
        upstreams = self._candidates.for_package(package)
        log = structlog.get_logger().bind(package=str(package), version=str(version))
        reasons: list[str] = []
        for upstream in upstreams:
            log.debug("fill_started", upstream=upstream.name)
            async with self._blobs.writer() as archive:
                try:
                    fetched = await upstream.fetch_release(package, version, archive)
                except (PackageNotFound, ReleaseNotFound) as exc:
                    reasons.append(exc.detail)
                    continue
                except InvalidRelease as exc:
                    # The upstream has the version, but it cannot be served: a
                    # later upstream must not answer in its place.
                    reasons.append(exc.detail)
                    if self._notes is not None:
                        detail = f"{package} {version} cannot be served: {exc.detail}"
                        await self._notes.note_unservable(package, version, detail)
                    break
                await self._recorder.record(Candidate.fetched(fetched, archive, upstream.name))
            await self._candidates.forget_missing(package, version)
            return
        detail = Candidates.not_found_detail(package, reasons, version)
        await self._candidates.remember_missing(package, version, detail, upstreams)
        raise NotFound(detail)
