"""The composition root: settings -> storage, guarded upstreams, routes, pools, fills, facade.

The only module that names concrete backends. The HTTP app (`create_app`)
and the offline commands (`warm`, `export`, `import`, `verify`, `gc`) share
this one construction, so they see the same storage, upstreams and policies.
Everything is opened in dependency order and closed in reverse: fills stop
before the upstreams and the storage they use.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from urllib.parse import urlsplit

from cache.embedded import EmbeddedFormat, FileDocuments, open_embedded
from cache.errors import StorageError
from cache.format import Change, DataFormat, FormatRefused
from cache.index import ReleaseList
from cache.storage import Storage
from proxy.config import (
    AuthSettings,
    CacheSettings,
    ConfigError,
    GitUpstreamSettings,
    RegistryUpstreamSettings,
    Settings,
)
from proxy.service.candidates import CachePolicy, Candidates
from proxy.service.fills import (
    CoalescedFiller,
    Coalescer,
    Filler,
    LeasedFiller,
    PooledFiller,
)
from proxy.service.held import Holdings, VanishedPolicy
from proxy.service.identifiers import IdentifierResolver
from proxy.service.janitor import Janitor
from proxy.service.lists import ReleaseLists
from proxy.service.puller import Puller
from proxy.service.recorder import Recorder
from proxy.service.registry import Registry
from proxy.service.releases import ReleaseLookup
from upstreams.base import LocalCache, RepositoryNames
from upstreams.credentials import Credentials, from_netrc
from upstreams.disk import tree_size
from upstreams.git import GitUpstream, PackageLocation
from upstreams.git.naming import Templates
from upstreams.guard import GuardedUpstream, GuardPolicy
from upstreams.registry import RegistryUpstream
from upstreams.routing import Route, Router


@dataclass(frozen=True, slots=True)
class Wired:
    """What the app and the commands run on."""

    settings: Settings
    storage: Storage
    registry: Registry
    recorder: Recorder
    candidates: Candidates
    filler: Filler
    caches: tuple[LocalCache, ...]
    # Per-machine scratch space on the data directory's file system.
    scratch: Path
    janitor: Janitor


def _secret(key: str, env_name: str | None, file: Path | None, environ: Mapping[str, str]) -> str:
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
    auth: AuthSettings | None, host: str, key: str, environ: Mapping[str, str]
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


def upstream_host(upstream: GitUpstreamSettings | RegistryUpstreamSettings) -> str:
    """The host an upstream's credentials are for: where it fetches from."""
    if isinstance(upstream, RegistryUpstreamSettings):
        url = upstream.url
    else:
        url = upstream.fetch_url_template or upstream.url_template
    return urlsplit(url.replace("{scope}", "s").replace("{name}", "n")).hostname or ""


def check_credentials(settings: Settings, environ: Mapping[str, str]) -> None:
    """Fail at start-up, naming the key, when a secret cannot be found."""
    for index, upstream in enumerate(settings.upstreams):
        resolve_credentials(
            upstream.auth, upstream_host(upstream), f"upstreams.{index}.auth", environ
        )


def _build(
    index: int,
    config: GitUpstreamSettings | RegistryUpstreamSettings,
    data_dir: Path,
    names: RepositoryNames,
    environ: Mapping[str, str],
    *,
    cache: CacheSettings,
) -> GitUpstream | RegistryUpstream:
    credentials = resolve_credentials(
        config.auth, upstream_host(config), f"upstreams.{index}.auth", environ
    )
    if isinstance(config, GitUpstreamSettings):
        return GitUpstream(
            name=config.name,
            url_template=config.url_template,
            fetch_url_template=config.fetch_url_template,
            mirror_root=data_dir / "git" / config.name,
            overrides={
                identity: PackageLocation(url, fetch_url)
                for identity, (url, fetch_url) in config.package_locations().items()
            },
            timeout=config.read_timeout_seconds,
            names=names,
            credentials=credentials,
            build_processes=cache.max_concurrent_fills,
        )
    return RegistryUpstream(
        name=config.name,
        base_url=config.url,
        credentials=credentials,
        connect_timeout=config.connect_timeout_seconds,
        read_timeout=config.read_timeout_seconds,
        documents=FileDocuments(data_dir / "http-cache" / config.name),
        download_hosts=config.download_hosts,
    )


def guard_policy(
    config: GitUpstreamSettings | RegistryUpstreamSettings, *, offline: bool
) -> GuardPolicy:
    return GuardPolicy(
        network="offline" if offline else config.network,
        failure_threshold=config.failure_threshold,
        offline_window=config.offline_window_seconds,
    )


def cache_policy(
    config: GitUpstreamSettings | RegistryUpstreamSettings, cache: CacheSettings
) -> CachePolicy:
    return CachePolicy(
        list_ttl=cache.list_ttl_seconds
        if config.list_ttl_seconds is None
        else config.list_ttl_seconds,
        negative_ttl=cache.negative_ttl_seconds
        if config.negative_ttl_seconds is None
        else config.negative_ttl_seconds,
        serves_stale=config.network != "online",
        vanished=VanishedPolicy(config.vanished),
    )


def _router(
    settings: Settings, guards: dict[str, GuardedUpstream]
) -> tuple[Router, list[tuple[Route, VanishedPolicy]]]:
    """The router, and the routes that set their own `vanished` policy."""
    routes: list[Route] = []
    vanished: list[tuple[Route, VanishedPolicy]] = []
    for config in settings.routes:
        route = Route(
            upstreams=tuple(guards[name] for name in config.upstreams),
            scopes=tuple(config.scopes),
            packages=tuple(config.packages),
            private=config.private,
        )
        routes.append(route)
        if config.vanished is not None:
            vanished.append((route, VanishedPolicy(config.vanished)))
    return Router(routes or [Route(upstreams=tuple(guards.values()), scopes=("*",))]), vanished


def _service(
    settings: Settings, storage: Storage, candidates: Candidates
) -> tuple[Registry, Recorder, Filler, list[Coalescer[None] | Coalescer[ReleaseList]]]:
    cache = settings.cache
    recorder = Recorder(storage.blobs, storage.ledger, storage.index)
    refreshes = Coalescer[ReleaseList](
        client_wait=cache.client_wait_seconds, deadline=cache.fill_timeout_seconds, name="lists"
    )
    holdings = Holdings(storage.ledger, storage.blobs)
    lists = ReleaseLists(
        lists=storage.index,
        candidates=candidates,
        holdings=holdings,
        refreshes=refreshes,
        pool=asyncio.Semaphore(cache.max_concurrent_list_refreshes),
    )
    builds = Coalescer[None](
        client_wait=cache.client_wait_seconds, deadline=cache.fill_timeout_seconds, name="builds"
    )
    pooled = PooledFiller(
        Puller(candidates, storage.blobs, recorder, notes=lists),
        asyncio.Semaphore(cache.max_concurrent_fills),
    )
    leased = LeasedFiller(
        pooled,
        storage.leases,
        releases=storage.index,
        blobs=storage.blobs,
        misses=storage.index,
        ttl=cache.fill_timeout_seconds,
    )
    filler = CoalescedFiller(leased, builds)
    registry = Registry(
        lists=lists,
        releases=ReleaseLookup(
            releases=storage.index,
            ledger=storage.ledger,
            blobs=storage.blobs,
            filler=filler,
            candidates=candidates,
        ),
        blobs=storage.blobs,
        identifiers=IdentifierResolver(
            identifiers=storage.index,
            candidates=candidates,
            ttl=cache.list_ttl_seconds,
            holdings=holdings,
        ),
    )
    return registry, recorder, filler, [builds, refreshes]


def data_format(settings: Settings) -> DataFormat:
    """The format of the data directory, and its upgrade."""
    matchers = {
        config.name: _repository_name_matcher(config.url_template, config.fetch_url_template)
        for config in settings.upstreams
        if isinstance(config, GitUpstreamSettings)
    }
    return EmbeddedFormat(settings.server.data_dir, names=matchers, software=_software())


async def prepare_data_dir(settings: Settings) -> list[Change]:
    """Upgrade an older data directory in place; ConfigError when it must not be touched."""
    try:
        return await data_format(settings).upgrade()
    except FormatRefused as exc:
        raise ConfigError(f"server.data_dir: {exc}") from exc
    except (StorageError, OSError) as exc:
        # Every step can run again: the next start continues where this one stopped.
        raise ConfigError(
            f"server.data_dir: upgrading {settings.server.data_dir} to this version's data "
            f"format failed, nothing is lost and the next start continues it: {exc}"
        ) from exc


def _repository_name_matcher(
    url_template: str, fetch_url_template: str | None
) -> Callable[[str], str | None]:
    templates = Templates.of(url_template, fetch_url_template)

    def name(url: str) -> str | None:
        matched = templates.match(url)
        return None if matched is None else "/".join(matched)

    return name


def _software() -> str:
    try:
        return f"spm-proxy {version('spm-proxy')}"
    except PackageNotFoundError:
        return "spm-proxy"


@asynccontextmanager
async def open_registry(
    settings: Settings, environ: Mapping[str, str] | None = None
) -> AsyncIterator[Wired]:
    data_dir = settings.server.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    # Start-up has done this already; the app built directly (tests) has not.
    await prepare_data_dir(settings)
    env = os.environ if environ is None else environ
    async with AsyncExitStack() as stack:
        storage = await stack.enter_async_context(open_embedded(data_dir))
        upstreams: dict[str, GitUpstream | RegistryUpstream] = {}
        guards: dict[str, GuardedUpstream] = {}
        policies: dict[str, CachePolicy] = {}
        for index, config in enumerate(settings.upstreams):
            upstream = _build(index, config, data_dir, storage.index, env, cache=settings.cache)
            stack.push_async_callback(upstream.close)
            upstreams[config.name] = upstream
            guards[config.name] = GuardedUpstream(
                upstream, guard_policy(config, offline=settings.offline)
            )
            policies[config.name] = cache_policy(config, settings.cache)
        router, route_vanished = _router(settings, guards)
        candidates = Candidates(
            router, list(guards.values()), policies, storage.index, route_vanished
        )
        registry, recorder, filler, coalescers = _service(settings, storage, candidates)
        # Registered last, so they run first: detached fills stop before the
        # upstreams and the storage they use are closed.
        for coalescer in coalescers:
            stack.push_async_callback(coalescer.close)
        caches: tuple[LocalCache, ...] = tuple(upstreams.values())
        scratch = data_dir / "scratch"
        janitor = Janitor(
            blobs=storage.blobs,
            caches=caches,
            scratch=scratch,
            older_than=settings.cache.fill_timeout_seconds,
        )
        yield Wired(
            settings, storage, registry, recorder, candidates, filler, caches, scratch, janitor
        )


async def data_usage(settings: Settings) -> int:
    """Bytes under the data directory, for `gc` to compare with its limit."""
    return await asyncio.to_thread(tree_size, settings.server.data_dir)
