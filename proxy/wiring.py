"""Turn validated settings into upstreams, their policy guards and the routes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from proxy.config import (
    AuthSettings,
    ConfigError,
    GitUpstreamSettings,
    RegistryUpstreamSettings,
    Settings,
)
from proxy.policy import UpstreamGuard, UpstreamPolicy
from upstreams.base import Upstream
from upstreams.credentials import Credentials, from_netrc
from upstreams.git import GitUpstream
from upstreams.registry import RegistryUpstream
from upstreams.routing import Route, Router


@dataclass(frozen=True, slots=True)
class Wiring:
    router: Router
    guards: dict[str, UpstreamGuard]


def _secret(key: str, env_name: str | None, file: Path | None, environ: dict[str, str]) -> str:
    if env_name is not None:
        value = environ.get(env_name)
        if not value:
            raise ConfigError(f"{key}: environment variable {env_name} is not set")
        return value
    assert file is not None
    try:
        return file.expanduser().read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{key}: cannot read {file}: {exc.strerror}") from exc


def resolve_credentials(
    auth: AuthSettings | None, host: str, key: str, environ: dict[str, str]
) -> Credentials | None:
    """The credentials an upstream's `auth` table describes; ConfigError names the key."""
    if auth is None:
        return None
    if auth.type == "basic":
        secret = _secret(f"{key}.password", auth.password_env, auth.password_file, environ)
        return Credentials("basic", secret, auth.username)
    if auth.type == "bearer":
        return Credentials(
            "bearer", _secret(f"{key}.token", auth.token_env, auth.token_file, environ)
        )
    path = (auth.netrc_file or Path("~/.netrc")).expanduser()
    try:
        found = from_netrc(path, host)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{key}.netrc_file: cannot read {path}: {exc}") from exc
    if found is None:
        raise ConfigError(f"{key}: {path} has no entry for {host}")
    return found


def _host(upstream: GitUpstreamSettings | RegistryUpstreamSettings) -> str:
    url = upstream.url if isinstance(upstream, RegistryUpstreamSettings) else upstream.url_template
    return urlsplit(url.replace("{scope}", "s").replace("{name}", "n")).hostname or ""


def check_credentials(settings: Settings, environ: dict[str, str]) -> None:
    """Fail at start-up, naming the key, when a secret cannot be found."""
    for index, upstream in enumerate(settings.upstreams):
        resolve_credentials(upstream.auth, _host(upstream), f"upstreams.{index}.auth", environ)


def _build(
    index: int,
    config: GitUpstreamSettings | RegistryUpstreamSettings,
    data_dir: Path,
    environ: dict[str, str],
) -> Upstream:
    credentials = resolve_credentials(
        config.auth, _host(config), f"upstreams.{index}.auth", environ
    )
    if isinstance(config, GitUpstreamSettings):
        return GitUpstream(
            name=config.name,
            url_template=config.url_template,
            mirror_root=data_dir / "git" / config.name,
            overrides=config.packages,
            timeout=config.read_timeout_seconds,
            credentials=credentials,
        )
    return RegistryUpstream(
        name=config.name,
        base_url=config.url,
        credentials=credentials,
        connect_timeout=config.connect_timeout_seconds,
        read_timeout=config.read_timeout_seconds,
        http_cache_dir=data_dir / "http-cache" / config.name,
        download_hosts=config.download_hosts,
    )


def build_upstreams(settings: Settings, environ: dict[str, str]) -> Wiring:
    data_dir = settings.server.data_dir
    upstreams = {
        config.name: _build(index, config, data_dir, environ)
        for index, config in enumerate(settings.upstreams)
    }
    guards = {
        config.name: UpstreamGuard(
            config.name,
            UpstreamPolicy.from_settings(config, settings.cache, offline=settings.offline),
        )
        for config in settings.upstreams
    }
    routes = [
        Route(
            upstreams=tuple(upstreams[name] for name in route.upstreams),
            scopes=tuple(route.scopes),
            packages=tuple(route.packages),
            private=route.private,
        )
        for route in settings.routes
    ] or [Route(upstreams=tuple(upstreams.values()), scopes=("*",))]
    return Wiring(Router(routes), guards)
