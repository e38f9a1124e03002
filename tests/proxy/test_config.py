"""Settings: embedded default, file, environment and flags, validated with named keys."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from proxy.cli import main, parse_args, settings_from_args
from proxy.config import (
    ConfigError,
    GitUpstreamSettings,
    RegistryUpstreamSettings,
    Settings,
    load_settings,
)


def test_embedded_default_runs_without_a_file() -> None:
    settings = load_settings()
    assert settings.server.port == 8080
    [github] = settings.upstreams
    assert isinstance(github, GitUpstreamSettings)
    assert github.url_template == "https://github.com/{scope}/{name}.git"


def test_file_then_environment_then_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "spm-proxy.toml"
    config.write_text(
        '[server]\nport = 9000\nhost = "0.0.0.0"\n'
        '[[upstreams]]\nname = "corp"\ntype = "git"\n'
        'url_template = "https://git.corp/{scope}/{name}.git"\n'
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
    corp = settings.upstreams[0]
    assert isinstance(corp, GitUpstreamSettings)
    assert corp.package_locations() == {"acme.Foo": ("https://git.corp/x/foo.git", None)}


# key, flag, then the value from each layer: embedded default, file, environment, flag.
PRECEDENCE = [
    ("server.host", "--host", "127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"),
    ("server.port", "--port", 8080, 9000, 9100, 9200),
    ("server.data_dir", "--data-dir", "spm-proxy-data", "/srv/file", "/srv/env", "/srv/flag"),
    (
        "server.public_url",
        "--public-url",
        "",
        "https://file.example",
        "https://env.example",
        "https://flag.example",
    ),
    ("server.workers", "--workers", 1, 2, 3, 4),
    ("log.level", "--log-level", "info", "debug", "warning", "error"),
    ("log.format", "--log-format", "auto", "console", "json", "console"),
    ("offline", "--offline", False, True, False, True),
]


def _value(settings: Settings, key: str) -> object:
    found: object = settings
    for part in key.split("."):
        found = getattr(found, part)
    return str(found) if key == "server.data_dir" else found


def _toml(key: str, value: object) -> str:
    *section, name = key.split(".")
    literal = str(value).lower() if isinstance(value, bool) else repr(value)
    return (f"[{section[0]}]\n" if section else "") + f"{name} = {literal}\n"


def _flag(flag: str, value: object) -> list[str]:
    if isinstance(value, bool):
        return [flag if value else f"--no-{flag[2:]}"]
    return [flag, str(value)]


@pytest.mark.parametrize(
    ("key", "flag", "default", "in_file", "in_env", "as_flag"),
    PRECEDENCE,
    ids=[row[0] for row in PRECEDENCE],
)
def test_precedence_flag_environment_file_default(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    key: str,
    flag: str,
    default: object,
    in_file: object,
    in_env: object,
    as_flag: object,
) -> None:
    for name in [name for name in os.environ if name.startswith("SPM_PROXY_")]:
        monkeypatch.delenv(name)
    # Every key of the table is a `serve` flag; one layer more at each step.
    assert _value(settings_from_args(parse_args(["serve"])), key) == default

    config = tmp_path / "spm-proxy.toml"
    config.write_text(_toml(key, in_file))
    with_file = ["serve", "--config", str(config)]
    assert _value(settings_from_args(parse_args(with_file)), key) == in_file

    monkeypatch.setenv("SPM_PROXY_" + key.upper().replace(".", "__"), str(in_env).lower())
    assert _value(settings_from_args(parse_args(with_file)), key) == in_env

    with_flag = [*with_file, *_flag(flag, as_flag)]
    assert _value(settings_from_args(parse_args(with_flag)), key) == as_flag


def test_commands_log_only_trouble_unless_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SPM_PROXY_LOG__LEVEL", raising=False)
    assert settings_from_args(parse_args(["verify"])).log.level == "warning"
    assert settings_from_args(parse_args(["serve"])).log.level == "info"
    config = tmp_path / "spm-proxy.toml"
    config.write_text("[log]\nlevel = 'info'\n")
    assert settings_from_args(parse_args(["verify", "--config", str(config)])).log.level == "info"
    monkeypatch.setenv("SPM_PROXY_LOG__LEVEL", "debug")
    assert settings_from_args(parse_args(["verify"])).log.level == "debug"
    assert settings_from_args(parse_args(["verify", "--log-level", "error"])).log.level == "error"


def test_unreadable_environment_json_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPM_PROXY_UPSTREAMS", "not json")
    with pytest.raises(ConfigError, match="SPM_PROXY_"):
        load_settings()


def test_several_workers_need_a_fixed_port() -> None:
    with pytest.raises(ConfigError, match=r"server: .*port 0"):
        load_settings(overrides={"server": {"port": 0, "workers": 2}})


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[server]\nport = 70000\n", "server.port"),
        ("[server]\nprot = 1\n", "server.prot"),
        ("[cache]\nlist_ttl_seconds = -1\n", "cache.list_ttl_seconds"),
        ("[log]\nlevel = 'loud'\n", "log.level"),
        (
            '[[upstreams]]\nname = "x"\ntype = "git"\nurl_template = "https://h/{name}"\n',
            "upstreams.0.url_template",
        ),
        (
            '[[upstreams]]\nname = "x"\ntype = "git"\nurl_template = "https://h/{scope}/{name}"\n'
            '[upstreams.packages]\n"no-dot" = "https://h/a"\n',
            "upstreams.0.packages",
        ),
        ('[[upstreams]]\nname = "x"\nurl_template = "https://h/{scope}/{name}"\n', "upstreams.0"),
        (
            '[[upstreams]]\nname = "x"\ntype = "git"\nurl_template = "https://h/{scope}/{name}"\n'
            'fetch_url_template = "https://m/{name}.git"\n',
            "upstreams.0.fetch_url_template",
        ),
        (
            '[[upstreams]]\nname = "x"\ntype = "git"\nurl_template = "https://h/{scope}/{name}"\n'
            '[upstreams.packages]\n"acme.Foo" = { fetch_url = "https://m/foo.git" }\n',
            'upstreams.0.packages."acme.Foo".url',
        ),
        ('[[upstreams]]\nname = "x"\ntype = "svn"\n', "upstreams.0"),
        ('[[upstreams]]\nname = "r"\ntype = "registry"\nurl = "ftp://h"\n', "upstreams.0.url"),
        (
            '[[upstreams]]\nname = "r"\ntype = "registry"\nurl = "https://h"\n'
            'network = "sometimes"\n',
            "upstreams.0.network",
        ),
        (
            '[[upstreams]]\nname = "r"\ntype = "registry"\nurl = "https://h"\n'
            '[upstreams.auth]\ntype = "basic"\nusername = "ci"\n',
            "upstreams.0.auth",
        ),
        (
            '[[upstreams]]\nname = "r"\ntype = "registry"\nurl = "https://h"\n'
            'vanished = "delete"\n',
            "upstreams.0.vanished",
        ),
        (
            '[[upstreams]]\nname = "r"\ntype = "registry"\nurl = "https://h"\n'
            '[[routes]]\nscopes = ["acme"]\nupstreams = ["r"]\nvanished = "hide"\n',
            "routes.0.vanished",
        ),
        (
            '[[upstreams]]\nname = "r"\ntype = "registry"\nurl = "https://h"\n'
            '[[routes]]\nscopes = ["acme"]\nprivate = true\nvanished = "withdraw"\n',
            "routes.0",
        ),
        (
            '[[upstreams]]\nname = "r"\ntype = "registry"\nurl = "https://h"\n'
            '[[routes]]\nscopes = ["acme"]\nupstreams = ["nope"]\n',
            "routes.0.upstreams",
        ),
        (
            '[[upstreams]]\nname = "r"\ntype = "registry"\nurl = "https://h"\n'
            '[[routes]]\nscopes = ["acme"]\n',
            "routes.0",
        ),
        ("[server]\npublic_url = 'proxy.corp'\n", "server.public_url"),
        # Every answer's Link header and body would carry it.
        ('[server]\npublic_url = "https://proxy.corp\\r\\nX: 1"\n', "server.public_url"),
        ('[server]\npublic_url = "https:// proxy.corp"\n', "server.public_url"),
        ('[server]\nhost = "local host"\n', "server.host"),
        ('[server]\ndata_dir = "spm\\u0000data"\n', "server.data_dir"),
        ('[[upstreams]]\nname = "r"\ntype = "registry"\nurl = "https://[::1"\n', "upstreams.0.url"),
        ('[[upstreams]]\nname = "r"\ntype = "registry"\nurl = "https://"\n', "upstreams.0.url"),
        (
            '[[upstreams]]\nname = "x"\ntype = "git"\n'
            'url_template = "https://h/{scope}/{name}\\n.git"\n',
            "upstreams.0.url_template",
        ),
        (
            '[[upstreams]]\nname = "r"\ntype = "registry"\nurl = "https://h"\n'
            'download_hosts = ["https://cdn.example.com", "https://cdn.example.com/zips"]\n',
            "upstreams.0.download_hosts.1",
        ),
        (
            '[[upstreams]]\nname = "r"\ntype = "registry"\nurl = "https://h"\n'
            'download_hosts = ["https://*.com"]\n',
            "upstreams.0.download_hosts.0",
        ),
        (
            '[[upstreams]]\nname = "r"\ntype = "registry"\nurl = "https://h"\n'
            'download_hosts = ["http://minio.internal:9000"]\n',
            "upstreams.0.download_hosts",
        ),
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


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"\xff\xfe[\x00s\x00]\x00", "not UTF-8"),  # UTF-16, as some editors save
        (b"a = " + b"[" * 5000 + b"]" * 5000, "nests"),
    ],
)
def test_unreadable_toml_is_reported(tmp_path: Path, content: bytes, reason: str) -> None:
    config = tmp_path / "odd.toml"
    config.write_bytes(content)
    with pytest.raises(ConfigError, match=reason):
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


def test_routes_and_auth_are_read(tmp_path: Path) -> None:
    config = tmp_path / "spm-proxy.toml"
    config.write_text(
        '[[upstreams]]\nname = "artifactory"\ntype = "registry"\n'
        'url = "https://artifactory.corp/api/swift/remote/"\nnetwork = "online"\n'
        "list_ttl_seconds = 30\n"
        '[upstreams.auth]\ntype = "bearer"\ntoken_env = "ARTIFACTORY_TOKEN"\n'
        '[[upstreams]]\nname = "corp-git"\ntype = "git"\n'
        'url_template = "https://git.corp/{scope}/{name}.git"\n'
        '[[routes]]\nscopes = ["acme", "acme-*"]\nupstreams = ["corp-git"]\n'
        '[[routes]]\nscopes = ["internal"]\nprivate = true\n'
        '[[routes]]\nscopes = ["*"]\nupstreams = ["artifactory", "corp-git"]\n'
    )
    settings = load_settings(config)
    registry = settings.upstreams[0]
    assert registry.type == "registry"
    assert registry.url == "https://artifactory.corp/api/swift/remote"
    assert registry.network == "online"
    assert registry.auth is not None
    assert registry.auth.token_env == "ARTIFACTORY_TOKEN"
    assert [route.private for route in settings.routes] == [False, True, False]
    # What upstreams delete stays listed unless a policy says otherwise.
    assert [upstream.vanished for upstream in settings.upstreams] == ["keep", "keep"]
    assert [route.vanished for route in settings.routes] == [None, None, None]


def test_download_hosts_are_read_as_origins(tmp_path: Path) -> None:
    config = tmp_path / "spm-proxy.toml"
    config.write_text(
        '[[upstreams]]\nname = "artifactory"\ntype = "registry"\n'
        'url = "https://artifactory.corp/api/swift/remote"\n'
        'download_hosts = ["https://Objects.Corp:8443/", "*.cloudfront.net"]\n'
        '[[upstreams]]\nname = "plain"\ntype = "registry"\nurl = "http://registry.lan"\n'
        'download_hosts = ["http://minio.lan:9000"]\n'
    )
    artifactory, plain = load_settings(config).upstreams
    assert isinstance(artifactory, RegistryUpstreamSettings)
    assert artifactory.download_hosts == ["https://objects.corp:8443", "https://*.cloudfront.net"]
    assert isinstance(plain, RegistryUpstreamSettings)
    assert plain.download_hosts == ["http://minio.lan:9000"]


def test_git_mirrors_public_templates_and_package_tables(tmp_path: Path) -> None:
    config = tmp_path / "spm-proxy.toml"
    config.write_text(
        '[[upstreams]]\nname = "github"\ntype = "git"\n'
        'url_template = "https://github.com/{scope}/{name}"\n'
        'fetch_url_template = "https://git.corp/github/{scope}/{name}.git"\n'
        "[upstreams.packages]\n"
        '"apple.Numerics" = "https://github.com/apple/swift-numerics.git"\n'
        '"acme.Legacy" = { url = "https://git.corp/old/legacy.git" }\n'
        '"acme.Odd" = { url = "https://github.com/a/b/c", fetch_url = "https://git.corp/c.git" }\n'
    )
    [github] = load_settings(config).upstreams
    assert isinstance(github, GitUpstreamSettings)
    assert github.fetch_url_template == "https://git.corp/github/{scope}/{name}.git"
    assert github.package_locations() == {
        "apple.Numerics": ("https://github.com/apple/swift-numerics.git", None),
        "acme.Legacy": ("https://git.corp/old/legacy.git", None),
        "acme.Odd": ("https://github.com/a/b/c", "https://git.corp/c.git"),
    }


def test_a_mirrored_upstream_never_fetches_from_its_public_host(tmp_path: Path) -> None:
    config = tmp_path / "spm-proxy.toml"
    config.write_text(
        '[[upstreams]]\nname = "github"\ntype = "git"\n'
        'url_template = "https://github.com/{scope}/{name}"\n'
        'fetch_url_template = "https://git.corp/github/{scope}/{name}.git"\n'
        '[upstreams.packages]\n"acme.Odd" = "https://github.com/a/b/c.git"\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert 'upstreams.0.packages: Value error, "acme.Odd": https://github.com/a/b/c.git' in str(
        caught.value
    )
    assert "give it a fetch_url" in str(caught.value)


def test_the_readme_mirror_example_is_valid(tmp_path: Path) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("### Public identities, private mirrors", 1)[1]
    example = section.split("```toml\n", 1)[1].split("```", 1)[0]
    config = tmp_path / "spm-proxy.toml"
    config.write_text(example)

    github, gitlab, corp = load_settings(config).upstreams

    assert isinstance(github, GitUpstreamSettings)
    assert isinstance(gitlab, GitUpstreamSettings)
    assert isinstance(corp, GitUpstreamSettings)
    assert github.fetch_url_template == "https://git.corp.example/github/{scope}/{name}.git"
    assert github.package_locations()["vapor.Vapor"] == (
        "https://github.com/vapor/vapor.git",
        "https://git.corp.example/vendored/vapor.git",
    )
    assert corp.fetch_url_template is None
