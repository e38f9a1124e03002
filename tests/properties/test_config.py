"""Configuration: any file, any value of any key, any environment variable.

Whatever the TOML file, the `SPM_PROXY_*` environment or the flags hold, the
settings either load or `ConfigError` names the bad key (the CLI prints it and
exits 2); settings that load pass the start-up checks or fail them with a
`ConfigError`, and then open every upstream and store without raising. No value
ever surfaces as a traceback, at start-up or at the first request.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st
from yarl import URL

from proxy.config import ConfigError, Settings, check_data_dir, load_settings
from proxy.wiring import check_credentials, open_registry
from tests.properties.strategies import hostile, hostile_bytes

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    hostile(st.sampled_from(["https://registry.example", "git", "5GiB", "online", "json"])),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=10), children, max_size=3)
    ),
    max_leaves=6,
)
GIT = {"name": "git", "type": "git", "url_template": "https://github.com/{scope}/{name}.git"}
REGISTRY = {"name": "registry", "type": "registry", "url": "https://registry.example/prefix"}
ROUTE = {"scopes": ["mona"], "upstreams": ["git"]}
# (section, key) of every setting; "upstreams" and "routes" hold one entry.
KEYS = [
    *[("server", key) for key in ("host", "port", "public_url", "workers")],
    *[
        ("cache", key)
        for key in (
            "list_ttl_seconds",
            "negative_ttl_seconds",
            "fill_timeout_seconds",
            "client_wait_seconds",
            "max_concurrent_fills",
            "max_concurrent_list_refreshes",
            "max_disk_size",
        )
    ],
    ("log", "level"),
    ("log", "format"),
    *[
        ("git", key)
        for key in (
            "name",
            "type",
            "url_template",
            "packages",
            "network",
            "auth",
            "read_timeout_seconds",
        )
    ],
    *[("registry", key) for key in ("url", "download_hosts", "auth", "failure_threshold")],
    *[("routes", key) for key in ("scopes", "packages", "upstreams", "private")],
]


def _layered(section: str, key: str, value: Any, data_dir: Path) -> dict[str, Any]:
    git, registry, route = dict(GIT), dict(REGISTRY), dict(ROUTE)
    layers: dict[str, Any] = {"server": {"data_dir": data_dir}}
    if section == "git":
        git[key] = value
    elif section == "registry":
        registry[key] = value
    elif section == "routes":
        route[key] = value
    else:
        layers[section] = {**layers.get(section, {}), key: value}
    return {**layers, "upstreams": [git, registry], "routes": [route]}


@contextmanager
def _scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="spm-proxy-config-") as directory:
        yield Path(directory)


async def usable(loaded: Settings) -> None:
    """What start-up does with settings: every check fails only with a ConfigError,
    and settings that pass open every upstream and store."""
    try:
        check_credentials(loaded, {})
        check_data_dir(loaded)
    except ConfigError:
        return
    public_url = loaded.server.public_url
    if public_url:
        # It becomes part of Link headers and bodies of every answer.
        assert not any(char.isspace() or not char.isprintable() for char in public_url)
        assert URL(public_url).absolute
    async with open_registry(loaded, {}):
        pass


@given(st.sampled_from(KEYS), values)
@example(("server", "public_url"), "https://proxy.example\r\nX-Injected: 1")
@example(("registry", "url"), "https://[::1")
@example(("registry", "url"), "https://")
@example(("git", "url_template"), "https://h/{scope}/{name}\n.git")
@example(("git", "url_template"), "https://[::1/{scope}/{name}")
async def test_any_value_of_any_key(key: tuple[str, str], value: Any) -> None:
    with _scratch() as scratch:
        try:
            loaded = load_settings(overrides=_layered(*key, value, scratch / "data"))
        except ConfigError:
            return
        await usable(loaded)


@given(hostile(st.sampled_from(["data", "spm-proxy data", "d\u00e9j\u00e0"])))
@example("da\x00ta")
@example("\ud800")  # from a JSON escape in SPM_PROXY_SERVER
def test_data_directories(name: str) -> None:
    with _scratch() as scratch:
        data_dir = scratch / name.replace("/", "_").replace("..", "__")
        try:
            check_data_dir(load_settings(overrides={"server": {"data_dir": data_dir}}))
        except ConfigError as error:
            message = str(error)
        else:
            return
        assert "server.data_dir" in message


def _toml(value: Any) -> str:
    # JSON's string, number and array syntax is TOML's too (lone surrogates and
    # non-finite floats give files TOML refuses, which is part of the point).
    return json.dumps(value)


toml_files = st.one_of(
    hostile_bytes,
    st.builds(
        lambda section, key, value: f"[{section}]\n{key} = {_toml(value)}\n".encode(
            "utf-8", "surrogatepass"
        ),
        st.sampled_from(["server", "cache", "log"]),
        st.sampled_from([key for section, key in KEYS if section in ("server", "cache", "log")]),
        st.one_of(scalars, st.lists(scalars, max_size=2)),
    ),
)


@given(toml_files)
@example(b"\xff\xfe[server]\n")  # not UTF-8
@example(b'[server]\ndata_dir = "a\\u0000b"\n')
@example(b"a = " + b"[" * 5000 + b"]" * 5000)
def test_any_configuration_file(content: bytes) -> None:
    with _scratch() as scratch:
        path = scratch / "spm-proxy.toml"
        path.write_bytes(content)
        try:
            loaded = load_settings(path, {"server": {"data_dir": scratch / "data"}})
        except ConfigError as error:
            message = str(error)
        else:
            assert loaded.server.data_dir == scratch / "data"
            return
        assert str(path) in message


ENVIRONMENT = ["SPM_PROXY_SERVER__PORT", "SPM_PROXY_CACHE__MAX_DISK_SIZE", "SPM_PROXY_UPSTREAMS"]


@given(st.sampled_from(ENVIRONMENT), hostile(st.sampled_from(["9000", "5GiB", "[]"])))
@example("SPM_PROXY_UPSTREAMS", "[" * 5000)
def test_any_environment_variable(name: str, value: str) -> None:
    # What an environment can hold: no NUL, no lone surrogate.
    value = value.encode("utf-8", "surrogatepass").decode("utf-8", "replace").replace("\x00", "")
    saved = os.environ.get(name)
    os.environ[name] = value
    try:
        load_settings(overrides={"server": {"data_dir": Path("unused")}})
    except ConfigError:
        pass
    finally:
        if saved is None:
            del os.environ[name]
        else:
            os.environ[name] = saved
