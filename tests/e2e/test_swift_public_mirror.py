"""The real `swift` client against packages that name each other by public git URLs,
served by a proxy that fetches them from a mirror.

The public host is a loopback address (127.0.0.2) that counts connections and
closes them unanswered: SwiftPM falling back to git would fail there, and the
count proves nothing tried. The mirror is the smart-HTTP server on 127.0.0.1,
with the repositories under `github/`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from proxy.app import create_app
from tests.support.git_http import GitHttpServer
from tests.support.proxy import proxy_settings
from tests.support.public_host import PublicHost
from tests.support.public_packages import publish_mirrored_graph, write_identity_consumer
from tests.support.swift_client import SwiftClient, record_requests, registry_url
from tests.support.swift_packages import configure_registry, write_consumer

pytestmark = pytest.mark.e2e

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]
EXPECTED = "linked-list 1.1.0 with node 1.0.0 built from Package@swift-5.9.swift"


@pytest.fixture
def public() -> Iterator[PublicHost]:
    with PublicHost() as host:
        yield host


async def _proxy(
    tmp_path: Path, public: PublicHost, git_server: GitHttpServer, aiohttp_server: ServerFactory
) -> tuple[TestServer, list[str]]:
    publish_mirrored_graph(git_server.root / "github", f"https://{public.host}")
    upstream = {
        "name": "github",
        "type": "git",
        "url_template": public.url("{scope}/{name}.git"),
        "fetch_url_template": f"{git_server.url}/github/{{scope}}/{{name}}.git",
    }
    app = create_app(proxy_settings(tmp_path / "proxy-data", upstreams=[upstream]))
    seen = record_requests(app)
    return await aiohttp_server(app), seen


async def _resolve_build_run(client: SwiftClient, consumer: Path, scratch: Path, flag: str) -> str:
    where = ["--scratch-path", str(scratch), flag]
    await client.run("package", "resolve", *client.state, *where, cwd=consumer)
    await client.run("build", *client.state, *where, cwd=consumer)
    return await client.run("run", *client.state, *where, "--skip-build", "App", cwd=consumer)


def _pins(consumer: Path) -> dict[str, str]:
    resolved = json.loads((consumer / "Package.resolved").read_text())
    return {pin["identity"].lower(): pin["kind"] for pin in resolved["pins"]}


async def test_public_git_urls_resolve_and_build_through_the_mirror(
    swift: str,
    tmp_path: Path,
    public: PublicHost,
    git_server: GitHttpServer,
    aiohttp_server: ServerFactory,
) -> None:
    server, seen = await _proxy(tmp_path, public, git_server, aiohttp_server)
    consumer = write_consumer(
        tmp_path / "App",
        f'.package(url: "{public.url("mona/LinkedList.git")}", from: "1.0.0")',
        "LinkedList",
    )
    configure_registry(consumer, registry_url(server))
    client = SwiftClient(swift, tmp_path / "client")

    output = await _resolve_build_run(
        client, consumer, tmp_path / "scratch", "--replace-scm-with-registry"
    )

    assert EXPECTED in output
    assert _pins(consumer) == {"mona.linkedlist": "registry", "mona.node": "registry"}
    # The consumer's URL and the one in LinkedList's manifest, as written there.
    for name in ("LinkedList", "Node"):
        assert f"GET /identifiers?url={public.url(f'mona/{name}.git')} 200" in seen
    assert "GET /mona/Node/1.0.0.zip 200" in seen
    assert git_server.upload_pack_requests > 0  # the bytes came from the mirror
    assert public.connections == 0


async def test_registry_identities_resolve_when_a_dependency_names_another_by_git_url(
    swift: str,
    tmp_path: Path,
    public: PublicHost,
    git_server: GitHttpServer,
    aiohttp_server: ServerFactory,
) -> None:
    # LinkedList's manifest names Node by its public git URL. Mapped to the
    # identity `mona.Node`, it is the consumer's own registry dependency, so
    # SwiftPM never clones it; nothing is replaced.
    server, seen = await _proxy(tmp_path, public, git_server, aiohttp_server)
    consumer = write_identity_consumer(tmp_path / "App")
    configure_registry(consumer, registry_url(server))
    client = SwiftClient(swift, tmp_path / "client")

    output = await _resolve_build_run(
        client, consumer, tmp_path / "scratch", "--use-registry-identity-for-scm"
    )

    assert EXPECTED in output
    assert _pins(consumer) == {"mona.linkedlist": "registry", "mona.node": "registry"}
    assert f"GET /identifiers?url={public.url('mona/Node.git')} 200" in seen
    assert public.connections == 0
