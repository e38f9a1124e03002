"""Persistent storage for aiohttp-client-cache: one JSON file per cached response.

aiohttp-client-cache does the revalidation (a `refresh=True` request sends
`If-None-Match` / `If-Modified-Since` built from the stored `ETag` /
`Last-Modified`, and a `304` returns the stored response). This module only
stores. Its own persistent backends are not used because they pickle the
whole response including the request headers, which would write our
`Authorization` header to disk, and they need aiosqlite/aiofiles. Here only
what revalidation needs is kept: status, URL, response headers and body.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import tempfile
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp_client_cache.backends.base import BaseCache, CacheBackend
from aiohttp_client_cache.response import CachedResponse

_FORMAT = 1


def has_validators(response: Any) -> bool:
    """Only responses that can be revalidated are worth keeping.

    aiohttp-client-cache returns a stored response without asking the
    upstream when it has neither validator; for a release list that would
    mean never seeing a new version (protocol.md 11.3).
    """
    headers = response.headers
    return "ETag" in headers or "Last-Modified" in headers


def _encode(response: CachedResponse) -> bytes:
    expires = response.expires
    document = {
        "format": _FORMAT,
        "method": response.method,
        "reason": response.reason,
        "status": response.status,
        "url": str(response.url),
        # Headers are bytes on the wire; latin-1 maps them 1:1 to text.
        "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in response.raw_headers],
        "body": base64.b64encode(response._body or b"").decode("ascii"),
        "encoding": response.encoding,
        "created_at": response.created_at.isoformat(),
        "expires": expires.isoformat() if expires is not None else None,
    }
    return json.dumps(document).encode()


def _decode(data: bytes) -> CachedResponse | None:
    try:
        document = json.loads(data)
        if document.get("format") != _FORMAT:
            return None
        expires = document["expires"]
        return CachedResponse(
            method=document["method"],
            reason=document["reason"],
            status=int(document["status"]),
            url=document["url"],
            version="1.1",
            body=base64.b64decode(document["body"]),
            encoding=document["encoding"],
            raw_headers=tuple(
                (k.encode("latin-1"), v.encode("latin-1")) for k, v in document["headers"]
            ),
            created_at=datetime.fromisoformat(document["created_at"]),
            expires=datetime.fromisoformat(expires) if expires else None,
        )
    except (ValueError, KeyError, TypeError):
        # A damaged entry is a cache miss, never an error.
        return None


class JsonFileCache(BaseCache):
    """aiohttp-client-cache `BaseCache` over a directory; keys are sha256 hex digests."""

    def __init__(self, directory: Path) -> None:
        super().__init__()
        self._directory = directory

    def _path(self, key: str) -> Path:
        # Keys come from aiohttp-client-cache's `create_key` (hex); refuse
        # anything else rather than build a path from it.
        if not key or not all(c in "0123456789abcdef" for c in key):
            raise KeyError(key)
        return self._directory / f"{key}.json"

    def _read(self, key: str) -> CachedResponse | None:
        try:
            return _decode(self._path(key).read_bytes())
        except (OSError, KeyError):
            return None

    def _write(self, key: str, data: bytes) -> None:
        self._directory.mkdir(parents=True, exist_ok=True)
        # Temp file + rename: a crash never leaves a half-written entry.
        fd, temp = tempfile.mkstemp(dir=self._directory, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            Path(temp).replace(self._path(key))
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise

    def _delete(self, key: str) -> None:
        try:
            self._path(key).unlink(missing_ok=True)
        except KeyError:
            return

    def _keys(self) -> list[str]:
        if not self._directory.is_dir():
            return []
        return [path.stem for path in self._directory.glob("*.json")]

    async def read(self, key: str) -> CachedResponse | None:
        return await asyncio.to_thread(self._read, key)

    async def write(self, key: str, item: Any) -> None:
        if isinstance(item, CachedResponse):
            await asyncio.to_thread(self._write, key, _encode(item))

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._delete, key)

    async def bulk_delete(self, keys: set[str]) -> None:
        for key in keys:
            await self.delete(key)

    async def contains(self, key: str) -> bool:
        return await self.read(key) is not None

    async def clear(self) -> None:
        for key in await asyncio.to_thread(self._keys):
            await self.delete(key)

    async def keys(self) -> AsyncIterator[str]:
        for key in await asyncio.to_thread(self._keys):
            yield key

    async def values(self) -> AsyncIterator[CachedResponse]:
        for key in await asyncio.to_thread(self._keys):
            response = await self.read(key)
            if response is not None:
                yield response

    async def size(self) -> int:
        return len(await asyncio.to_thread(self._keys))


def cache_backend(directory: Path) -> CacheBackend:
    """A backend that keeps 200 responses with validators forever, to be revalidated."""
    backend = CacheBackend(
        cache_name=str(directory),
        # Never expire: freshness is the proxy's business (its list TTL);
        # every use is revalidated with the upstream.
        expire_after=-1,
        allowed_codes=(200,),
        allowed_methods=("GET",),
        filter_fn=has_validators,
    )
    backend.responses = JsonFileCache(directory)
    return backend
