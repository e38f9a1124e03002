"""Scenario 7: resolving a dependency graph shaped like swift-nio's, by git URL.

Twelve generated packages with histories (swift-nio and the packages around
it: atomics, collections, system, ssl, http2, extras, log, crypto, asn1,
certificates, async-algorithms) name each other by git URLs on a public
host. The public host is a relay in front of the benchmark's git server
that adds 40 ms of round trip and limits each direction to 50 Mbit/s, the
way a CI machine reaches github.com. One consumer, naming seven of them by
URL, is resolved three ways, each run with fresh SwiftPM state:

- proxy: `--replace-scm-with-registry` against a warm spm-proxy on loopback
  that answers for the public host and fetches from the git server directly
  (its mirror); the relay must see no connection;
- git over the relay: plain `swift package resolve`, cloning every package;
- git on loopback: the same, with SwiftPM mirrors (mirrors.json) pointing
  every URL at the git server directly.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.bench.common import MB, Result, log, median, spread
from tests.bench.context import Context
from tests.bench.history import Shape, history_package
from tests.bench.relay import Relay
from tests.bench.resolve import resolve_once
from tests.support.swift_packages import configure_registry

NAME = "resolve-graph"
TARGET = 5.0

# repository -> (product and target, dependencies, shape)
GRAPH: dict[str, tuple[str, tuple[str, ...], Shape]] = {
    "swift-nio": (
        "NIO",
        ("swift-atomics", "swift-collections", "swift-system"),
        Shape(text_files=600, commits=2000, tags=120, seed=11),
    ),
    "swift-atomics": ("Atomics", (), Shape(text_files=80, commits=300, tags=20, seed=12)),
    "swift-collections": (
        "Collections",
        (),
        Shape(text_files=300, commits=800, tags=40, seed=13),
    ),
    "swift-system": ("SystemPackage", (), Shape(text_files=100, commits=300, tags=20, seed=14)),
    "swift-nio-ssl": (
        "NIOSSL",
        ("swift-nio",),
        Shape(text_files=500, commits=800, tags=60, seed=15),
    ),
    "swift-nio-http2": (
        "NIOHTTP2",
        ("swift-nio", "swift-atomics"),
        Shape(text_files=300, commits=800, tags=60, seed=16),
    ),
    "swift-nio-extras": (
        "NIOExtras",
        ("swift-nio",),
        Shape(text_files=200, commits=500, tags=40, seed=17),
    ),
    "swift-log": ("Logging", (), Shape(text_files=40, commits=300, tags=30, seed=18)),
    "swift-crypto": (
        "Crypto",
        ("swift-asn1",),
        Shape(text_files=500, commits=600, tags=50, seed=19),
    ),
    "swift-asn1": ("SwiftASN1", (), Shape(text_files=80, commits=200, tags=20, seed=20)),
    "swift-certificates": (
        "X509",
        ("swift-crypto", "swift-asn1"),
        Shape(text_files=200, commits=400, tags=30, seed=21),
    ),
    "swift-async-algorithms": (
        "AsyncAlgorithms",
        ("swift-collections",),
        Shape(text_files=150, commits=400, tags=20, seed=22),
    ),
}
DIRECT = (
    "swift-nio",
    "swift-nio-ssl",
    "swift-nio-http2",
    "swift-nio-extras",
    "swift-log",
    "swift-certificates",
    "swift-async-algorithms",
)
QUICK_SCALE = 4


def _manifest(name: str, base: str, products: tuple[str, tuple[str, ...]]) -> str:
    product, dependencies = products
    clauses = "".join(
        f'        .package(url: "{base}/{dependency}.git", from: "1.0.0"),\n'
        for dependency in dependencies
    )
    uses = ", ".join(
        f'.product(name: "{GRAPH[dependency][0]}", package: "{dependency}")'
        for dependency in dependencies
    )
    return (
        "// swift-tools-version:5.9\n"
        "import PackageDescription\n\n"
        "let package = Package(\n"
        f'    name: "{name}",\n'
        f'    products: [.library(name: "{product}", targets: ["{product}"])],\n'
        f"    dependencies: [\n{clauses}    ],\n"
        "    targets: [\n"
        f'        .target(name: "{product}", dependencies: [{uses}], path: "Sources/{name}"),\n'
        "    ]\n"
        ")\n"
    )


def _consumer(path: Path, base: str) -> Path:
    clauses = "".join(f'        .package(url: "{base}/{n}.git", from: "1.0.0"),\n' for n in DIRECT)
    uses = ",\n".join(
        f'            .product(name: "{GRAPH[n][0]}", package: "{n}")' for n in DIRECT
    )
    (path / "Sources" / "App").mkdir(parents=True)
    (path / "Package.swift").write_text(
        "// swift-tools-version:5.9\n"
        "import PackageDescription\n\n"
        "let package = Package(\n"
        '    name: "App",\n'
        f"    dependencies: [\n{clauses}    ],\n"
        "    targets: [\n"
        f'        .executableTarget(name: "App", dependencies: [\n{uses},\n        ]),\n'
        "    ]\n"
        ")\n"
    )
    (path / "Sources" / "App" / "main.swift").write_text('print("ok")\n')
    return path


def _mirrors(consumer: Path, public: str, direct: str) -> None:
    """SwiftPM's dependency mirrors (mirrors.json): every public URL to the server."""
    config = consumer / ".swiftpm" / "configuration"
    config.mkdir(parents=True, exist_ok=True)
    pairs = [
        {"mirror": f"{direct}/{name}.git", "original": f"{public}/{name}.git"} for name in GRAPH
    ]
    (config / "mirrors.json").write_text(json.dumps({"object": pairs, "version": 1}, indent=2))


def _generate(ctx: Context, public: str) -> int:
    packed = 0
    for name, products in GRAPH.items():
        shape = products[2]
        if ctx.quick:
            shape = Shape(
                text_files=max(10, shape.text_files // QUICK_SCALE),
                commits=max(10, shape.commits // QUICK_SCALE),
                tags=max(5, shape.tags // QUICK_SCALE),
                seed=shape.seed,
            )
        history = history_package(
            ctx.git_root, name, shape, manifest=_manifest(name, public, products[:2])
        )
        packed += history.packed_bytes
    return packed


def run(ctx: Context) -> Result:
    swift = shutil.which("swift")
    if swift is None:
        return Result(NAME, None, f">= {TARGET:g}x", None, "swift is not on PATH")
    git_port = int(ctx.git.url.rsplit(":", 1)[1])
    with Relay("127.0.0.1", git_port) as relay:
        public = f"{relay.url}/bench"
        log(f"{NAME}: generating {len(GRAPH)} packages with history")
        packed = _generate(ctx, public)
        log(f"{NAME}: {packed / MB:.0f} MB of repositories")
        consumers = {
            "proxy": _consumer(ctx.path("graph-proxy"), public),
            "relay": _consumer(ctx.path("graph-relay"), public),
            "loopback": _consumer(ctx.path("graph-loopback"), public),
        }
        _mirrors(consumers["loopback"], public, f"{ctx.git.url}/bench")
        flags = {"proxy": ("--replace-scm-with-registry",), "relay": (), "loopback": ()}
        state = ctx.workdir / "graph-state"
        timings: dict[str, list[float]] = {side: [] for side in consumers}
        with ctx.proxy(ctx.path("graph-data"), public_url=relay.url) as proxy:
            configure_registry(consumers["proxy"], proxy.url)
            proxy_relay_connections = 0

            def resolve(side: str) -> float:
                nonlocal proxy_relay_connections
                before = relay.connections
                elapsed = resolve_once(swift, consumers[side], state, *flags[side])
                if side == "proxy":
                    proxy_relay_connections += relay.connections - before
                return elapsed

            log(f"{NAME}: warming up")
            for side in consumers:
                resolve(side)
            for repeat in range(ctx.repeats):
                order = list(consumers) if repeat % 2 == 0 else list(reversed(consumers))
                for side in order:
                    timings[side].append(resolve(side))
                log(
                    f"{NAME}: repeat {repeat + 1}: "
                    + ", ".join(f"{side} {timings[side][-1]:.1f} s" for side in consumers)
                )
        shutil.rmtree(state, ignore_errors=True)
    over_relay = median(timings["relay"]) / median(timings["proxy"])
    on_loopback = median(timings["loopback"]) / median(timings["proxy"])
    return Result(
        NAME,
        over_relay,
        f">= {TARGET:g}x",
        over_relay >= TARGET and proxy_relay_connections == 0,
        f"speed-up over git through the relay (40 ms RTT, 50 Mbit/s); {on_loopback:.2f}x over "
        f"git on loopback. proxy {spread(timings['proxy'])} s, git relay "
        f"{spread(timings['relay'])} s, git loopback {spread(timings['loopback'])} s "
        f"({len(GRAPH)} packages, {len(DIRECT)} direct, {packed / MB:.0f} MB of repositories, "
        f"relay connections from the proxy side: {proxy_relay_connections}; "
        f"fresh client state, median of {ctx.repeats})",
        unit="x",
    )
