"""Settings: one TOML file, `SPM_PROXY_*` environment overrides, command-line flags.

Precedence, lowest first: the embedded default (`default.toml`, with a
command's own defaults on top), the TOML file, the environment
(`SPM_PROXY_SERVER__PORT=9000`, nested keys joined by `__`), then explicit
flags. The layers are merged here, in that order, and validated once; a bad
value stops the server with a message naming the key.
"""

from __future__ import annotations

import os
import tempfile
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    ByteSize,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from proxy.setting_values import absolute_http_url, file_system_path, no_blanks
from proxy.upstream_settings import (
    UPSTREAM_TYPES,
    AuthSettings,
    GitPackageSettings,
    GitUpstreamSettings,
    RegistryUpstreamSettings,
    UpstreamSettings,
    VanishedPolicy,
)
from proxy.upstream_settings import Section as _Section
from upstreams.model import PackageId

__all__ = [
    "AuthSettings",
    "CacheSettings",
    "ConfigError",
    "GitPackageSettings",
    "GitUpstreamSettings",
    "LogSettings",
    "RegistryUpstreamSettings",
    "RouteSettings",
    "ServerSettings",
    "Settings",
    "UpstreamSettings",
    "VanishedPolicy",
    "check_data_dir",
    "default_config_text",
    "load_settings",
]


class ConfigError(Exception):
    """Configuration that cannot be used; the message names every bad key."""


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    # Absolute base URL clients reach the proxy at, for links in responses. When
    # empty, links are built from each request's scheme and Host header.
    public_url: str = ""
    data_dir: Path = Path("spm-proxy-data")
    # Server processes sharing the port (SO_REUSEPORT) and the data directory.
    workers: int = Field(default=1, ge=1, le=256)

    @model_validator(mode="after")
    def _fixed_port_for_workers(self) -> ServerSettings:
        if self.workers > 1 and self.port == 0:
            raise ValueError("port 0 (any free port) needs workers = 1: workers share one port")
        return self

    @field_validator("public_url")
    @classmethod
    def _absolute_url(cls, value: str) -> str:
        return absolute_http_url(value) if value else value

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        return no_blanks(value)

    @field_validator("data_dir")
    @classmethod
    def _path(cls, value: Path) -> Path:
        return file_system_path(value)


class CacheSettings(_Section):
    # Release lists change whenever a tag is pushed: keep them briefly, then
    # revalidate; serve the stale copy if the upstream fails meanwhile.
    list_ttl_seconds: float = Field(default=300, ge=0)
    # "Not found" is cached only briefly, so a newly created package shows up soon.
    negative_ttl_seconds: float = Field(default=60, ge=0)
    # A fill (fetch + archive build) runs detached from the request that started it.
    fill_timeout_seconds: float = Field(default=600, gt=0)
    # A client waits this long for a fill or list refresh, then gets a 504
    # problem while the work goes on in the background (a retry finds it).
    client_wait_seconds: float = Field(default=60, gt=0)
    max_concurrent_fills: int = Field(default=4, ge=1)
    # List refreshes have their own pool: they never queue behind archive builds.
    max_concurrent_list_refreshes: int = Field(default=8, ge=1)
    # `spm-proxy gc` keeps the data directory under this size ("50GiB", "500MB",
    # or bytes); unset means no limit. Ledgered archives are never evicted.
    max_disk_size: ByteSize | None = None


class LogSettings(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    # `auto`: human-readable on a terminal, JSON lines otherwise.
    format: Literal["auto", "json", "console"] = "auto"


class RouteSettings(_Section):
    """One routing rule: which upstreams, in order, may serve matching packages."""

    # fnmatch patterns, case-insensitive, matched against the scope.
    scopes: list[str] = Field(default_factory=list)
    # Exact identities; a package rule beats every scope rule.
    packages: list[str] = Field(default_factory=list)
    upstreams: list[str] = Field(default_factory=list)
    # A private scope never leaves the proxy: no upstream is ever asked.
    private: bool = False
    # Overrides the upstreams' own `vanished` policy for the packages this rule matches.
    vanished: VanishedPolicy | None = None

    @model_validator(mode="after")
    def _complete(self) -> RouteSettings:
        if not self.scopes and not self.packages:
            raise ValueError("a route needs scopes or packages to match")
        if self.private == bool(self.upstreams):
            raise ValueError("a route either lists upstreams or is private = true")
        if self.private and self.vanished is not None:
            raise ValueError("a private route has no upstream to lose releases: drop vanished")
        for identity in self.packages:
            PackageId.parse(identity)
        return self


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SPM_PROXY_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    server: ServerSettings = ServerSettings()
    cache: CacheSettings = CacheSettings()
    log: LogSettings = LogSettings()
    upstreams: list[UpstreamSettings] = Field(min_length=1)
    # Ordered rules; when empty, every package may come from every upstream,
    # in the order they are listed.
    routes: list[RouteSettings] = Field(default_factory=list)
    # The global offline switch (`spm-proxy serve --offline`): no upstream is
    # contacted, whatever its own `network` policy says.
    offline: bool = False

    @field_validator("upstreams")
    @classmethod
    def _unique_names(cls, value: list[UpstreamSettings]) -> list[UpstreamSettings]:
        names = [upstream.name for upstream in value]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"upstream names must be unique; repeated: {', '.join(duplicates)}")
        return value

    @model_validator(mode="after")
    def _routes_name_known_upstreams(self) -> Settings:
        known = {upstream.name for upstream in self.upstreams}
        for index, route in enumerate(self.routes):
            unknown = [name for name in route.upstreams if name not in known]
            if unknown:
                raise ValueError(
                    f"routes.{index}.upstreams names unknown upstreams: {', '.join(unknown)}"
                )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # `load_settings` merges file, environment and flags itself, in the
        # documented order, and passes the result as init values: a source
        # read here would sit above or below all of them at once.
        return (init_settings,)


def default_config_text() -> str:
    return resources.files("proxy").joinpath("default.toml").read_text(encoding="utf-8")


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _describe(error: ValidationError, origin: str) -> str:
    lines = [f"invalid configuration ({origin}):"]
    for item in error.errors():
        # Drop the union tag pydantic inserts (`upstreams.0.git.url_template`).
        location = [
            f'"{part}"' if isinstance(part, str) and "." in part else str(part)
            for index, part in enumerate(item["loc"])
            if not (
                part in UPSTREAM_TYPES and index > 0 and isinstance(item["loc"][index - 1], int)
            )
        ]
        key = ".".join(location) or "(top level)"
        message = item["msg"]
        if item["type"] in ("union_tag_not_found", "union_tag_invalid"):
            message = f"type must be one of: {', '.join(sorted(UPSTREAM_TYPES))}"
        env_name = "SPM_PROXY_" + "__".join(location).upper()
        source = f" (from {env_name})" if location and env_name in os.environ else ""
        lines.append(f"  {key}: {message}{source}")
    return "\n".join(lines)


def _environment() -> dict[str, Any]:
    try:
        return EnvSettingsSource(Settings)()
    except SettingsError as exc:
        raise ConfigError(f"invalid configuration (SPM_PROXY_* environment): {exc}") from exc
    except RecursionError:
        # Complex values are JSON, whose decoder recurses once per nesting level.
        raise ConfigError(
            "invalid configuration (SPM_PROXY_* environment): a JSON value nests too deeply"
        ) from None


def load_settings(
    path: Path | None = None,
    overrides: dict[str, Any] | None = None,
    *,
    defaults: dict[str, Any] | None = None,
) -> Settings:
    """Build validated settings; raise `ConfigError` naming each bad key.

    Layers, lowest first: the embedded default with `defaults` (a command's
    own) on top, the file at `path`, the `SPM_PROXY_*` environment, then
    `overrides` (the command-line flags).
    """
    values = _merge(tomllib.loads(default_config_text()), defaults or {})
    origin = "embedded default"
    try:
        if path is not None:
            origin = str(path)
            with path.open("rb") as handle:
                from_file = tomllib.load(handle)
            # A file that lists upstreams replaces the default ones wholesale:
            # merging lists item by item would be surprising.
            values = _merge(values, from_file)
    except OSError as exc:
        raise ConfigError(f"cannot read configuration file {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{origin} is not valid TOML: {exc}") from exc
    except UnicodeDecodeError as exc:
        # TOML files are UTF-8 (TOML 1.0.0, "Spec").
        raise ConfigError(f"{origin} is not UTF-8 text, as TOML must be: {exc.reason}") from exc
    except RecursionError:
        raise ConfigError(f"{origin} nests arrays or tables too deeply") from None
    values = _merge(_merge(values, _environment()), overrides or {})
    try:
        return Settings(**values)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, f"{origin} + SPM_PROXY_* environment")) from exc


def check_data_dir(settings: Settings) -> None:
    """Fail at start-up, naming the key, when the data directory is unusable."""
    path = settings.server.data_dir
    try:
        path.mkdir(parents=True, exist_ok=True)
        # Only writing tells: permission bits say nothing about a read-only
        # mount, and nothing at all when running as root.
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=path)
        os.close(fd)
        Path(probe).unlink()
    except OSError as exc:
        raise ConfigError(
            f"server.data_dir: cannot create or write {path}: {exc.strerror or exc}"
        ) from exc
