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

from cache.blobs import BlobDigestMismatch, BlobStore

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


async def stage(store: BlobStore, data: bytes) -> Path:
    staged = store.staging_path()
    await asyncio.to_thread(staged.write_bytes, data)
    return staged


class BlobStoreContract:
    @pytest.fixture
    def store(self) -> BlobStore:
        raise NotImplementedError("a contract subclass provides the store")

    async def corrupt_blob(self, store: BlobStore, digest: str) -> None:
        """Change the stored bytes of `digest` behind the store's back."""
        raise NotImplementedError("a contract subclass knows how to corrupt its blobs")

    async def test_commit_returns_sha256_hex(self, store: BlobStore) -> None:
        data = b"source archive bytes"
        staged = store.staging_path()
        staged.write_bytes(data)

        assert await store.commit(staged) == sha256_hex(data)

    async def test_staging_paths_are_fresh(self, store: BlobStore) -> None:
        first, second = store.staging_path(), store.staging_path()

        assert first != second
        assert not first.exists()
        assert first.parent.is_dir()

    async def test_committed_content_is_readable(self, store: BlobStore) -> None:
        data = os.urandom(4096)
        staged = store.staging_path()
        staged.write_bytes(data)

        digest = await store.commit(staged)

        assert await store.read_bytes(digest) == data
        assert await store.contains(digest)
        path = await store.path_of(digest)
        if path is not None:
            assert path.read_bytes() == data

    async def test_staged_file_is_consumed_by_commit(self, store: BlobStore) -> None:
        staged = store.staging_path()
        staged.write_bytes(b"manifest")

        await store.commit(staged)

        assert not staged.exists()

    async def test_nothing_is_visible_before_commit(self, store: BlobStore) -> None:
        data = b"half of an archive"
        staged = store.staging_path()
        staged.write_bytes(data)

        assert not await store.contains(sha256_hex(data))
        assert await store.path_of(sha256_hex(data)) is None

    async def test_commit_of_present_content_is_idempotent(self, store: BlobStore) -> None:
        data = b"the same bytes twice"
        first, second = store.staging_path(), store.staging_path()
        first.write_bytes(data)
        second.write_bytes(data)

        assert await store.commit(first) == await store.commit(second) == sha256_hex(data)
        assert not second.exists()
        assert await store.read_bytes(sha256_hex(data)) == data

    async def test_commit_accepts_matching_expected_digest(self, store: BlobStore) -> None:
        data = b"checked"
        staged = store.staging_path()
        staged.write_bytes(data)

        assert await store.commit(staged, expected=sha256_hex(data)) == sha256_hex(data)

    async def test_expected_digest_mismatch_raises_and_leaves_nothing(
        self, store: BlobStore
    ) -> None:
        data = b"what the upstream actually sent"
        claimed = sha256_hex(b"what the upstream claimed")
        staged = store.staging_path()
        staged.write_bytes(data)

        with pytest.raises(BlobDigestMismatch) as raised:
            await store.commit(staged, expected=claimed)

        assert raised.value.expected == claimed
        assert raised.value.actual == sha256_hex(data)
        assert not staged.exists()
        assert not await store.contains(sha256_hex(data))
        assert not await store.contains(claimed)

    async def test_put_bytes_stores_small_payloads(self, store: BlobStore) -> None:
        data = b"// swift-tools-version:5.9\n"

        digest = await store.put_bytes(data)

        assert digest == sha256_hex(data)
        assert await store.read_bytes(digest) == data
        assert await store.put_bytes(data) == digest

    async def test_empty_blob(self, store: BlobStore) -> None:
        digest = await store.put_bytes(b"")

        assert digest == sha256_hex(b"")
        assert await store.read_bytes(digest) == b""
        assert await store.verify(digest)

    async def test_content_larger_than_a_hashing_chunk(self, store: BlobStore) -> None:
        data = os.urandom(3 * (1 << 20) + 17)
        staged = store.staging_path()
        staged.write_bytes(data)

        digest = await store.commit(staged, expected=sha256_hex(data))

        assert await store.read_bytes(digest) == data
        assert await store.verify(digest)

    async def test_missing_blob(self, store: BlobStore) -> None:
        digest = sha256_hex(b"never stored")

        assert await store.read_bytes(digest) is None
        assert await store.path_of(digest) is None
        assert not await store.contains(digest)
        assert not await store.verify(digest)
        await store.delete(digest)

    async def test_delete_removes_a_blob(self, store: BlobStore) -> None:
        digest = await store.put_bytes(b"quarantined")

        await store.delete(digest)

        assert not await store.contains(digest)
        assert await store.read_bytes(digest) is None
        assert await store.path_of(digest) is None

    async def test_blob_can_be_stored_again_after_delete(self, store: BlobStore) -> None:
        digest = await store.put_bytes(b"back again")
        await store.delete(digest)

        assert await store.put_bytes(b"back again") == digest
        assert await store.read_bytes(digest) == b"back again"

    async def test_discard_removes_a_staged_file(self, store: BlobStore) -> None:
        staged = store.staging_path()
        staged.write_bytes(b"abandoned download")

        await store.discard(staged)
        await store.discard(staged)

        assert not staged.exists()
        assert not await store.contains(sha256_hex(b"abandoned download"))

    async def test_verify_accepts_an_intact_blob(self, store: BlobStore) -> None:
        digest = await store.put_bytes(b"intact")

        assert await store.verify(digest)

    async def test_verify_detects_a_corrupted_blob(self, store: BlobStore) -> None:
        digest = await store.put_bytes(b"bytes that will rot on disk")

        await self.corrupt_blob(store, digest)

        assert not await store.verify(digest)

    async def test_a_corrupted_blob_is_never_served(self, store: BlobStore) -> None:
        large = await store.put_bytes(b"served with sendfile " * 10_000)
        small = await store.put_bytes(b"read into memory")
        assert await store.path_of(large) is not None  # verified once, then trusted

        await self.corrupt_blob(store, large)
        await self.corrupt_blob(store, small)

        assert await store.path_of(large) is None
        assert await store.read_bytes(small) is None
        # Quarantined: gone from the store, so the next request refetches it.
        assert not await store.contains(large)
        assert not await store.contains(small)
        assert await store.put_bytes(b"read into memory") == small
        assert await store.read_bytes(small) == b"read into memory"

    async def test_quarantine_moves_a_blob_out_of_the_store(self, store: BlobStore) -> None:
        digest = await store.put_bytes(b"suspicious")

        kept = await store.quarantine(digest)

        assert kept is not None
        assert not await store.contains(digest)
        assert await store.quarantine(digest) is None

    async def test_concurrent_commits_of_the_same_content(self, store: BlobStore) -> None:
        data = os.urandom(256 * 1024)
        staged = [await stage(store, data) for _ in range(16)]

        digests = await asyncio.gather(*(store.commit(path) for path in staged))

        assert set(digests) == {sha256_hex(data)}
        assert not any(path.exists() for path in staged)
        assert await store.read_bytes(sha256_hex(data)) == data
        assert await store.verify(sha256_hex(data))

    async def test_concurrent_commits_of_different_content(self, store: BlobStore) -> None:
        payloads = [os.urandom(1024) for _ in range(16)]

        digests = await asyncio.gather(*(store.put_bytes(data) for data in payloads))

        assert digests == [sha256_hex(data) for data in payloads]
        for digest, data in zip(digests, payloads, strict=True):
            assert await store.read_bytes(digest) == data

    @pytest.mark.parametrize("digest", INVALID_DIGESTS)
    async def test_invalid_digests_are_rejected(self, store: BlobStore, digest: str) -> None:
        with pytest.raises(ValueError, match="digest"):
            await store.read_bytes(digest)
        with pytest.raises(ValueError, match="digest"):
            await store.path_of(digest)
        with pytest.raises(ValueError, match="digest"):
            await store.contains(digest)
        with pytest.raises(ValueError, match="digest"):
            await store.delete(digest)
        with pytest.raises(ValueError, match="digest"):
            await store.verify(digest)
        staged = store.staging_path()
        staged.write_bytes(b"anything")
        with pytest.raises(ValueError, match="digest"):
            await store.commit(staged, expected=digest)
        assert not staged.exists()
