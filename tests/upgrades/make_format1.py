"""Build `tests/upgrades/format1/`: a data directory made by spm-proxy before the core reshape.

    .venv/bin/python -m tests.upgrades.make_format1 [OUTPUT_DIR]

Takes commit 5edd0e8 (the last one before the core reshape, data format 1)
out of this repository's history with `git archive`, runs that spm-proxy as
a server (this virtualenv's Python, the old code first on PYTHONPATH) over
git repositories on loopback, and asks it for what clients ask: lists,
metadata, manifests (an alternate included), archives, `/identifiers` for a
repository whose name holds a dot, and a package and a version that do not
exist. It writes:

- `format1/data.tar.gz`: the data directory, as the old server left it when
  it stopped (its sqlite files checkpointed, nothing else touched);
- `format1/served.json`: what the old server answered, to compare today's
  answers with (every archive and manifest by SHA-256, each release's
  metadata, each list, each `/identifiers` answer).

The repository keeps the generated fixture rather than running this script
in every test run: it needs the full git history (CI clones may be shallow),
takes a server start and a dozen fetches, and above all it pins the bytes
old installations really hold, which must not drift when this script or its
libraries change. Rerun it only to regenerate the fixture on purpose.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.support.git_http import GitHttpServer
from tests.support.git_repos import GitRepo
from tests.support.serving import free_port, get, listening
from tests.support.swift_packages import GREETER_MANIFEST, publish_linked_list, publish_node

OLD_COMMIT = "5edd0e8"
HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "format1"
UPSTREAM = "loopback-git"
# The upstream's "not found" memories stay live in the fixture (as with any
# negative TTL longer than the time between backup and upgrade).
NEGATIVE_TTL = 10 * 365 * 24 * 3600
JSON = {"Accept": "application/vnd.swift.registry.v1+json"}
SWIFT = {"Accept": "application/vnd.swift.registry.v1+swift"}
ZIP = {"Accept": "application/vnd.swift.registry.v1+zip"}
RELEASES = [
    ("mona", "Node", "1.0.0", ["Package.swift", "Package@swift-5.9.swift"]),
    ("mona", "LinkedList", "1.0.0", ["Package.swift"]),
    ("mona", "LinkedList", "1.1.0", ["Package.swift"]),
    ("groue", "GRDB_swift", "1.0.0", ["Package.swift"]),
]


def _git(*args: str, cwd: Path) -> bytes:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True).stdout


def _old_tree(into: Path) -> None:
    repository = Path(_git("rev-parse", "--show-toplevel", cwd=HERE).decode().strip())
    try:
        _git("cat-file", "-e", f"{OLD_COMMIT}^{{commit}}", cwd=repository)
    except subprocess.CalledProcessError:
        sys.exit(f"commit {OLD_COMMIT} is not in this clone's history (git fetch --unshallow)")
    into.mkdir()
    archive = _git("archive", "--format=tar", OLD_COMMIT, cwd=repository)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)


def _repositories(root: Path) -> None:
    publish_node(root)
    publish_linked_list(root)
    grdb = GitRepo.init(root / "groue" / "GRDB.swift")
    grdb.write("Package.swift", GREETER_MANIFEST.replace("Greeter", "GRDB"))
    grdb.write("Sources/GRDB/GRDB.swift", 'public let grdb = "1.0.0"\n')
    grdb.commit("GRDB 1.0.0", when=1_700_000_600)
    grdb.tag("v1.0.0")


def _config(path: Path, data_dir: Path, git_url: str) -> None:
    path.write_text(
        f'[server]\ndata_dir = "{data_dir}"\n'
        f"[cache]\nnegative_ttl_seconds = {NEGATIVE_TTL}\n"
        f'[[upstreams]]\nname = "{UPSTREAM}"\ntype = "git"\n'
        f'url_template = "{git_url}/{{scope}}/{{name}}.git"\n'
    )


def _environment(old: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("SPM_PROXY")}
    env["PYTHONPATH"] = str(old)
    found = subprocess.run(
        [sys.executable, "-c", "import proxy, cache; print(proxy.__file__, cache.__file__)"],
        env=env,
        cwd=old,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    if not all(Path(path).is_relative_to(old) for path in found):
        sys.exit(f"the old code did not come first on the path: {found}")
    return env


def _ask(base: str, path: str, headers: dict[str, str], expect: int = 200) -> bytes:
    status, _, body = get(f"{base}{path}", headers)
    if status != expect:
        sys.exit(f"GET {path}: {status}, expected {expect}: {body[:200]!r}")
    return body


def _drive(base: str, git_url: str) -> dict[str, Any]:
    """Ask the old server what clients ask; what it answered."""
    served: dict[str, Any] = {"lists": {}, "releases": [], "identifiers": {}}
    repository = "groue/GRDB.swift.git"
    answer = json.loads(_ask(base, f"/identifiers?url={git_url}/{repository}", JSON))
    served["identifiers"][repository] = answer["identifiers"]
    for scope, name, version, manifests in RELEASES:
        package = f"/{scope}/{name}"
        listed = json.loads(_ask(base, package, JSON))
        served["lists"][f"{scope}.{name}"] = list(listed["releases"])
        metadata = json.loads(_ask(base, f"{package}/{version}", JSON))
        sums = {}
        for filename in manifests:
            query = ""
            if filename != "Package.swift":
                query = "?swift-version=" + filename.removeprefix("Package@swift-")[:-6] + ".0"
            body = _ask(base, f"{package}/{version}/Package.swift{query}", SWIFT)
            sums[filename] = hashlib.sha256(body).hexdigest()
        archive = _ask(base, f"{package}/{version}.zip", ZIP)
        served["releases"].append(
            {
                "identity": f"{scope}.{name}",
                "version": version,
                "archive": hashlib.sha256(archive).hexdigest(),
                "manifests": sums,
                "resources": metadata["resources"],
                "metadata": metadata["metadata"],
                "publishedAt": metadata.get("publishedAt"),
            }
        )
    _ask(base, "/acme/Missing", JSON, expect=404)
    _ask(base, "/mona/LinkedList/9.9.9", JSON, expect=404)
    return served


def _serve(old: Path, config: Path, base_port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "proxy", "serve", "--config", str(config), "--port", str(base_port)],
        cwd=old,
        env=_environment(old),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while not listening(base_port):
        if process.poll() is not None or time.monotonic() > deadline:
            sys.exit("the old spm-proxy did not start")
        time.sleep(0.1)
    return process


def _checkpoint(data_dir: Path) -> None:
    """Fold sqlite's write-ahead logs into the databases, as a clean shutdown does."""
    for database in (data_dir / "index" / "cache.db", data_dir / "ledger.sqlite3"):
        with contextlib.closing(sqlite3.connect(database)) as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        for suffix in ("-wal", "-shm"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)


def _pack(data_dir: Path, archive: Path) -> None:
    def normalised(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info

    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(data_dir.rglob("*")):
            name = str(path.relative_to(data_dir))
            tar.add(path, arcname=name, recursive=False, filter=normalised)


def main() -> None:
    output = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else OUTPUT
    with tempfile.TemporaryDirectory(prefix="spm-proxy-format1-") as scratch:
        work = Path(scratch)
        old = work / "old"
        _old_tree(old)
        _repositories(work / "git-root")
        with GitHttpServer(work / "git-root") as git:
            data_dir = work / "data"
            config = work / "spm-proxy.toml"
            _config(config, data_dir, git.url)
            port = free_port()
            server = _serve(old, config, port)
            try:
                served = _drive(f"http://127.0.0.1:{port}", git.url)
            finally:
                server.terminate()
                server.wait(timeout=30)
        _checkpoint(data_dir)
        shutil.rmtree(output, ignore_errors=True)
        output.mkdir(parents=True)
        _pack(data_dir, output / "data.tar.gz")
        served["made_by"] = f"spm-proxy at {OLD_COMMIT}, tests/upgrades/make_format1.py"
        (output / "served.json").write_text(json.dumps(served, indent=2, sort_keys=True) + "\n")
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
