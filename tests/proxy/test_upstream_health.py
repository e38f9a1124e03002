"""One broken repository never takes an upstream down; every 5xx is logged with its cause."""

from __future__ import annotations

import inspect
from pathlib import Path

from structlog.testing import capture_logs

import cache.errors
import proxy.protocol
import proxy.service.errors
import upstreams.errors
from proxy.app import create_app
from proxy.problems import TABLE, kind_of
from tests.support.git_http import GitHttpServer
from tests.support.git_repos import GitRepo
from tests.support.http import ZIP_ACCEPT, ClientFactory, problem
from tests.support.proxy import git_upstream, proxy_settings
from tests.support.swift_packages import publish_linked_list


def _corrupt_repository(root: Path) -> None:
    """mona/Broken: its refs list fine, but the host cannot send the tagged tree."""
    repo = GitRepo.init(root / "mona" / "Broken")
    repo.write("Package.swift", "// swift-tools-version:5.9\n")
    repo.commit("one", when=1_700_000_000)
    repo.tag("1.0.0")
    tree = repo.rev_parse("1.0.0^{tree}")
    (repo.path / ".git" / "objects" / tree[:2] / tree[2:]).unlink()


async def test_a_corrupt_repository_affects_that_package_alone(
    tmp_path: Path, git_server: GitHttpServer, aiohttp_client: ClientFactory
) -> None:
    publish_linked_list(git_server.root)
    _corrupt_repository(git_server.root)
    settings = proxy_settings(
        tmp_path / "data",
        upstreams=[git_upstream(git_server.url, failure_threshold=2, offline_window_seconds=300)],
    )
    client = await aiohttp_client(create_app(settings))

    with capture_logs() as logs:
        for _ in range(4):
            broken = await client.get("/mona/Broken/1.0.0.zip", headers=ZIP_ACCEPT)
            body = await problem(broken, 502)
            assert "loopback-git" in body["detail"]
            assert "cannot reach" not in body["detail"]
        healthy = await client.get("/mona/LinkedList/1.0.0.zip", headers=ZIP_ACCEPT)

    assert healthy.status == 200  # not 503 "assumed offline"
    assert not any(entry["event"] == "upstream_assumed_offline" for entry in logs)
    served = [entry for entry in logs if entry["event"] == "problem_served"]
    assert len(served) == 4
    assert {entry["error"] for entry in served} == {"RemoteFailed"}
    assert all(entry["status"] == 502 and entry["detail"] for entry in served)


async def test_an_unreachable_git_host_is_a_502_naming_the_cause(
    tmp_path: Path, aiohttp_client: ClientFactory
) -> None:
    settings = proxy_settings(tmp_path / "data", "http://127.0.0.1:9")
    client = await aiohttp_client(create_app(settings))

    with capture_logs() as logs:
        response = await client.get("/mona/LinkedList/1.0.0.zip", headers=ZIP_ACCEPT)

    body = await problem(response, 502)
    assert "Connection refused" in body["detail"]
    assert "did not answer in time" not in body["detail"]
    [logged] = [entry for entry in logs if entry["event"] == "problem_served"]
    assert logged["error"] == "Unreachable"
    assert "Connection refused" in logged["detail"]


def _domain_errors() -> list[type[Exception]]:
    found: list[type[Exception]] = []
    for module in (upstreams.errors, cache.errors, proxy.service.errors, proxy.protocol):
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, Exception) and value.__module__ == module.__name__:
                found.append(value)
    return found


def test_every_domain_error_has_its_own_row_in_the_problem_table() -> None:
    errors = _domain_errors()
    assert len(errors) > 20
    missing = [error.__name__ for error in errors if error not in TABLE]
    assert missing == []
    for error in errors:
        kind = kind_of(error.__new__(error))
        assert kind is TABLE[error]
        assert 400 <= kind.status < 600
