"""Settings: embedded default, file, environment and flags, validated with named keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.cli import main
from proxy.config import ConfigError, load_settings


def test_embedded_default_runs_without_a_file() -> None:
    settings = load_settings()
    assert settings.server.port == 8080
    assert [u.url_template for u in settings.upstreams] == ["https://github.com/{scope}/{name}.git"]


def test_file_then_environment_then_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "spm-proxy.toml"
    config.write_text(
        '[server]\nport = 9000\nhost = "0.0.0.0"\n'
        '[[upstreams]]\nname = "corp"\nurl_template = "https://git.corp/{scope}/{name}.git"\n'
        '[upstreams.packages]\n"acme.Foo" = "https://git.corp/x/foo.git"\n'
    )
    monkeypatch.setenv("SPM_PROXY_SERVER__PORT", "9100")
    monkeypatch.setenv("SPM_PROXY_CACHE__LIST_TTL_SECONDS", "5")
    settings = load_settings(config, {"server": {"data_dir": tmp_path / "data"}})
    assert settings.server.port == 9100  # environment beats the file
    assert settings.server.host == "0.0.0.0"  # file beats the default  # noqa: S104
    assert settings.server.data_dir == tmp_path / "data"  # flags beat everything
    assert settings.cache.list_ttl_seconds == 5
    assert [u.name for u in settings.upstreams] == ["corp"]  # the file's list replaces the default
    assert settings.upstreams[0].packages == {"acme.Foo": "https://git.corp/x/foo.git"}


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[server]\nport = 70000\n", "server.port"),
        ("[server]\nprot = 1\n", "server.prot"),
        ("[cache]\nlist_ttl_seconds = -1\n", "cache.list_ttl_seconds"),
        ("[log]\nlevel = 'loud'\n", "log.level"),
        (
            '[[upstreams]]\nname = "x"\nurl_template = "https://h/{name}"\n',
            "upstreams.0.url_template",
        ),
        (
            '[[upstreams]]\nname = "x"\nurl_template = "https://h/{scope}/{name}"\n'
            '[upstreams.packages]\n"no-dot" = "https://h/a"\n',
            "upstreams.0.packages",
        ),
        ("[server]\npublic_url = 'proxy.corp'\n", "server.public_url"),
    ],
)
def test_invalid_values_name_the_key(tmp_path: Path, text: str, named: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=rf"\b{named}\b"):
        load_settings(config)


def test_environment_errors_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPM_PROXY_SERVER__PORT", "eighty")
    with pytest.raises(ConfigError, match=r"server\.port: .*\(from SPM_PROXY_SERVER__PORT\)"):
        load_settings()


def test_broken_toml_is_reported(tmp_path: Path) -> None:
    config = tmp_path / "broken.toml"
    config.write_text("[server\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(config)


def test_cli_reports_bad_configuration_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[server]\nport = 'x'\n")
    assert main(["serve", "--config", str(config)]) == 2
    assert "server.port" in capsys.readouterr().err


def test_cli_prints_the_embedded_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["default-config"]) == 0
    assert "[[upstreams]]" in capsys.readouterr().out
