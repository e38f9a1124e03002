"""A build process that dies mid-build (killed, out of memory) fails only that
fill, with a 503 problem that says so; nothing is recorded, and the next
request builds the release."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from proxy.app import create_app
from tests.support.git_http import GitHttpServer
from tests.support.http import ZIP_ACCEPT, ClientFactory
from tests.support.proxy import proxy_settings
from tests.support.swift_packages import publish_linked_list
from upstreams.git import release


def killed_mid_build(*_: Any) -> None:
    """Run in a build process in place of the archive build: it dies as the
    kernel's out-of-memory killer would end it."""
    os.kill(os.getpid(), signal.SIGKILL)


async def test_a_build_process_killed_mid_build_fails_that_fill_with_a_503_and_a_retry_builds(
    tmp_path: Path,
    git_server: GitHttpServer,
    aiohttp_client: ClientFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    publish_linked_list(git_server.root)
    client = await aiohttp_client(create_app(proxy_settings(tmp_path / "data", git_server.url)))
    monkeypatch.setattr(release, "build", killed_mid_build)

    with capture_logs() as logs:
        interrupted = await client.get("/mona/LinkedList/1.0.0.zip", headers=ZIP_ACCEPT)
        problem = await interrupted.json(content_type=None)

    assert interrupted.status == 503
    assert interrupted.content_type == "application/problem+json"
    assert "mona.LinkedList 1.0.0 ended before it finished" in problem["detail"]
    assert "retry" in problem["detail"]
    served = next(event for event in logs if event["event"] == "problem_served")
    assert served["log_level"] == "error"

    monkeypatch.undo()
    retried = await client.get("/mona/LinkedList/1.0.0.zip", headers=ZIP_ACCEPT)
    assert retried.status == 200
    assert (await retried.read()).startswith(b"PK")
