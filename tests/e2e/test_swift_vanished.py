"""Upstreams delete things; builds through spm-proxy go on, with the real `swift` client.

A consumer resolves through the proxy from git repositories on loopback; then
the upstream deletes the resolved tag, and later both repositories. Every
later resolution starts from nothing: a new project directory without
Package.resolved, and a client whose caches, fingerprints and configuration
are empty, so only the proxy can answer.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer

from proxy.app import create_app
from tests.support.git_http import GitHttpServer
from tests.support.proxy import git_upstream, proxy_settings
from tests.support.swift_client import SwiftClient, registry_url
from tests.support.swift_packages import (
    configure_registry,
    publish_linked_list,
    publish_node,
    write_consumer,
)

pytestmark = pytest.mark.e2e

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]
DEPENDENCY = '.package(id: "mona.LinkedList", from: "1.0.0")'
NEWEST = "linked-list 1.1.0 with node 1.0.0 built from Package@swift-5.9.swift"
OLDER = "linked-list 1.0.0 with node 1.0.0 built from Package@swift-5.9.swift"


class Scenario:
    """One proxy over loopback git; each `fresh` project and client starts from nothing."""

    def __init__(self, swift: str, tmp_path: Path, server: TestServer) -> None:
        self.swift = swift
        self.tmp_path = tmp_path
        self.url = registry_url(server)
        self.runs = 0

    def fresh(self, resolved: Path | None = None) -> tuple[Path, SwiftClient, Path]:
        self.runs += 1
        run = self.tmp_path / f"run-{self.runs}"
        consumer = write_consumer(run / "App", DEPENDENCY, "mona.LinkedList")
        configure_registry(consumer, self.url)
        if resolved is not None:
            shutil.copy(resolved, consumer / "Package.resolved")
        return consumer, SwiftClient(self.swift, run / "client"), run / "scratch"

    async def build(
        self, *options: str, resolved: Path | None = None
    ) -> tuple[str, dict[str, str]]:
        """Build and run a fresh consumer: its output and its pinned versions."""
        consumer, client, scratch = self.fresh(resolved)
        output = await client.build_and_run(consumer, scratch, "App", *options)
        return output, _pins(consumer / "Package.resolved")

    async def releases(self) -> dict[str, dict[str, object]]:
        async with (
            ClientSession() as session,
            session.get(
                f"{self.url}/mona/LinkedList",
                headers={"Accept": "application/vnd.swift.registry.v1+json"},
            ) as response,
        ):
            assert response.status == 200, await response.text()
            assert response.headers["Content-Version"] == "1"
            releases: dict[str, dict[str, object]] = (await response.json())["releases"]
            return releases


def _pins(resolved: Path) -> dict[str, str]:
    pins = json.loads(resolved.read_text())["pins"]
    return {pin["identity"].lower(): pin["state"]["version"] for pin in pins}


async def _scenario(
    swift: str,
    tmp_path: Path,
    git_server: GitHttpServer,
    aiohttp_server: ServerFactory,
    policy: str,
) -> tuple[Scenario, Path, Path]:
    root = tmp_path / "git-root"
    publish_node(root)
    repo = publish_linked_list(root)
    settings = proxy_settings(
        tmp_path / "proxy-data",
        upstreams=[git_upstream(git_server.url, vanished=policy)],
        # Every list request asks the upstream, as after any TTL.
        list_ttl_seconds=0,
    )
    scenario = Scenario(swift, tmp_path, await aiohttp_server(create_app(settings)))
    return scenario, root, repo.path


async def test_keep_resolves_and_builds_what_the_upstream_deleted(
    swift: str, tmp_path: Path, git_server: GitHttpServer, aiohttp_server: ServerFactory
) -> None:
    scenario, root, linked_list = await _scenario(
        swift, tmp_path, git_server, aiohttp_server, "keep"
    )
    output, pins = await scenario.build()
    assert NEWEST in output
    assert pins == {"mona.linkedlist": "1.1.0", "mona.node": "1.0.0"}

    # The upstream deletes the resolved tag...
    await _git(linked_list, "tag", "--delete", "v1.1.0")
    output, pins = await scenario.build()
    assert NEWEST in output
    assert pins == {"mona.linkedlist": "1.1.0", "mona.node": "1.0.0"}

    # ...and later both repositories.
    shutil.rmtree(root / "mona")
    output, pins = await scenario.build()
    assert NEWEST in output
    assert pins == {"mona.linkedlist": "1.1.0", "mona.node": "1.0.0"}
    assert list(await scenario.releases()) == ["1.1.0"]


async def test_withdraw_steers_new_resolutions_while_pinned_builds_still_build(
    swift: str, tmp_path: Path, git_server: GitHttpServer, aiohttp_server: ServerFactory
) -> None:
    scenario, root, linked_list = await _scenario(
        swift, tmp_path, git_server, aiohttp_server, "withdraw"
    )
    first, _, _ = scenario.fresh()
    first_client = SwiftClient(swift, tmp_path / "first-client")
    await first_client.run("package", "resolve", *first_client.state, cwd=first)
    pinned = first / "Package.resolved"
    assert _pins(pinned) == {"mona.linkedlist": "1.1.0", "mona.node": "1.0.0"}

    # The resolved tag is deleted: a new resolution picks another version.
    await _git(linked_list, "tag", "--delete", "v1.1.0")
    releases = await scenario.releases()
    problem = releases["1.1.0"]["problem"]
    assert isinstance(problem, dict)
    assert problem["status"] == 410
    output, pins = await scenario.build()
    assert OLDER in output
    assert pins == {"mona.linkedlist": "1.0.0", "mona.node": "1.0.0"}

    # The repositories are deleted: nothing is left to pick for a new resolution...
    shutil.rmtree(root / "mona")
    releases = await scenario.releases()
    assert sorted(releases) == ["1.0.0", "1.1.0"]
    assert "no longer lists 1.1.0" in str(releases["1.1.0"]["problem"])
    assert "no longer has mona.LinkedList" in str(releases["1.0.0"]["problem"])
    consumer, client, scratch = scenario.fresh()
    status, output = await client.attempt(
        "package", "resolve", *client.state, "--scratch-path", str(scratch), cwd=consumer
    )
    assert status != 0, output
    assert "mona.linkedlist" in output.lower()
    assert "1.0.0..<2.0.0" in output, output

    # ...while a build pinned by Package.resolved still builds, from nothing. SwiftPM
    # drops listed releases that carry a problem even when Package.resolved pins
    # them, unless it is told to take the pins as they are (what reproducible CI
    # builds do); a checkout that resolved before needs no flag.
    output, pins = await scenario.build("--force-resolved-versions", resolved=pinned)
    assert NEWEST in output
    assert pins == {"mona.linkedlist": "1.1.0", "mona.node": "1.0.0"}
    output = await first_client.build_and_run(first, first / ".build")
    assert NEWEST in output


async def _git(repository: Path, *args: str) -> None:
    process = await asyncio.create_subprocess_exec("git", "-C", str(repository), *args)
    assert await process.wait() == 0
