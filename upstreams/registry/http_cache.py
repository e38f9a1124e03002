"""Persistent storage for aiohttp-client-cache: one JSON document per cached response.

aiohttp-client-cache does the revalidation (a `refresh=True` request sends
`If-None-Match` / `If-Modified-Since` built from the stored `ETag` /
`Last-Modified`, and a `304` returns the stored response). This module only
stores, through the `DocumentStore` seam. Its own persistent backends are not
used because they pickle the whole response including the request headers,
which would write our `Authorization` header to disk, and they need aiosqlite/aiofiles. Here only
what revalidation needs is kept: status, URL, response headers and body.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from aiohttp_client_cache.backends.base import BaseCache, CacheBackend
from aiohttp_client_cache.response import CachedResponse

from upstreams.base import DocumentStore

_FORMAT = 1


def has_validators(response: Any) -> bool:
    """Only responses that can be revalidated are worth keeping.

    aiohttp-client-cache returns a stored response without asking the
    upstream when it has neither validator; for a release list that would
    mean never seeing a new version, as lists grow with every publish (SE-0292 4.1).
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


class DocumentCache(BaseCache):
    """aiohttp-client-cache `BaseCache` over a `DocumentStore`; keys are sha256 hex digests."""

    def __init__(self, documents: DocumentStore) -> None:
        super().__init__()
        self._documents = documents

    async def read(self, key: str) -> CachedResponse | None:
        data = await self._documents.get(key)
        return None if data is None else _decode(data)

    async def write(self, key: str, item: Any) -> None:
        if isinstance(item, CachedResponse):
            await self._documents.put(key, _encode(item))

    async def delete(self, key: str) -> None:
        await self._documents.delete(key)

    async def bulk_delete(self, keys: set[str]) -> None:
        for key in keys:
            await self.delete(key)

    async def contains(self, key: str) -> bool:
        return await self.read(key) is not None

    async def clear(self) -> None:
        await self._documents.clear()

    async def keys(self) -> AsyncIterator[str]:
        for key in await self._documents.keys():
            yield key

    async def values(self) -> AsyncIterator[CachedResponse]:
        for key in await self._documents.keys():
            response = await self.read(key)
            if response is not None:
                yield response

    async def size(self) -> int:
        return len(await self._documents.keys())


def cache_backend(documents: DocumentStore) -> CacheBackend:
    """A backend that keeps 200 responses with validators forever, to be revalidated."""
    backend = CacheBackend(
        cache_name="spm-proxy",
        # Never expire: freshness is the proxy's business (its list TTL);
        # every use is revalidated with the upstream.
        expire_after=-1,
        allowed_codes=(200,),
        allowed_methods=("GET",),
        filter_fn=has_validators,
    )
    backend.responses = DocumentCache(documents)
    return backend
