"""A data directory that cannot be created or written stops every command at start-up
with a message naming the key, the path and the reason, and exit status 2."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.support.serving import SPM_PROXY, clean_environment, free_port

COMMANDS = {
    "serve": ["serve", "--port", "0"],
    "warm": ["warm", "--package", "mona.LinkedList"],
    "export": ["export", "-o", "bundle.spmbundle"],
    "import": ["import", "bundle.spmbundle"],
    "verify": ["verify"],
    "gc": ["gc"],
}


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        cwd=cwd,
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _refusal(result: subprocess.CompletedProcess[str], command: str) -> str:
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    if command != "serve":
        assert result.stderr.startswith("spm-proxy: ")
        return result.stderr
    # Not on a terminal the server logs JSON lines, the refusal included.
    [line] = result.stderr.splitlines()
    record = json.loads(line)
    assert (record["event"], record["level"]) == ("startup_refused", "error")
    message: str = record["error"]
    return message


@pytest.mark.parametrize("command", COMMANDS, ids=list(COMMANDS))
def test_a_data_dir_under_a_regular_file_is_refused(tmp_path: Path, command: str) -> None:
    (tmp_path / "file").write_text("not a directory\n")
    data = tmp_path / "file" / "data"
    result = _run([SPM_PROXY, *COMMANDS[command], "--data-dir", str(data)], tmp_path)
    message = _refusal(result, command)
    assert f"server.data_dir: cannot create or write {data}: Not a directory" in message


def test_serve_on_a_terminal_format_refuses_in_plain_words(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    data = tmp_path / "file" / "data"
    args = ["serve", "--port", str(free_port()), "--log-format", "console", "--data-dir", str(data)]
    result = _run([SPM_PROXY, *args], tmp_path)
    assert result.returncode == 2
    assert result.stderr == (
        f"spm-proxy: server.data_dir: cannot create or write {data}: Not a directory\n"
    )


@pytest.mark.parametrize("command", ["serve", "warm", "gc"])
@pytest.mark.parametrize("exists", [True, False], ids=["existing", "to-create"])
def test_a_data_dir_on_a_read_only_mount_is_refused(
    tmp_path: Path, command: str, exists: bool
) -> None:
    # Root ignores permission bits, so the test uses what a read-only volume
    # really is: a read-only bind mount, in a mount namespace of its own.
    mount = tmp_path / "volume"
    data = mount / "data"
    (data if exists else mount).mkdir(parents=True)
    spm_proxy = shlex.join([SPM_PROXY, *COMMANDS[command], "--data-dir", str(data)])
    volume = shlex.quote(str(mount))
    script = f"mount --bind -o ro {volume} {volume} && {spm_proxy}"
    result = _run(["unshare", "--mount", "sh", "-c", script], tmp_path)
    message = _refusal(result, command)
    assert f"server.data_dir: cannot create or write {data}: Read-only file system" in message
