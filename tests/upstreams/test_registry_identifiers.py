"""`/identifiers` lookups a registry upstream forwards: repository URLs only,
never a client's credentials, which reach neither the registry nor a log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from cache.embedded import FileDocuments
from tests.support.registry_server import Fault, RegistryServer
from upstreams.errors import UpstreamUnavailable
from upstreams.model import PackageId
from upstreams.registry import RegistryUpstream

PACKAGE = PackageId("mona", "LinkedList")
PASSWORD = "pa55-do-not-forward"


# These tests assert what was logged.
pytestmark = pytest.mark.usefixtures("structlog_defaults")


@pytest.fixture
async def server() -> AsyncIterator[RegistryServer]:
    async with RegistryServer() as registry:
        yield registry


@pytest.fixture
async def upstream(server: RegistryServer, tmp_path: Path) -> AsyncIterator[RegistryUpstream]:
    made = RegistryUpstream(
        name="corp-registry",
        base_url=server.url,
        credentials=None,
        connect_timeout=2,
        read_timeout=2,
        documents=FileDocuments(tmp_path / "http-cache"),
    )
    yield made
    await made.close()


async def test_userinfo_is_stripped_before_the_url_goes_out(
    server: RegistryServer, upstream: RegistryUpstream
) -> None:
    server.identifiers["https://github.com/mona/LinkedList.git"] = ["mona.LinkedList"]

    found = await upstream.identities_for(f"https://ci:{PASSWORD}@github.com/mona/LinkedList.git")

    assert found == [PACKAGE]
    assert server.requests == [
        "GET /identifiers?url=https%3A%2F%2Fgithub.com%2Fmona%2FLinkedList.git"
    ]


async def test_userinfo_reaches_no_error_and_no_log(
    server: RegistryServer, upstream: RegistryUpstream
) -> None:
    server.faults.add(Fault.SERVER_ERROR)

    with capture_logs() as logs, pytest.raises(UpstreamUnavailable) as caught:
        await upstream.identities_for(f"https://ci:{PASSWORD}@github.com/mona/LinkedList.git")

    assert logs
    for text in (str(logs), caught.value.detail, str(caught.value.url)):
        assert PASSWORD not in text
        assert "ci%3A" not in text
    assert PASSWORD not in str(server.requests)


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "/srv/git/LinkedList.git",
        "not a url at all",
        "javascript:alert(1)",
        "ftp://github.com/mona/LinkedList.git",
        "https://github.com",
    ],
)
async def test_anything_but_a_repository_url_is_answered_without_asking(
    server: RegistryServer, upstream: RegistryUpstream, url: str
) -> None:
    server.identifiers[url] = ["mona.LinkedList"]

    assert await upstream.identities_for(url) == []

    assert server.connections == 0
    assert server.requests == []


async def test_the_ssh_login_name_stays_and_its_password_goes(
    server: RegistryServer, upstream: RegistryUpstream
) -> None:
    server.identifiers["ssh://git@github.com/mona/LinkedList.git"] = ["mona.LinkedList"]

    found = await upstream.identities_for(f"ssh://git:{PASSWORD}@github.com/mona/LinkedList.git")

    assert found == [PACKAGE]
    assert PASSWORD not in str(server.requests)
