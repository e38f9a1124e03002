"""The ledger is the authority: an index record that contradicts it is never served.

The index and the ledger restored from different backups is the classic way
to get there: the record of 1.0.0 then names the archive of 1.2.0. The server
must notice on its own (not only `spm-proxy verify`), never serve the wrong
bytes, and heal: refetch when an upstream can be asked, else rebuild the
record from the ledger and the blobs it names.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

from structlog.testing import capture_logs

from cache.embedded.index import DiskcacheIndex
from cache.embedded.kv import JsonStore
from proxy.app import create_app
from tests.support.git_http import GitHttpServer
from tests.support.git_repos import GitRepo
from tests.support.http import JSON_ACCEPT, ZIP_ACCEPT, ClientFactory, problem
from tests.support.proxy import proxy_settings
from tests.support.swift_packages import publish_linked_list
from upstreams.model import PackageId, Version

LINKED_LIST = PackageId("mona", "LinkedList")


async def _fill(data: Path, git_url: str, aiohttp_client: ClientFactory) -> dict[str, bytes]:
    """Serve 1.0.0 and 1.1.0 once, as a client would; return their archives."""
    client = await aiohttp_client(create_app(proxy_settings(data, git_url)))
    archives = {}
    for version in ("1.0.0", "1.1.0"):
        response = await client.get(f"/mona/LinkedList/{version}.zip", headers=ZIP_ACCEPT)
        assert response.status == 200
        archives[version] = await response.read()
    await client.close()
    assert archives["1.0.0"] != archives["1.1.0"]
    return archives


async def _point_record_at(data: Path, version: str, other: str) -> None:
    """Make the index record of `version` name the bytes of `other`, behind the server's back."""
    store = JsonStore(data / "index")
    try:
        index = DiskcacheIndex(store)
        wanted = await index.release(LINKED_LIST, Version.parse(version))
        source = await index.release(LINKED_LIST, Version.parse(other))
        assert wanted is not None
        assert source is not None
        await index.drop_release(LINKED_LIST, Version.parse(version))
        tampered = dataclasses.replace(
            wanted, archive_checksum=source.archive_checksum, manifests=source.manifests
        )
        await index.add_release(tampered)
    finally:
        store.close()


async def test_a_record_contradicting_the_ledger_is_refetched_never_served(
    tmp_path: Path, git_server: GitHttpServer, aiohttp_client: ClientFactory
) -> None:
    publish_linked_list(git_server.root)
    data = tmp_path / "data"
    archives = await _fill(data, git_server.url, aiohttp_client)
    await _point_record_at(data, "1.0.0", "1.1.0")
    client = await aiohttp_client(create_app(proxy_settings(data, git_server.url)))

    with capture_logs() as logs:
        response = await client.get("/mona/LinkedList/1.0.0.zip", headers=ZIP_ACCEPT)
        served = await response.read()

    assert response.status == 200
    assert served == archives["1.0.0"]
    assert served != archives["1.1.0"]
    assert response.headers["X-Cache-Status"] == "miss"  # it was fetched again
    errors = [entry for entry in logs if entry["log_level"] == "error"]
    assert [entry["event"] for entry in errors][:1] == ["release_record_corrupt"]
    metadata = await (await client.get("/mona/LinkedList/1.0.0", headers=JSON_ACCEPT)).json()
    assert metadata["resources"][0]["checksum"] == hashlib.sha256(served).hexdigest()


async def test_with_no_upstream_to_ask_the_record_is_rebuilt_from_the_ledger(
    tmp_path: Path, git_server: GitHttpServer, aiohttp_client: ClientFactory
) -> None:
    publish_linked_list(git_server.root)
    data = tmp_path / "data"
    archives = await _fill(data, git_server.url, aiohttp_client)
    await _point_record_at(data, "1.0.0", "1.1.0")
    offline = proxy_settings(data, git_server.url, offline=True)
    client = await aiohttp_client(create_app(offline))

    with capture_logs() as logs:
        response = await client.get("/mona/LinkedList/1.0.0.zip", headers=ZIP_ACCEPT)
        served = await response.read()

    assert response.status == 200
    assert served == archives["1.0.0"]
    assert {"release_record_corrupt", "release_record_repaired"} <= {e["event"] for e in logs}
    manifest = await client.get(
        "/mona/LinkedList/1.0.0/Package.swift",
        headers={"Accept": "application/vnd.swift.registry.v1+swift"},
    )
    assert manifest.status == 200


async def test_without_the_ledgers_bytes_a_contradicting_record_is_refused(
    tmp_path: Path, git_server: GitHttpServer, aiohttp_client: ClientFactory
) -> None:
    repo: GitRepo = publish_linked_list(git_server.root)
    data = tmp_path / "data"
    archives = await _fill(data, git_server.url, aiohttp_client)
    await _point_record_at(data, "1.0.0", "1.1.0")
    # The recorded bytes are gone, and the tag was moved upstream: nothing can
    # produce what the ledger vouches for.
    digest = hashlib.sha256(archives["1.0.0"]).hexdigest()
    (data / "blobs" / "sha256" / digest[:2] / digest[2:4] / digest).unlink()
    repo.write("moved.txt", "moved\n")
    repo.commit("moved", when=1_800_000_000)
    repo.tag("1.0.0", force=True)
    client = await aiohttp_client(create_app(proxy_settings(data, git_server.url)))

    response = await client.get("/mona/LinkedList/1.0.0.zip", headers=ZIP_ACCEPT)

    body = await problem(response, 502)
    assert digest in body["detail"]  # the recorded checksum, refusing the new bytes
    assert archives["1.1.0"] not in await response.read()
