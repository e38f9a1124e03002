"""`FilesystemBlobStore` against the blob store contract, plus its on-disk layout."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from cache.blobs import BlobStore, FilesystemBlobStore
from tests.contracts.blob_store import BlobStoreContract


class TestFilesystemBlobStore(BlobStoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> BlobStore:
        return FilesystemBlobStore(tmp_path / "blobs")

    async def corrupt_blob(self, store: BlobStore, digest: str) -> None:
        path = await store.path_of(digest)
        assert path is not None
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))


async def test_blobs_are_sharded_by_digest_prefix(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path)
    data = b"layout"
    digest = hashlib.sha256(data).hexdigest()

    await store.put_bytes(data)

    expected = tmp_path / "sha256" / digest[:2] / digest[2:4] / digest
    assert await store.path_of(digest) == expected
    assert expected.read_bytes() == data


async def test_staging_is_inside_the_store_root(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path)

    staged = store.staging_path()

    # Same directory tree, hence same filesystem: committing is an atomic rename.
    assert staged.parent == tmp_path / "staging"
    assert staged.parent.is_dir()


async def test_committing_leaves_no_staging_files(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path)
    staged = store.staging_path()
    staged.write_bytes(b"one")

    await store.commit(staged)
    await store.put_bytes(b"two")
    await store.put_bytes(b"two")

    assert list((tmp_path / "staging").iterdir()) == []


async def test_two_stores_share_one_root(tmp_path: Path) -> None:
    # Several server processes share one data directory.
    writer, reader = FilesystemBlobStore(tmp_path), FilesystemBlobStore(tmp_path)

    digest = await writer.put_bytes(b"shared")

    assert await reader.read_bytes(digest) == b"shared"


async def test_a_truncated_blob_fails_verification(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path)
    digest = await store.put_bytes(b"complete content")
    path = await store.path_of(digest)
    assert path is not None

    path.write_bytes(b"complete")

    assert not await store.verify(digest)
