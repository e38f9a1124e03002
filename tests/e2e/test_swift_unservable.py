"""A tag the proxy cannot serve stops being picked, with the real `swift` client.

`mona.LinkedList` gets a newest tag whose tree has no `Package.swift` at the
root (its manifest moved into a subdirectory). Once the proxy has tried that
release, the list marks it, and a resolution from nothing picks the newest
release that can be served.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer

from proxy.app import create_app
from tests.support.git_http import GitHttpServer
from tests.support.http import JSON_ACCEPT
from tests.support.proxy import proxy_settings
from tests.support.swift_client import SwiftClient, record_requests, registry_url
from tests.support.swift_packages import (
    LINKED_LIST_MANIFEST,
    configure_registry,
    publish_linked_list,
    publish_node,
    write_consumer,
)

pytestmark = pytest.mark.e2e

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]


async def test_a_release_without_a_manifest_is_skipped_once_the_proxy_knows(
    swift: str, tmp_path: Path, git_server: GitHttpServer, aiohttp_server: ServerFactory
) -> None:
    root = tmp_path / "git-root"
    publish_node(root)
    repo = publish_linked_list(root)
    repo.remove("Package.swift")
    repo.write("Package/Package.swift", LINKED_LIST_MANIFEST)
    repo.commit("manifest moved", when=1_700_000_500)
    repo.tag("1.2.0")
    app = create_app(proxy_settings(tmp_path / "proxy-data", git_server.url))
    seen = record_requests(app)
    url = registry_url(await aiohttp_server(app))

    async def resolve(run: str) -> tuple[int, str, Path]:
        consumer = write_consumer(
            tmp_path / run / "App",
            '.package(id: "mona.LinkedList", from: "1.0.0")',
            "mona.LinkedList",
        )
        configure_registry(consumer, url)
        client = SwiftClient(swift, tmp_path / run / "client")
        status, output = await client.attempt(
            "package",
            "resolve",
            *client.state,
            "--scratch-path",
            str(tmp_path / run / "scratch"),
            cwd=consumer,
        )
        return status, output, consumer

    # The proxy does not know yet: SwiftPM picks 1.2.0 and is refused (a 404,
    # which SwiftPM reports as "package version not found on registry").
    status, output, _ = await resolve("first")
    assert status != 0, output
    assert "mona.LinkedList version 1.2.0" in output
    async with (
        ClientSession() as session,
        session.get(f"{url}/mona/LinkedList", headers=JSON_ACCEPT) as response,
    ):
        releases = (await response.json())["releases"]
    assert "has no Package.swift at its root" in releases["1.2.0"]["problem"]["detail"]

    status, output, consumer = await resolve("second")
    assert status == 0, output
    resolved = (consumer / "Package.resolved").read_text()
    assert '"version" : "1.1.0"' in resolved
    assert "GET /mona/LinkedList/1.1.0.zip 200" in seen
