"""`FilesystemBlobStore` against the blob store contract, plus its on-disk layout."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from cache.blobs import BlobStore
from cache.embedded.files import FilesystemBlobStore
from tests.contracts.blob_store import BlobStoreContract


class TestFilesystemBlobStore(BlobStoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> BlobStore:
        return FilesystemBlobStore(tmp_path / "blobs")

    async def corrupt_blob(self, store: BlobStore, digest: str) -> None:
        blob = await store.open(digest, verify=False)
        assert blob is not None
        assert blob.local_path is not None
        data = bytearray(blob.local_path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        blob.local_path.write_bytes(bytes(data))


async def test_blobs_are_sharded_by_digest_prefix(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path)
    data = b"layout"
    digest = hashlib.sha256(data).hexdigest()

    await store.put(data)

    expected = tmp_path / "sha256" / digest[:2] / digest[2:4] / digest
    blob = await store.open(digest)
    assert blob is not None
    assert blob.local_path == expected
    assert expected.read_bytes() == data


async def test_a_local_file_on_the_same_file_system_is_linked_not_copied(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path / "blobs")
    source = tmp_path / "scratch.zip"
    source.write_bytes(b"a large archive")
    async with store.writer() as writer:
        await writer.write_file(source)
        digest = await writer.commit()

    blob = await store.open(digest)
    assert blob is not None
    assert blob.local_path is not None
    assert blob.local_path.stat().st_ino == source.stat().st_ino


async def test_nothing_is_created_until_something_is_written(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path / "blobs")
    async with store.writer():
        pass
    await store.open(hashlib.sha256(b"x").hexdigest())

    assert not (tmp_path / "blobs").exists()


async def test_committing_leaves_no_staging_files(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path)

    await store.put(b"one")
    await store.put(b"two")
    await store.put(b"two")

    assert list((tmp_path / "staging").iterdir()) == []


async def test_sweep_removes_only_abandoned_partial_writes(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path)
    (tmp_path / "staging").mkdir()
    old = tmp_path / "staging" / "old.partial"
    old.write_bytes(b"a crash left this")
    an_hour_ago = time.time() - 3700
    os.utime(old, (an_hour_ago, an_hour_ago))
    young = tmp_path / "staging" / "young.partial"
    young.write_bytes(b"a fill is writing this")

    assert await store.sweep(3600, dry_run=True) == len(b"a crash left this")
    assert old.exists()
    assert await store.sweep(3600) == len(b"a crash left this")

    assert not old.exists()
    assert young.exists()


async def test_two_stores_share_one_root(tmp_path: Path) -> None:
    # Several server processes share one data directory.
    writer, reader = FilesystemBlobStore(tmp_path), FilesystemBlobStore(tmp_path)

    digest = await writer.put(b"shared")

    assert await reader.read(digest) == b"shared"


async def test_a_truncated_blob_fails_verification(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path)
    digest = await store.put(b"complete content")
    blob = await store.open(digest)
    assert blob is not None
    assert blob.local_path is not None

    blob.local_path.write_bytes(b"complete")

    assert not await store.verify(digest)
    assert await store.open(digest) is None
