"""Upstream credentials resolved from the environment, files and netrc at start-up."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from proxy.cli import main
from proxy.config import AuthSettings, ConfigError, GitUpstreamSettings
from proxy.wiring import resolve_credentials, upstream_host


def _auth(**values: object) -> AuthSettings:
    return AuthSettings.model_validate(values)


def test_basic_from_environment() -> None:
    auth = _auth(type="basic", username="ci", password_env="PW")
    found = resolve_credentials(auth, "h", "upstreams.0.auth", {"PW": "pa55"})
    assert found is not None
    assert found.authorization() == "Basic Y2k6cGE1NQ=="  # base64("ci:pa55")
    assert "pa55" not in repr(found)
    assert "pa55" not in str(found)


def test_bearer_from_file(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("t0ken\n")
    found = resolve_credentials(_auth(type="bearer", token_file=token), "h", "k", {})
    assert found is not None
    assert found.authorization() == "Bearer t0ken"


def test_netrc_by_host(tmp_path: Path) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine other login a password b\nmachine reg.corp login ci password n3trc\n")
    netrc.chmod(0o600)
    found = resolve_credentials(
        _auth(type="netrc", netrc_file=netrc), "reg.corp", "upstreams.1.auth", {}
    )
    assert found is not None
    assert (found.kind, found.username, found.secret) == ("basic", "ci", "n3trc")
    with pytest.raises(ConfigError, match=r"upstreams\.1\.auth: .* has no entry for elsewhere"):
        resolve_credentials(
            _auth(type="netrc", netrc_file=netrc), "elsewhere", "upstreams.1.auth", {}
        )


@pytest.mark.parametrize(
    ("auth", "message"),
    [
        (
            {"type": "bearer", "token_env": "MISSING"},
            r"upstreams\.0\.auth\.token: .*MISSING is not set",
        ),
        (
            {"type": "bearer", "token_file": "/nonexistent/t"},
            r"upstreams\.0\.auth\.token: cannot read",
        ),
        ({"type": "netrc", "netrc_file": "/nonexistent/netrc"}, r"upstreams\.0\.auth\.netrc_file"),
    ],
)
def test_unresolvable_secrets_name_the_key(auth: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve_credentials(_auth(**auth), "h", "upstreams.0.auth", {})


def test_serve_refuses_to_start_without_its_secret(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NOT_EXPORTED_TOKEN", raising=False)
    config = tmp_path / "spm-proxy.toml"
    config.write_text(
        '[[upstreams]]\nname = "r"\ntype = "registry"\nurl = "https://reg.corp"\n'
        '[upstreams.auth]\ntype = "bearer"\ntoken_env = "NOT_EXPORTED_TOKEN"\n'
    )
    assert main(["serve", "--config", str(config)]) == 2
    # Not on a terminal, the server's refusal is a log record like any other.
    [line] = capfd.readouterr().err.splitlines()
    refusal = json.loads(line)
    assert refusal["event"] == "startup_refused"
    assert refusal["error"] == (
        "upstreams.0.auth.token: environment variable NOT_EXPORTED_TOKEN is not set"
    )


def test_a_mirrored_git_upstream_looks_up_netrc_for_its_mirror_host() -> None:
    # Credentials go where the upstream fetches from, never to the public host.
    settings = GitUpstreamSettings.model_validate(
        {
            "name": "github",
            "type": "git",
            "url_template": "https://github.com/{scope}/{name}",
            "fetch_url_template": "https://git.corp.example/github/{scope}/{name}.git",
        }
    )
    assert upstream_host(settings) == "git.corp.example"
