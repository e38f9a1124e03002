"""Settings of the upstreams: git repositories (with their mirrors) and registries.

Part of the configuration `proxy.config` loads; every table rejects unknown
keys, and every message names the key it is about.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from proxy.setting_values import (
    absolute_http_url,
    download_host,
    no_controls,
    repository_url_template,
)
from upstreams.git.naming import Templates
from upstreams.locations import split_location
from upstreams.model import PackageId


class Section(BaseModel):
    """One table of the configuration file."""

    # Unknown keys are typos far more often than intent: reject them.
    model_config = ConfigDict(extra="forbid", frozen=True)


class AuthSettings(Section):
    """How spm-proxy authenticates to one upstream. Secrets come from the
    environment or from files, never from the configuration file itself."""

    type: Literal["basic", "bearer", "netrc"]
    username: str = ""
    password_env: str | None = None
    password_file: Path | None = None
    token_env: str | None = None
    token_file: Path | None = None
    # netrc: the file to read (default ~/.netrc), looked up by the upstream's host.
    netrc_file: Path | None = None

    @model_validator(mode="after")
    def _complete(self) -> AuthSettings:
        if self.type == "basic":
            if not self.username:
                raise ValueError("basic auth needs username")
            if (self.password_env is None) == (self.password_file is None):
                raise ValueError("basic auth needs exactly one of password_env, password_file")
        if self.type == "bearer" and (self.token_env is None) == (self.token_file is None):
            raise ValueError("bearer auth needs exactly one of token_env, token_file")
        return self


# What the release list shows of a held release its upstream no longer has:
# keep (listed as before), withdraw (listed with a 410 problem), forget (not
# listed). Every policy keeps serving it to builds pinned to it.
VanishedPolicy = Literal["keep", "withdraw", "forget"]


class _UpstreamSettings(Section):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    # online: always ask the upstream, fail when it fails. fallback: serve the
    # cached list when it fails. offline: never contact it, serve the cache.
    network: Literal["online", "fallback", "offline"] = "fallback"
    vanished: VanishedPolicy = "keep"
    # Per-upstream overrides of the [cache] defaults.
    list_ttl_seconds: float | None = Field(default=None, ge=0)
    negative_ttl_seconds: float | None = Field(default=None, ge=0)
    connect_timeout_seconds: float = Field(default=10, gt=0)
    read_timeout_seconds: float = Field(default=60, gt=0)
    # After this many consecutive failures the upstream is assumed offline for
    # `offline_window_seconds`: not called, while everything cached still serves.
    failure_threshold: int = Field(default=3, ge=1)
    offline_window_seconds: float = Field(default=30, ge=0)
    auth: AuthSettings | None = None


class GitPackageSettings(Section):
    """One package's repository, named explicitly: `"acme.Foo" = { url = ..., fetch_url = ... }`,
    or just the URL: `"acme.Foo" = "https://..."`."""

    # The public repository URL: what manifests name, what `/identifiers` maps
    # and `repositoryURLs` lists.
    url: Annotated[str, AfterValidator(no_controls)] = Field(min_length=1)
    # Where spm-proxy fetches it from. Default: the mirror `fetch_url_template`
    # gives when `url` has the shape of `url_template`, else `url` itself.
    fetch_url: Annotated[str, AfterValidator(no_controls)] | None = Field(
        default=None, min_length=1
    )


def _package_table(value: object) -> object:
    return {"url": value} if isinstance(value, str) else value


class GitUpstreamSettings(_UpstreamSettings):
    type: Literal["git"]
    # The public repository URL of an identity: identities, `/identifiers`
    # and `repositoryURLs` speak of it.
    url_template: Annotated[str, AfterValidator(repository_url_template)]
    # Where spm-proxy fetches those repositories from instead, when the public
    # host is out of reach (an internal mirror). Default: `url_template`.
    fetch_url_template: Annotated[str, AfterValidator(repository_url_template)] | None = None
    # Explicit identity -> repository mappings; they beat the templates.
    packages: dict[str, Annotated[GitPackageSettings, BeforeValidator(_package_table)]] = Field(
        default_factory=dict
    )

    @field_validator("packages")
    @classmethod
    def _valid_packages(
        cls, value: dict[str, GitPackageSettings], info: ValidationInfo
    ) -> dict[str, GitPackageSettings]:
        for identity in value:
            try:
                PackageId.parse(identity)
            except ValueError as exc:
                raise ValueError(f'"{identity}": {exc}') from None
        public, fetch = info.data.get("url_template"), info.data.get("fetch_url_template")
        if public is not None and fetch is not None:
            _mirror_is_never_bypassed(value, public, fetch)
        return value

    def package_locations(self) -> dict[str, tuple[str, str | None]]:
        """`identity -> (public URL, fetch URL or None)` for every configured package."""
        return {identity: (where.url, where.fetch_url) for identity, where in self.packages.items()}


def _mirror_is_never_bypassed(
    packages: dict[str, GitPackageSettings], public: str, fetch: str
) -> None:
    """With a mirror, the public host is what spm-proxy cannot (or must not) reach:
    a package URL there that the mirror template does not cover needs its own
    fetch_url, or it would be fetched from the public host."""
    public_host = split_location(_example(public)).host.lower()
    if public_host == split_location(_example(fetch)).host.lower():
        return
    templates = Templates.of(public, fetch)
    for identity, where in packages.items():
        if where.fetch_url is not None:
            continue
        if split_location(templates.locate(where.url).fetch).host.lower() == public_host:
            raise ValueError(
                f'"{identity}": {where.url} would be fetched from {public_host}, which this '
                "upstream reaches only through fetch_url_template; give it a fetch_url"
            )


def _example(template: str) -> str:
    return template.replace("{scope}", "scope").replace("{name}", "name")


class RegistryUpstreamSettings(_UpstreamSettings):
    type: Literal["registry"]
    # Base URL of an SE-0292 registry, path prefix included.
    url: str
    # Origins besides `url`'s own that redirects and links may lead to: the
    # CDN or object store archives are served from. Never sent credentials.
    download_hosts: list[Annotated[str, AfterValidator(download_host)]] = Field(
        default_factory=list
    )

    @field_validator("url")
    @classmethod
    def _absolute_url(cls, value: str) -> str:
        return absolute_http_url(value)

    @field_validator("download_hosts")
    @classmethod
    def _no_downgrade(cls, value: list[str], info: ValidationInfo) -> list[str]:
        # Redirects from https to http are refused (SE-0292 4.4.2), so such
        # an entry could never be used: say so at start-up, not at first fetch.
        if str(info.data.get("url", "")).startswith("https://"):
            for host in value:
                if host.startswith("http://"):
                    raise ValueError(
                        f"{host} is plain http, but url is https and redirects from "
                        "https to http are refused"
                    )
        return value


UPSTREAM_TYPES = frozenset({"git", "registry"})

UpstreamSettings = Annotated[
    GitUpstreamSettings | RegistryUpstreamSettings, Field(discriminator="type")
]
