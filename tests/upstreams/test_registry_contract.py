"""RegistryUpstream passes the shared Upstream contract against a loopback registry."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cache.embedded import FileDocuments
from tests.contracts.upstream import ContractSubject, Files, UpstreamContract
from tests.support.registry_server import RegistryServer
from upstreams.credentials import Credentials
from upstreams.model import PackageId
from upstreams.registry import RegistryUpstream

TOKEN = "contract-token"


@pytest.fixture
async def upstream_fixture(tmp_path: Path) -> AsyncIterator[ContractSubject]:
    async with RegistryServer(token=TOKEN) as server:
        upstream = RegistryUpstream(
            name="registry",
            base_url=server.url,
            credentials=Credentials("bearer", TOKEN),
            connect_timeout=2.0,
            read_timeout=2.0,
            documents=FileDocuments(tmp_path / "http-cache"),
        )

        def repository_url(package: PackageId) -> str:
            # The registry knows the package by this URL (as from its
            # `repositoryURLs` at publish time), published or not.
            url = f"https://github.com/{package.scope}/{package.name}.git"
            server.identifiers[url] = [str(package)]
            return url

        def publish(package: PackageId, version: str, files: Files) -> None:
            server.publish(str(package), version, dict(files))

        try:
            yield ContractSubject(upstream, publish, repository_url)
        finally:
            await upstream.close()


class TestRegistryUpstreamContract(UpstreamContract):
    pass
