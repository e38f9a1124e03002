"""Learned repository names: never a secret on disk, never lost between processes."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from proxy.app import create_app
from tests.support.git_http import GitHttpServer
from tests.support.git_repos import GitRepo
from tests.support.http import JSON_ACCEPT, ZIP_ACCEPT, ClientFactory
from tests.support.proxy import git_upstream, proxy_settings
from tests.support.storage import embedded_index
from tests.support.swift_packages import publish_linked_list
from tests.upstreams.conftest import MakeUpstream
from upstreams.model import PackageId

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SECRET = "s3cret-token-in-the-template"


def _everything_under(directory: Path) -> bytes:
    return b"".join(path.read_bytes() for path in directory.rglob("*") if path.is_file())


async def test_credentials_in_a_url_template_are_never_stored(
    tmp_path: Path, git_server: GitHttpServer, aiohttp_client: ClientFactory
) -> None:
    repo = GitRepo.init(git_server.root / "groue" / "GRDB.swift")
    repo.write("Package.swift", "// swift-tools-version:5.9\n")
    repo.commit("one", when=1_700_000_000)
    repo.tag("1.0.0")
    base = git_server.url.replace("http://", f"http://ci:{SECRET}@")
    settings = proxy_settings(
        tmp_path / "data",
        upstreams=[git_upstream("", url_template=f"{base}/{{scope}}/{{name}}.git")],
    )
    client = await aiohttp_client(create_app(settings))

    # Learned through /identifiers (`GRDB.swift` answers for groue.GRDB_swift) and a fill.
    url = f"{git_server.url}/groue/GRDB.swift.git"
    found = await client.get(f"/identifiers?url={url}", headers=JSON_ACCEPT)
    assert (await found.json())["identifiers"] == ["groue.GRDB_swift"]
    archive = await client.get("/groue/GRDB_swift/1.0.0.zip", headers=ZIP_ACCEPT)
    assert archive.status == 200
    await client.close()

    assert SECRET.encode() not in _everything_under(tmp_path / "data")


_LEARNER = """
import asyncio, sys
from pathlib import Path
from tests.support.storage import embedded_index
from upstreams.git import GitUpstream

async def main(template, root, scope, count):
    with embedded_index(Path(root) / "index") as names:
        upstream = GitUpstream(
            name="git", url_template=template, mirror_root=Path(root) / scope,
            overrides={}, timeout=5, names=names,
        )
        for n in range(count):
            found = await upstream.identities_for(template.replace("{scope}", scope)
                                                  .replace("{name}", f"Repo.{n}"))
            assert found, n

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
"""


async def test_two_processes_learning_at_once_lose_nothing(
    tmp_path: Path, git_server: GitHttpServer
) -> None:
    for scope in ("alpha", "beta"):
        for n in range(12):
            repo = GitRepo.init(git_server.root / scope / f"Repo.{n}")
            repo.write("Package.swift", "// swift-tools-version:5.9\n")
            repo.commit("one", when=1_700_000_000)
    template = f"{git_server.url}/{{scope}}/{{name}}.git"
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _LEARNER,
            template,
            str(tmp_path),
            scope,
            "12",
            cwd=PROJECT_ROOT,
            env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for scope in ("alpha", "beta")
    ]
    for process in processes:
        _, stderr = await process.communicate()
        assert process.returncode == 0, stderr.decode()

    with embedded_index(tmp_path / "index") as names:
        learned = {
            (scope, n): await names.repository("git", PackageId(scope, f"Repo_{n}"))
            for scope in ("alpha", "beta")
            for n in range(12)
        }
    assert learned == {(s, n): f"{s}/Repo.{n}" for s in ("alpha", "beta") for n in range(12)}


async def test_the_mapping_file_of_earlier_versions_is_adopted_and_removed(
    tmp_path: Path, git_server: GitHttpServer, make_upstream: MakeUpstream
) -> None:
    publish_linked_list(git_server.root)
    repo = GitRepo.init(git_server.root / "groue" / "GRDB.swift")
    repo.write("Package.swift", "// swift-tools-version:5.9\n")
    repo.commit("one", when=1_700_000_000)
    repo.tag("1.0.0")
    legacy = tmp_path / "mirrors" / "identities.json"
    legacy.parent.mkdir(parents=True)
    secret_url = git_server.url.replace("http://", f"http://ci:{SECRET}@")
    legacy.write_text(
        json.dumps({"groue.grdb_swift": f"{secret_url}/groue/GRDB.swift.git"}), encoding="utf-8"
    )
    upstream = make_upstream()

    listing = await upstream.list_releases(PackageId("groue", "GRDB_swift"))

    assert [str(v) for v in listing.versions] == ["1.0.0"]
    assert not legacy.exists()
    with embedded_index(tmp_path / "index") as names:
        kept = await names.repository("git", PackageId("groue", "GRDB_swift"))
    assert kept == "groue/GRDB.swift"
    assert SECRET.encode() not in _everything_under(tmp_path)
