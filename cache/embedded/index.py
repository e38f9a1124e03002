"""`DiskcacheIndex`: every index seam over one JSON store. The only place key strings live.

The keys of the current data format (`cache.embedded.format`), versioned by
prefix; the keys earlier formats wrote differently, and their upgrade, are
in `cache.embedded.upgrade_v1`:

- `v1/release/<identity key>/<version>`: a `ReleaseRecord`
- `v1/list/<identity key>`: a `ReleaseList`
- `v2/missing/<identity key>[/<version>]`: "not found" per spelling, `{spelling: [detail, until]}`
- `v1/identifiers/<canonical location>`: `{"identities": [...], "fetched_at": t}`
- `v1/repository/<upstream>/<identity key>`: the repository name an identity was found at
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from cache.embedded.kv import JsonStore
from cache.index import IdentitiesAnswer, ReleaseList, ReleaseRecord
from upstreams.model import InvalidIdentity, PackageId, Version

_RELEASE = "v1/release/"
_LIST = "v1/list/"
_MISSING = "v2/missing/"
_IDENTIFIERS = "v1/identifiers/"
_REPOSITORY = "v1/repository/"


def _release_key(package: PackageId, version: Version) -> str:
    return f"{_RELEASE}{package.key}/{version}"


def _missing_key(package: PackageId, version: Version | None) -> str:
    return f"{_MISSING}{package.key}" + ("" if version is None else f"/{version}")


class DiskcacheIndex:
    def __init__(self, store: JsonStore, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock

    # -- releases -------------------------------------------------------------

    async def release(self, package: PackageId, version: Version) -> ReleaseRecord | None:
        data = await self._store.get(_release_key(package, version))
        return None if data is None else ReleaseRecord.from_json(data)

    async def add_release(self, record: ReleaseRecord) -> ReleaseRecord:
        key = _release_key(record.package, record.version)
        stored = await self._store.add(key, record.to_json())
        return ReleaseRecord.from_json(stored)

    async def drop_release(self, package: PackageId, version: Version) -> None:
        await self._store.delete(_release_key(package, version))

    async def releases(self, package: PackageId | None = None) -> AsyncIterator[ReleaseRecord]:
        prefix = _RELEASE if package is None else f"{_RELEASE}{package.key}/"
        records = []
        for key in await self._store.keys(prefix):
            data = await self._store.get(key)
            if data is not None:  # deleted since the keys were listed
                records.append(ReleaseRecord.from_json(data))
        records.sort(key=lambda record: (record.package.key, record.version))
        for record in records:
            yield record

    # -- lists ----------------------------------------------------------------

    async def release_list(self, package: PackageId) -> ReleaseList | None:
        data = await self._store.get(f"{_LIST}{package.key}")
        return None if data is None else ReleaseList.from_json(data)

    async def put_release_list(self, release_list: ReleaseList) -> None:
        await self._store.set(f"{_LIST}{release_list.package.key}", release_list.to_json())

    # -- not found ------------------------------------------------------------

    async def missing(self, package: PackageId, version: Version | None = None) -> str | None:
        spellings = await self._store.get(_missing_key(package, version))
        remembered = (spellings or {}).get(str(package))
        if not remembered:
            return None
        detail, until = remembered
        return str(detail) if until > self._clock() else None

    async def remember_missing(
        self, package: PackageId, version: Version | None, detail: str, ttl: float
    ) -> None:
        if ttl <= 0:
            return
        key = _missing_key(package, version)
        now = self._clock()
        spellings: dict[str, Any] = await self._store.get(key) or {}
        spellings = {name: entry for name, entry in spellings.items() if entry[1] > now}
        spellings[str(package)] = [detail, now + ttl]
        expire = max(entry[1] for entry in spellings.values()) - now
        await self._store.set(key, spellings, expire=expire)

    async def forget_missing(self, package: PackageId, version: Version | None = None) -> None:
        await self._store.delete(_missing_key(package, version))

    async def purge_expired(self) -> int:
        return await self._store.purge_expired()

    # -- identifiers ----------------------------------------------------------

    async def identities(self, location: str) -> IdentitiesAnswer | None:
        data = await self._store.get(f"{_IDENTIFIERS}{location}")
        return None if data is None else _answer(location, data)

    async def put_identities(
        self, location: str, identities: Sequence[PackageId], fetched_at: float
    ) -> None:
        await self._store.set(
            f"{_IDENTIFIERS}{location}",
            {"identities": [str(package) for package in identities], "fetched_at": fetched_at},
        )

    async def answers(self) -> AsyncIterator[IdentitiesAnswer]:
        for key in await self._store.keys(_IDENTIFIERS):
            data = await self._store.get(key)
            if data is not None:
                yield _answer(key.removeprefix(_IDENTIFIERS), data)

    # -- repository names -----------------------------------------------------

    async def repository(self, upstream: str, package: PackageId) -> str | None:
        name = await self._store.get(f"{_REPOSITORY}{upstream}/{package.key}")
        return None if name is None else str(name)

    async def learn_repository(self, upstream: str, package: PackageId, name: str) -> str:
        return str(await self._store.add(f"{_REPOSITORY}{upstream}/{package.key}", name))


def _answer(location: str, data: Any) -> IdentitiesAnswer:
    identities = []
    for name in data["identities"]:
        try:
            identities.append(PackageId.parse(name))
        except InvalidIdentity:
            continue
    return IdentitiesAnswer(location, tuple(identities), float(data["fetched_at"]))
