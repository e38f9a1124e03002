"""Scenario 6: `swift package resolve` through a warm proxy against git URLs.

The consumer depends on ten generated packages, either by registry identity
(through the proxy) or by git URL (the same repositories over smart HTTP).
Every timed run starts with empty SwiftPM state (cache, security, config,
scratch directory, no Package.resolved); one untimed run of each kind warms
the proxy, the page cache and the toolchain first.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from tests.bench.common import Result, log, median, spread
from tests.bench.context import Context
from tests.bench.repos import Generated, source_package
from tests.support.swift_packages import configure_registry

NAME = "resolve"
TARGET = 5.0
PACKAGES = 10
TAGS = ("1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0")


def _consumer(path: Path, packages: list[Generated], git_url: str | None) -> Path:
    clauses, products, imports = [], [], []
    for package in packages:
        if git_url is None:
            clauses.append(f'.package(id: "{package.identity}", from: "1.0.0")')
            products.append(f'.product(name: "{package.name}", package: "{package.identity}")')
        else:
            url = f"{git_url}/{package.scope}/{package.name}.git"
            clauses.append(f'.package(url: "{url}", from: "1.0.0")')
            products.append(f'.product(name: "{package.name}", package: "{package.name}")')
        imports.append(f"import {package.name}")
    (path / "Sources" / "App").mkdir(parents=True)
    (path / "Package.swift").write_text(
        "// swift-tools-version:5.9\n"
        "import PackageDescription\n\n"
        "let package = Package(\n"
        '    name: "App",\n'
        "    dependencies: [\n        " + ",\n        ".join(clauses) + ",\n    ],\n"
        "    targets: [\n"
        '        .executableTarget(name: "App", dependencies: [\n'
        "            " + ",\n            ".join(products) + ",\n"
        "        ]),\n"
        "    ]\n"
        ")\n"
    )
    (path / "Sources" / "App" / "main.swift").write_text("\n".join(imports) + '\nprint("ok")\n')
    return path


def resolve_once(swift: str, consumer: Path, state: Path, *flags: str) -> float:
    """One `swift package resolve` with all client state fresh under `state`."""
    shutil.rmtree(state, ignore_errors=True)
    (consumer / "Package.resolved").unlink(missing_ok=True)
    env = {
        **os.environ,
        "HOME": str(state / "home"),
        "XDG_CACHE_HOME": str(state / "xdg-cache"),
        "XDG_CONFIG_HOME": str(state / "xdg-config"),
    }
    command = [
        swift, "package", "resolve",
        "--cache-path", str(state / "cache"),
        "--security-path", str(state / "security"),
        "--config-path", str(state / "config"),
        "--scratch-path", str(state / "scratch"),
        *flags,
    ]  # fmt: skip
    started = time.perf_counter()
    completed = subprocess.run(
        command, cwd=consumer, env=env, capture_output=True, check=False, timeout=900
    )
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        output = (completed.stdout + completed.stderr).decode("utf-8", "replace")
        raise RuntimeError(f"swift package resolve failed in {consumer}:\n{output}")
    return elapsed


def run(ctx: Context) -> Result:
    swift = shutil.which("swift")
    if swift is None:
        return Result(NAME, None, f">= {TARGET:g}x", None, "swift is not on PATH")
    log(f"{NAME}: generating {PACKAGES} packages")
    packages = [
        source_package(
            ctx.git_root,
            ctx.path("work"),
            f"Lib{index}",
            text_files=40,
            tags=iter(TAGS),
            history=len(TAGS),
            seed=100 + index,
        )
        for index in range(PACKAGES)
    ]
    registry_consumer = _consumer(ctx.path("resolve-registry"), packages, None)
    git_consumer = _consumer(ctx.path("resolve-git"), packages, ctx.git.url)
    state = ctx.workdir / "resolve-state"
    with ctx.proxy(ctx.path("resolve-data")) as proxy:
        configure_registry(registry_consumer, proxy.url)
        log(f"{NAME}: warming up")
        resolve_once(swift, registry_consumer, state)
        resolve_once(swift, git_consumer, state)
        timings: dict[str, list[float]] = {"proxy": [], "git": []}
        for repeat in range(ctx.repeats):
            sides = [("proxy", registry_consumer), ("git", git_consumer)]
            for side, consumer in sides if repeat % 2 == 0 else reversed(sides):
                timings[side].append(resolve_once(swift, consumer, state))
            log(
                f"{NAME}: repeat {repeat + 1}: proxy {timings['proxy'][-1]:.1f} s, "
                f"git {timings['git'][-1]:.1f} s"
            )
    shutil.rmtree(state, ignore_errors=True)
    speedup = median(timings["git"]) / median(timings["proxy"])
    return Result(
        NAME,
        speedup,
        f">= {TARGET:g}x",
        speedup >= TARGET,
        f"proxy {spread(timings['proxy'])} s vs git {spread(timings['git'])} s "
        f"(speed-up; {PACKAGES} dependencies, {len(TAGS)} tags each, fresh client state, "
        f"median of {ctx.repeats})",
        unit="x",
    )
