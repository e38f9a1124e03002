"""Scenario: cached metadata requests while four cold fills run, against the same at rest.

One proxy process (one event loop, where cached requests are answered) on a
fresh data directory per measurement, in steady state: one release was filled
before, so its build processes have started. wrk, one connection, cycles
through the release list and metadata of a cached package: first at rest,
then while four uncached releases of four other packages are fetched and
built at once, from just before the four requests start until the last
archive arrives. The result is the ratio of the two 99th percentiles of
request latency, for requests paced below saturation (the headline) and for
requests sent back to back. The git server stands in for a remote host: its
processes run at a lower priority (nice 10), so that on a small machine the
figure is about the proxy's own work.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from tests.bench.common import (
    JSON_ACCEPT,
    ZIP_ACCEPT,
    Proxy,
    Result,
    download,
    http_get,
    log,
    median,
    spread,
)
from tests.bench.context import Context
from tests.bench.load import Wrk, WrkRun
from tests.bench.repos import Generated, source_package

NAME = "latency"
TARGET = 3.0
COLD_FILLS = 4
VERSIONS = 10
# Cached traffic below saturation: each request follows the previous answer
# after this pause, so latency is the service time and not queueing...
PAUSE_MS = 1
# ...the headline; and, besides, requests back to back, which keep the event
# loop busy all the time.
MODES = {"paced": PAUSE_MS, "saturated": 0}
# The git server stands in for a remote host.
GIT_NICENESS = 10


def _packages(ctx: Context) -> tuple[Generated, Generated, list[Generated]]:
    tags = [f"1.{minor}.0" for minor in range(VERSIONS)]
    cached = source_package(
        ctx.git_root, ctx.path("work"), "Steady", text_files=30, tags=iter(tags), history=VERSIONS
    )
    first = source_package(ctx.git_root, ctx.path("work"), "First", text_files=30)
    cold = [
        source_package(
            ctx.git_root,
            ctx.path("work"),
            f"Cold{number}",
            text_files=600 if ctx.quick else 2_000,
            binary_files=8,
            binary_size=256 * 1024,
            seed=10 + number,
        )
        for number in range(COLD_FILLS)
    ]
    return cached, first, cold


JSON_ACCEPT_HEADERS = {"Accept": JSON_ACCEPT}


@dataclass
class _Figures:
    rest: list[WrkRun] = field(default_factory=list)
    busy: list[WrkRun] = field(default_factory=list)
    fills: list[float] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return median([run.p99_ms for run in self.busy]) / median([run.p99_ms for run in self.rest])

    def summary(self) -> str:
        def of(runs: list[WrkRun], fmt: str = "{:.2f}", key: str = "p99_ms") -> str:
            return spread([getattr(run, key) for run in runs], fmt)

        return (
            f"p99 {of(self.busy)} vs {of(self.rest)} ms at rest "
            f"(p50 {of(self.busy, key='p50_ms')} vs {of(self.rest, key='p50_ms')}, "
            f"max {of(self.busy, '{:.1f}', 'max_ms')} vs {of(self.rest, '{:.1f}', 'max_ms')})"
        )


def _load(proxy: Proxy, paths: list[str], ctx: Context, pause_ms: int, seconds: float) -> Wrk:
    return Wrk(
        proxy.url,
        paths,
        connections=1,
        threads=1,
        workdir=ctx.workdir,
        headers=JSON_ACCEPT_HEADERS,
        pause_ms=pause_ms,
        seconds=seconds,
    ).start()


def _measure(
    proxy: Proxy,
    packages: tuple[Generated, Generated, list[Generated]],
    ctx: Context,
    pause_ms: int,
) -> tuple[WrkRun, WrkRun, float]:
    """At rest, then from just before the cold requests until the last archive arrived."""
    cached, first, cold = packages
    base = f"/{cached.scope}/{cached.name}"
    paths = [base] + [f"{base}/1.{minor}.0" for minor in range(VERSIONS)]
    for path in paths:
        http_get(proxy.url + path, JSON_ACCEPT)  # cached from now on
    download(f"{proxy.url}/{first.scope}/{first.name}/1.0.0.zip", ZIP_ACCEPT)
    rest = _load(proxy, paths, ctx, pause_ms, ctx.load_seconds).stop(interrupt=False)
    load = _load(proxy, paths, ctx, pause_ms, 3600)
    time.sleep(0.2)  # wrk connected and measuring
    started = time.perf_counter()
    with ThreadPoolExecutor(len(cold)) as pool:
        urls = [f"{proxy.url}/{package.scope}/{package.name}/1.0.0.zip" for package in cold]
        list(pool.map(lambda url: download(url, ZIP_ACCEPT), urls))
    filled = time.perf_counter() - started
    return rest, load.stop(), filled


def run(ctx: Context) -> Result:
    log(f"{NAME}: generating a cached package and {COLD_FILLS + 1} cold ones")
    packages = _packages(ctx)
    figures = {mode: _Figures() for mode in MODES}
    niceness, ctx.git.niceness = ctx.git.niceness, GIT_NICENESS
    try:
        for repeat in range(ctx.repeats):
            for mode, pause_ms in MODES.items():
                with ctx.proxy(ctx.path(f"latency-{mode}-{repeat}")) as proxy:
                    rest, busy, filled = _measure(proxy, packages, ctx, pause_ms)
                measured = figures[mode]
                measured.rest.append(rest)
                measured.busy.append(busy)
                measured.fills.append(filled)
                log(
                    f"{NAME}: repeat {repeat + 1}, {mode}: p99 at rest {rest.p99_ms:.2f} ms, "
                    f"during {COLD_FILLS} fills {busy.p99_ms:.2f} ms (max {busy.max_ms:.1f} ms, "
                    f"fills took {filled:.1f} s)"
                )
    finally:
        ctx.git.niceness = niceness
    paced, saturated = figures["paced"], figures["saturated"]
    return Result(
        NAME,
        paced.ratio,
        f"<= {TARGET:g}",
        paced.ratio <= TARGET,
        f"{COLD_FILLS} cold fills ({spread(paced.fills + saturated.fills, '{:.1f}')} s): "
        f"paced {paced.summary()}; saturated {saturated.ratio:.2f}x, {saturated.summary()} "
        f"(ms; wrk, 1 connection, {PAUSE_MS} ms pause when paced; median of {ctx.repeats})",
    )
