"""What every `BlobStore` must do.

An implementation's test module subclasses `BlobStoreContract` as `Test...`, and
provides the `store` fixture and `corrupt_blob`.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import pytest

from cache.blobs import BlobStore
from cache.errors import BlobDigestMismatch

INVALID_DIGESTS = [
    "",
    "abc",
    "A" * 64,
    hashlib.sha256(b"x").hexdigest().upper(),
    "g" * 64,
    "a" * 63,
    "a" * 65,
    hashlib.sha256(b"x").hexdigest() + "\n",
    "../" * 21 + "a",
    "ab/cd/" + "a" * 58,
    "/" + "a" * 63,
]


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def write(store: BlobStore, data: bytes, *, chunk: int = 4096) -> str:
    async with store.writer() as writer:
        for start in range(0, len(data), chunk):
            await writer.write(data[start : start + chunk])
        return await writer.commit()


async def write_expecting(store: BlobStore, data: bytes, expected: str) -> str:
    async with store.writer() as writer:
        await writer.write(data)
        return await writer.commit(expected)


async def read_back(store: BlobStore, digest: str, start: int = 0, end: int | None = None) -> bytes:
    blob = await store.open(digest)
    assert blob is not None
    return b"".join([chunk async for chunk in blob.chunks(start, end)])


class BlobStoreContract:
    @pytest.fixture
    def store(self) -> BlobStore:
        raise NotImplementedError("a contract subclass provides the store")

    async def corrupt_blob(self, store: BlobStore, digest: str) -> None:
        """Change the stored bytes of `digest` behind the store's back."""
        raise NotImplementedError("a contract subclass knows how to corrupt its blobs")

    async def test_writer_hashes_while_it_streams(self, store: BlobStore) -> None:
        data = os.urandom(100_000)
        async with store.writer() as writer:
            await writer.write(data[:10])
            assert writer.digest == sha256_hex(data[:10])
            await writer.write(data[10:])
            assert (writer.digest, writer.size) == (sha256_hex(data), len(data))
            assert await writer.commit() == sha256_hex(data)

    async def test_committed_content_reads_back(self, store: BlobStore) -> None:
        data = os.urandom(3 * (1 << 20) + 17)

        digest = await write(store, data, chunk=65536)

        assert digest == sha256_hex(data)
        assert await read_back(store, digest) == data
        blob = await store.open(digest)
        assert blob is not None
        assert (blob.digest, blob.size) == (digest, len(data))
        if blob.local_path is not None:
            assert blob.local_path.read_bytes() == data
        info = await store.stat(digest)
        assert info is not None
        assert (info.digest, info.size) == (digest, len(data))

    async def test_chunks_read_a_range(self, store: BlobStore) -> None:
        data = bytes(range(256)) * 20_000
        digest = await write(store, data, chunk=1 << 20)

        assert await read_back(store, digest, 1000, 2_000_500) == data[1000:2_000_500]
        assert await read_back(store, digest, len(data) - 3) == data[-3:]

    async def test_a_local_file_is_taken_whole(self, store: BlobStore, tmp_path: Path) -> None:
        source = tmp_path / "built.zip"
        source.write_bytes(b"built in scratch " * 1000)
        async with store.writer() as writer:
            await writer.write_file(source)
            digest = await writer.commit()

        source.unlink()  # the caller's copy goes; the blob stays
        assert await read_back(store, digest) == b"built in scratch " * 1000

    async def test_chunks_and_files_append(self, store: BlobStore, tmp_path: Path) -> None:
        source = tmp_path / "middle"
        source.write_bytes(b"middle")
        async with store.writer() as writer:
            await writer.write(b"head-")
            await writer.write_file(source)
            await writer.write(b"-tail")
            digest = await writer.commit()

        assert await read_back(store, digest) == b"head-middle-tail"

    async def test_nothing_is_visible_before_commit(self, store: BlobStore) -> None:
        data = b"half of an archive"
        async with store.writer() as writer:
            await writer.write(data)
            assert await store.open(sha256_hex(data)) is None
            assert await store.stat(sha256_hex(data)) is None
            await writer.commit()
        assert await store.stat(sha256_hex(data)) is not None

    async def test_leaving_without_commit_discards(self, store: BlobStore) -> None:
        data = b"an abandoned download"
        async with store.writer() as writer:
            await writer.write(data)

        assert await store.open(sha256_hex(data)) is None
        assert [info async for info in store.digests()] == []
        assert await store.sweep(0) == 0  # nothing abandoned is left behind

    async def test_an_error_inside_the_block_discards(self, store: BlobStore) -> None:
        data = b"a failing fill"

        async def failing_fill() -> None:
            async with store.writer() as writer:
                await writer.write(data)
                raise RuntimeError("upstream broke")

        with pytest.raises(RuntimeError, match="upstream broke"):
            await failing_fill()

        assert await store.open(sha256_hex(data)) is None
        assert await store.sweep(0) == 0

    async def test_a_writer_that_wrote_nothing_leaves_nothing(self, store: BlobStore) -> None:
        async with store.writer():
            pass

        assert await store.sweep(0) == 0

    async def test_commit_of_present_content_is_idempotent(self, store: BlobStore) -> None:
        data = b"the same bytes twice"

        assert await write(store, data) == await write(store, data) == sha256_hex(data)
        assert await read_back(store, sha256_hex(data)) == data
        assert [info.digest async for info in store.digests()] == [sha256_hex(data)]

    async def test_commit_accepts_matching_expected_digest(self, store: BlobStore) -> None:
        async with store.writer() as writer:
            await writer.write(b"checked")
            assert await writer.commit(sha256_hex(b"checked")) == sha256_hex(b"checked")

    async def test_expected_digest_mismatch_raises_and_keeps_nothing(
        self, store: BlobStore
    ) -> None:
        data = b"what the upstream actually sent"
        claimed = sha256_hex(b"what the upstream claimed")

        with pytest.raises(BlobDigestMismatch) as raised:
            await write_expecting(store, data, claimed)

        assert raised.value.expected == claimed
        assert raised.value.actual == sha256_hex(data)
        assert await store.stat(sha256_hex(data)) is None
        assert await store.stat(claimed) is None
        assert await store.sweep(0) == 0

    async def test_put_stores_small_payloads(self, store: BlobStore) -> None:
        data = b"// swift-tools-version:5.9\n"

        digest = await store.put(data)

        assert digest == sha256_hex(data)
        assert await store.read(digest) == data
        assert await store.put(data, sha256_hex(data)) == digest
        with pytest.raises(BlobDigestMismatch):
            await store.put(b"other", digest)

    async def test_empty_blob(self, store: BlobStore) -> None:
        digest = await store.put(b"")

        assert digest == sha256_hex(b"")
        assert await store.read(digest) == b""
        assert await store.verify(digest)

    async def test_missing_blob(self, store: BlobStore) -> None:
        digest = sha256_hex(b"never stored")

        assert await store.read(digest) is None
        assert await store.open(digest) is None
        assert await store.stat(digest) is None
        assert not await store.verify(digest)
        assert not await store.delete(digest)
        assert not await store.quarantine(digest)

    async def test_delete_removes_a_blob(self, store: BlobStore) -> None:
        digest = await store.put(b"pruned")

        assert await store.delete(digest)

        assert await store.open(digest) is None
        assert await store.read(digest) is None
        assert await store.put(b"pruned") == digest  # and it can come back
        assert await store.read(digest) == b"pruned"

    async def test_digests_lists_every_blob(self, store: BlobStore) -> None:
        stored = {await store.put(f"blob {n}".encode()) for n in range(5)}

        listed = {info.digest: info async for info in store.digests()}

        assert set(listed) == stored
        assert all(info.size == len(b"blob 0") for info in listed.values())

    async def test_verify_accepts_an_intact_blob(self, store: BlobStore) -> None:
        assert await store.verify(await store.put(b"intact"))

    async def test_verify_detects_a_corrupted_blob(self, store: BlobStore) -> None:
        digest = await store.put(b"bytes that will rot on disk")

        await self.corrupt_blob(store, digest)

        assert not await store.verify(digest)

    async def test_a_corrupted_blob_is_never_served(self, store: BlobStore) -> None:
        large = await store.put(b"served with sendfile " * 10_000)
        small = await store.put(b"read into memory")
        assert await store.open(large) is not None  # verified once, then trusted

        await self.corrupt_blob(store, large)
        await self.corrupt_blob(store, small)

        assert await store.open(large) is None
        assert await store.read(small) is None
        # Quarantined: gone from the store, so the next request refetches it.
        assert await store.stat(large) is None
        assert await store.stat(small) is None
        assert await store.put(b"read into memory") == small
        assert await store.read(small) == b"read into memory"
        assert await store.purge_quarantine(dry_run=True) > 0
        assert await store.purge_quarantine() > 0
        assert await store.purge_quarantine() == 0

    async def test_quarantine_moves_a_blob_out_of_the_store(self, store: BlobStore) -> None:
        digest = await store.put(b"suspicious")

        assert await store.quarantine(digest)

        assert await store.stat(digest) is None
        assert not await store.quarantine(digest)

    async def test_concurrent_writers_of_the_same_content(self, store: BlobStore) -> None:
        data = os.urandom(256 * 1024)

        digests = await asyncio.gather(*(write(store, data) for _ in range(16)))

        assert set(digests) == {sha256_hex(data)}
        assert await read_back(store, sha256_hex(data)) == data
        assert await store.verify(sha256_hex(data))
        assert await store.sweep(0) == 0

    async def test_concurrent_writers_of_different_content(self, store: BlobStore) -> None:
        payloads = [os.urandom(1024) for _ in range(16)]

        digests = await asyncio.gather(*(store.put(data) for data in payloads))

        assert digests == [sha256_hex(data) for data in payloads]
        for digest, data in zip(digests, payloads, strict=True):
            assert await store.read(digest) == data

    @pytest.mark.parametrize("digest", INVALID_DIGESTS)
    async def test_invalid_digests_are_rejected(self, store: BlobStore, digest: str) -> None:
        for operation in (store.read, store.open, store.stat, store.delete, store.verify):
            with pytest.raises(ValueError, match="digest"):
                await operation(digest)
        with pytest.raises(ValueError, match="digest"):
            store.url_for(digest, 60)
        with pytest.raises(ValueError, match="digest"):
            await write_expecting(store, b"anything", digest)
        assert await store.stat(sha256_hex(b"anything")) is None
