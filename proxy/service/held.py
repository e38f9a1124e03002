"""What the proxy holds, and what a release list shows of it.

A mirror never forgets: the list clients see is the union of what the
upstream lists now and every release the proxy holds (ledger entries whose
blobs are all present). What the upstream lost is noted in the stored list
(`ReleaseList.vanished`, `.gone`) with the time it was first noticed; the
per-upstream or per-route policy decides at answer time how it is shown:

- keep: listed as before;
- withdraw: listed with a per-release `problem` of status 410 (SE-0292 4.1
  lets a registry mark a release unavailable that way; SwiftPM skips such
  releases when it resolves);
- forget: not listed.

Under every policy the release itself (metadata, manifests, archive) keeps
being served, so builds pinned to it keep working.
"""

from __future__ import annotations

from dataclasses import replace
from enum import StrEnum
from typing import Any

from cache.blobs import BlobStore
from cache.index import ReleaseList, Vanished
from cache.ledger import Ledger
from upstreams.model import InvalidVersion, PackageId, Version, utc_timestamp


class VanishedPolicy(StrEnum):
    KEEP = "keep"
    WITHDRAW = "withdraw"
    FORGET = "forget"


class Holdings:
    """Which releases of a package the proxy can serve on its own."""

    def __init__(self, ledger: Ledger, blobs: BlobStore) -> None:
        self._ledger = ledger
        self._blobs = blobs

    async def versions(self, package: PackageId) -> set[Version]:
        """Releases with ledger entries whose blobs are all stored."""
        checksums: dict[str, set[str]] = {}
        async for entry in self._ledger.entries(package):
            checksums.setdefault(entry.version, set()).add(entry.checksum)
        held: set[Version] = set()
        for text, digests in checksums.items():
            try:
                version = Version.parse(text)
            except InvalidVersion:
                continue
            if await self._all_stored(digests):
                held.add(version)
        return held

    async def _all_stored(self, digests: set[str]) -> bool:
        for digest in sorted(digests):
            if await self._blobs.stat(digest) is None:
                return False
        return True


def with_holdings(
    fresh: ReleaseList, previous: ReleaseList | None, held: set[Version], now: float
) -> tuple[ReleaseList, list[Version]]:
    """`fresh` (just listed by its upstream) with what it lacks of `held` noted.

    Returns the list and the versions noticed missing for the first time.
    Notes about releases the upstream could not serve carry over while the
    upstream still lists them and the proxy does not hold them.
    """
    earlier = previous.vanished if previous is not None else {}
    vanished: dict[str, Vanished] = {}
    noticed: list[Version] = []
    for version in sorted(held - set(fresh.versions), reverse=True):
        note = earlier.get(str(version))
        if note is None:
            note = Vanished(now, f"upstream {fresh.upstream!r} no longer lists {version}")
            noticed.append(version)
        vanished[str(version)] = note
    listed = {str(version) for version in fresh.versions} - {str(version) for version in held}
    unservable = {
        name: detail
        for name, detail in (previous.unservable if previous is not None else {}).items()
        if name in listed
    }
    return replace(fresh, vanished=vanished, unservable=unservable), noticed


def gone_list(
    package: PackageId,
    previous: ReleaseList | None,
    held: set[Version],
    *,
    upstream: str,
    detail: str,
    now: float,
) -> ReleaseList:
    """The list of a package its upstream no longer has, made of what the proxy holds."""
    gone = previous.gone if previous is not None and previous.gone is not None else None
    gone = gone or Vanished(now, f"upstream {upstream!r} no longer has {package}: {detail}")
    earlier = previous.vanished if previous is not None else {}
    return ReleaseList(
        package=package,
        versions=(),
        repository_urls=previous.repository_urls if previous is not None else (),
        problems={},
        upstream=previous.upstream if previous is not None else upstream,
        fetched_at=now,
        vanished={
            str(version): earlier.get(str(version), gone) for version in sorted(held, reverse=True)
        },
        gone=gone,
    )


def served(release_list: ReleaseList, policy: VanishedPolicy) -> ReleaseList:
    """The list as clients see it under `policy`: versions and per-release problems.

    An upstream's own problem entries pass through unchanged and win over
    anything the proxy would say about the same release.
    """
    if not release_list.vanished and not release_list.unservable:
        return release_list  # the common case, on every cached answer: nothing to add
    problems: dict[str, dict[str, Any]] = {
        name: unservable_problem(detail) for name, detail in release_list.unservable.items()
    }
    versions = set(release_list.versions)
    if policy is not VanishedPolicy.FORGET:
        versions.update(Version.parse(name) for name in release_list.vanished)
    if policy is VanishedPolicy.WITHDRAW:
        for name, note in release_list.vanished.items():
            problems[name] = withdrawn_problem(release_list.package, name, note)
    problems.update(release_list.problems)
    names = {str(version) for version in versions}
    return replace(
        release_list,
        versions=tuple(sorted(versions, reverse=True)),
        problems={name: problem for name, problem in problems.items() if name in names},
    )


def withdrawn_problem(package: PackageId, version: str, note: Vanished) -> dict[str, Any]:
    return {
        "status": 410,
        "title": "Gone",
        "detail": (
            f"{package} {version} is withdrawn: {note.detail} (noticed "
            f"{utc_timestamp(note.since)}); this proxy still serves it to builds pinned to it"
        ),
    }


def unservable_problem(detail: str) -> dict[str, Any]:
    # The status the release itself is answered with (proxy/problems.py).
    return {"status": 404, "title": "Not Found", "detail": detail}
