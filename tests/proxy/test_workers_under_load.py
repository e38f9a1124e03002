"""`serve --workers N` under bursts of fresh connections for uncached releases.

The kernel spreads new connections over the workers (SO_REUSEPORT), so every
worker, each with its own coalescer, sees requests for every release at once.
What the processes share is the data directory: one fill per release across
them (the lease), one writer per git mirror (its lock), and the blobs.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from tests.support.git_http import GitHttpServer
from tests.support.git_repos import GitRepo
from tests.support.http import JSON_ACCEPT, SWIFT_ACCEPT, ZIP_ACCEPT
from tests.support.serving import Served, children, clean_environment, free_port

REPOSITORIES = 6
TAGS_PER_REPOSITORY = 6
CONNECTIONS_PER_RELEASE = 24


@dataclass(frozen=True)
class Release:
    scope: str
    name: str
    version: str
    tag_object: str  # what a fetch of this release wants

    def requests(self) -> list[tuple[str, dict[str, str]]]:
        """The three resources a client fetches, each one of them starts the fill."""
        base = f"/{self.scope}/{self.name}/{self.version}"
        return [
            (base, JSON_ACCEPT),
            (f"{base}/Package.swift", SWIFT_ACCEPT),
            (f"{base}.zip", ZIP_ACCEPT),
        ]


def publish(root: Path) -> list[Release]:
    """Six repositories with six releases each: a lightweight and an annotated
    tag in turn, each on a commit of its own."""
    releases = []
    for number in range(REPOSITORIES):
        name = f"Load{number}"
        repo = GitRepo.init(root / "load" / name)
        repo.write(
            "Package.swift",
            "// swift-tools-version:5.7\nimport PackageDescription\n\n"
            f'let package = Package(name: "{name}", targets: [.target(name: "{name}")])\n',
        )
        for minor in range(TAGS_PER_REPOSITORY):
            version = f"1.{minor}.0"
            repo.write(f"Sources/{name}/{name}.swift", f'public let version = "{version}"\n' * 50)
            repo.write(
                f"Resources/data-{minor}.bin", hashlib.sha256(version.encode()).digest() * 512
            )
            when = 1_700_000_000 + number * 1000 + minor * 10
            repo.commit(f"{name} {version}", when=when)
            repo.tag(version, annotated=minor % 2 == 1, when=when + 1)
            releases.append(Release("load", name, version, repo.rev_parse(f"refs/tags/{version}")))
    return releases


def mapped_files(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


def write_config(path: Path, git_url: str) -> Path:
    path.write_text(
        "[[upstreams]]\n"
        'name = "loopback-git"\n'
        'type = "git"\n'
        f'url_template = "{git_url}/{{scope}}/{{name}}.git"\n'
    )
    return path


async def burst(
    port: int, releases: list[Release]
) -> dict[str, list[tuple[int, dict[str, str], bytes]]]:
    """24 concurrent fresh connections per release, every release at once."""
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(
            path: str, headers: dict[str, str]
        ) -> tuple[str, tuple[int, dict[str, str], bytes]]:
            async with session.get(f"http://127.0.0.1:{port}{path}", headers=headers) as response:
                return path, (response.status, dict(response.headers), await response.read())

        calls = [
            one(*release.requests()[number % 3])
            for release in releases
            for number in range(CONNECTIONS_PER_RELEASE)
        ]
        answers: dict[str, list[tuple[int, dict[str, str], bytes]]] = {}
        for path, answer in await asyncio.gather(*calls):
            answers.setdefault(path, []).append(answer)
        return answers


@pytest.mark.parametrize("workers", [2, 4])
async def test_bursts_over_workers_fetch_each_release_once_and_answer_the_same_bytes(
    tmp_path: Path, git_server: GitHttpServer, workers: int
) -> None:
    releases = publish(git_server.root)
    port = free_port()
    config = write_config(tmp_path / "proxy.toml", git_server.url)
    args = ["--config", str(config), "--workers", str(workers), "--port", str(port)]
    args += ["--data-dir", str(tmp_path / "data"), "--log-format", "json"]
    with Served(args, cwd=tmp_path, env=clean_environment()) as served:
        served.wait_for("server_started")
        answers = await burst(port, releases)
        builders = [child for worker in children(served.process.pid) for child in children(worker)]
        # The workers' build processes start without importing the server
        # (whose HTTP parser, a C extension, would be mapped in).
        assert builders
        assert not [pid for pid in builders if "aiohttp" in mapped_files(pid)]
        assert served.stop() == 0, served.output()

    failed = {
        path: sorted({status for status, _, _ in got if status != 200})
        for path, got in answers.items()
    }
    assert not {path: statuses for path, statuses in failed.items() if statuses}, served.output()
    for path, got in answers.items():
        assert len({body for _, _, body in got}) == 1, f"{path}: different bytes"
    # Exactly one fetch and one build per release, whichever worker made them.
    assert git_server.pack_requests == len(releases)
    assert Counter(git_server.wanted) == Counter(release.tag_object for release in releases)
    builds = Counter((event["package"], event["tag"]) for event in served.named("release_archived"))
    assert builds == Counter((f"{r.scope}.{r.name}", r.version) for r in releases)
    # ...and the archive is what its metadata and headers say it is.
    for release in releases:
        (metadata, _), _, (archive, _) = release.requests()
        _, _, document = answers[metadata][0]
        _, headers, body = answers[archive][0]
        checksum = hashlib.sha256(body).hexdigest()
        [resource] = json.loads(document)["resources"]
        assert resource["checksum"] == checksum
        assert headers["Digest"] == "sha-256=" + base64.b64encode(bytes.fromhex(checksum)).decode()
    served.events()  # every line JSON
