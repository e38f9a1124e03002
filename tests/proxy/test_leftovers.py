"""What killed processes leave behind is removed at start-up, and never what is live."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from structlog.testing import capture_logs

from proxy.app import create_app
from tests.support.git_http import GitHttpServer
from tests.support.http import ZIP_ACCEPT, ClientFactory
from tests.support.proxy import proxy_settings
from tests.support.swift_packages import linked_list_source, publish_linked_list

HOUR_AGO = time.time() - 3600


def _plant(path: Path, data: bytes = b"left behind", *, old: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if old:
        os.utime(path, (HOUR_AGO, HOUR_AGO))
    return path


async def test_leftovers_of_killed_fills_are_removed_and_the_repository_serves(
    tmp_path: Path, git_server: GitHttpServer, aiohttp_client: ClientFactory
) -> None:
    repo = publish_linked_list(git_server.root)
    data = tmp_path / "data"
    settings = proxy_settings(data, git_server.url, fill_timeout_seconds=300)
    first = await aiohttp_client(create_app(settings))
    assert (await first.get("/mona/LinkedList/1.0.0.zip", headers=ZIP_ACCEPT)).status == 200
    await first.close()
    [mirror] = (data / "git" / "loopback-git" / "mirrors").iterdir()
    # A process killed in the middle of fills, an hour ago:
    stale = [
        _plant(data / "blobs" / "staging" / "dead.partial"),
        _plant(data / "scratch" / "import-dead" / "blob"),
        _plant(data / "git" / "loopback-git" / "scratch" / "dead.zip"),
        _plant(mirror / "objects" / "pack" / "tmp_pack_dead"),
        _plant(mirror / "refs" / "tags" / "1.1.0.lock", b"0" * 40),
    ]
    half_made = data / "git" / "loopback-git" / "mirrors" / "0123456789abcdef.git"
    _plant(half_made / "HEAD.lock")
    os.utime(half_made, (HOUR_AGO, HOUR_AGO))
    # ...and a fill that is running right now:
    live = [
        _plant(data / "blobs" / "staging" / "live.partial", old=False),
        _plant(mirror / "objects" / "pack" / "tmp_pack_live", old=False),
    ]
    repo.write("Sources/LinkedList/LinkedList.swift", linked_list_source("1.1.0"))
    repo.commit("1.1.0", when=1_700_100_000)
    repo.tag("1.1.0")

    with capture_logs() as logs:
        client = await aiohttp_client(create_app(settings))
        async with asyncio.timeout(30):
            # The start-up sweep runs in a task of its own, with no event to wait on.
            while not any(e["event"] == "leftovers_removed" for e in logs):  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        swept = [path for path in stale if path.exists()]
        kept = [path for path in live if path.exists()]
        fresh = await client.get("/mona/LinkedList/1.1.0.zip", headers=ZIP_ACCEPT)

    assert fresh.status == 200
    assert swept == []
    assert not half_made.exists()
    assert kept == live
    assert next(e for e in logs if e["event"] == "leftovers_removed")["size"] > 0
    # The fill then took the mirror's lock: nobody else held it, so the young
    # temporary pack in it was a dead writer's too, and it went.
    assert live[0].exists()
    assert not live[1].exists()
