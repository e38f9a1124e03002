"""Shared fixtures and the CI rule: in CI a skipped test is a failed run.

End-to-end tests need the real `swift` toolchain. On a developer machine
without it they skip with a reason; with CI=true they fail instead, and any
skip at all turns the run red, so a missing toolchain can never pass CI.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from aiohttp import web
from aiohttp.test_utils import BaseTestServer, TestClient, TestServer

from tests.support import fuzzing
from tests.support.git_http import GitHttpServer
from tests.support.http import ProxyTestServer

_skipped: list[str] = []

# Before any test module applies `@settings`: profiles are read at decoration time.
fuzzing.register_profiles()


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    # A fuzzing run draws from FUZZ_SEED; Hypothesis's own plugin applies the seed
    # given as --hypothesis-seed, so it is handed over before that plugin reads it.
    seed = fuzzing.fuzz_seed()
    if seed is not None and config.getoption("hypothesis_seed", None) is None:
        config.option.hypothesis_seed = str(seed)


def pytest_report_header(config: pytest.Config) -> str:
    return fuzzing.replay_hint()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _in_ci() and _skipped:
        print(f"\nCI forbids skipped tests; skipped: {', '.join(_skipped)}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def swift() -> str:
    """Path of the real `swift` driver."""
    found = shutil.which("swift")
    if found is None:
        message = "the Swift toolchain (`swift`) is not on PATH"
        if _in_ci():
            pytest.fail(f"{message}; CI requires it for the end-to-end tests")
        pytest.skip(message)
    return found


@pytest.fixture
def git_server(tmp_path: Path) -> Iterator[GitHttpServer]:
    root = tmp_path / "git-root"
    root.mkdir()
    with GitHttpServer(root) as server:
        yield server


@pytest.fixture
def structlog_defaults() -> Iterator[None]:
    """structlog as shipped, for tests that assert what was logged.

    Tests that run the CLI configure a level (`warning`, ...) whose filtering
    happens before `capture_logs` sees an event; this undoes that for one test.
    """
    saved = structlog.get_config()
    structlog.reset_defaults()
    yield
    structlog.configure(**saved)


# pytest-aiohttp's `aiohttp_server` and `aiohttp_client`, serving every
# application on the runner of `spm-proxy serve` (`ProxyTestServer`).


@pytest.fixture
async def aiohttp_server() -> AsyncIterator[Callable[..., Awaitable[TestServer]]]:
    servers: list[TestServer] = []

    async def serve(
        app: web.Application, *, host: str = "127.0.0.1", port: int | None = None, **kwargs: Any
    ) -> TestServer:
        server = ProxyTestServer(app, host=host, port=port)
        await server.start_server(**kwargs)
        servers.append(server)
        return server

    yield serve
    while servers:
        await servers.pop().close()


@pytest.fixture
def aiohttp_client(
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
) -> Callable[..., Awaitable[TestClient[Any, Any]]]:
    async def connect(
        target: web.Application | BaseTestServer,
        *,
        server_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> TestClient[Any, Any]:
        if isinstance(target, web.Application):
            target = ProxyTestServer(target, **(server_kwargs or {}))
        return await aiohttp_client(target, **kwargs)

    return connect
