"""Storage that stops taking writes: cached answers keep coming, writes fail clearly.

The server runs in its own mount namespace with its blob directory on a bind
mount that is switched to read-only while it serves, as a file system that
goes read-only under a running service does.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.git_http import GitHttpServer
from tests.support.serving import SPM_PROXY, clean_environment, free_port, get, listening
from tests.support.swift_packages import publish_linked_list, publish_node

ZIP = {"Accept": "application/vnd.swift.registry.v1+zip"}
JSON = {"Accept": "application/vnd.swift.registry.v1+json"}


def _can_make_mount_namespaces() -> bool:
    if shutil.which("unshare") is None or shutil.which("nsenter") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--mount", "true"], capture_output=True, check=False, timeout=10
    )
    return probe.returncode == 0


pytestmark = pytest.mark.skipif(
    not _can_make_mount_namespaces(), reason="needs unshare/nsenter with mount namespaces (root)"
)


def _config(tmp_path: Path, git_url: str, port: int) -> Path:
    config = tmp_path / "spm-proxy.toml"
    config.write_text(
        f'[server]\nport = {port}\ndata_dir = "{tmp_path / "data"}"\n'
        '[log]\nformat = "json"\n'
        '[[upstreams]]\nname = "loopback-git"\ntype = "git"\n'
        f'url_template = "{git_url}/{{scope}}/{{name}}.git"\n',
        encoding="utf-8",
    )
    return config


def test_cached_answers_survive_read_only_blob_storage_and_fills_fail_clearly(
    tmp_path: Path, git_server: GitHttpServer
) -> None:
    publish_linked_list(git_server.root)
    publish_node(git_server.root)
    port = free_port()
    config = _config(tmp_path, git_server.url, port)
    blobs = tmp_path / "data" / "blobs"
    blobs.mkdir(parents=True)
    script = f'mount --bind "{blobs}" "{blobs}" && exec "{SPM_PROXY}" serve --config "{config}"'
    server = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
        env=clean_environment(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while not listening(port):
            assert server.poll() is None, server.communicate()[1].decode()
            assert time.monotonic() < deadline
            time.sleep(0.1)
        base = f"http://127.0.0.1:{port}"
        status, _, cached = get(f"{base}/mona/LinkedList/1.0.0.zip", ZIP)
        assert status == 200
        assert get(f"{base}/mona/LinkedList", JSON)[0] == 200

        remount = ["mount", "-o", "remount,bind,ro", str(blobs)]
        subprocess.run(
            ["nsenter", f"--target={server.pid}", "--mount", *remount], check=True, timeout=10
        )

        status, headers, body = get(f"{base}/mona/LinkedList/1.0.0.zip", ZIP)
        assert (status, body) == (200, cached)  # a hit is still a hit
        status, headers, body = get(f"{base}/mona/Node/1.0.0.zip", ZIP)
        if status != 503:
            server.terminate()
            pytest.fail(server.communicate(timeout=30)[1].decode()[-3000:])
        assert headers["Content-Type"] == "application/problem+json"
        assert headers["Content-Version"] == "1"
        detail = json.loads(body)["detail"]
        assert "storage" in detail
        assert "Read-only file system" in detail
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=30)
    records = [json.loads(line) for line in stderr.decode().splitlines() if line.startswith("{")]
    failures = [r for r in records if r.get("event") == "problem_served"]
    assert [(r["status"], r["level"]) for r in failures] == [(503, "error")]
    assert "Read-only file system" in failures[0]["detail"]
    assert not [r for r in records if r.get("event") == "request_failed"]
