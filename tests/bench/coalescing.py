"""Scenario 4: 200 concurrent requests for one uncached release against one request.

Each measurement starts a proxy on an empty data directory; the git server
counts the upload-pack requests that ask for objects.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from tests.bench.common import MB, ZIP_ACCEPT, Result, log, median, spread
from tests.bench.context import Context
from tests.bench.repos import source_package

NAME = "coalescing"
TARGET = 1.1
CONCURRENCY = 200


def _burst(url: str, count: int, workdir: Path) -> tuple[float, set[int]]:
    """`count` simultaneous GETs by one curl process (C, so the client is not
    the bottleneck); returns the wall time and the set of body lengths."""
    config = workdir / f"burst-{count}.curl"
    config.write_text(f'url = "{url}"\noutput = "/dev/null"\n' * count)
    command = [
        "curl", "--silent", "--show-error", "--fail",
        "--parallel", "--parallel-immediate", "--parallel-max", str(count),
        "--header", f"Accept: {ZIP_ACCEPT}",
        "--write-out", "%{http_code} %{size_download}\\n",
        "--config", str(config),
    ]  # fmt: skip
    started = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, check=False, timeout=600, text=True)
    elapsed = time.perf_counter() - started
    answers = [line.split() for line in completed.stdout.splitlines()]
    if completed.returncode != 0 or len(answers) != count or any(a[0] != "200" for a in answers):
        raise RuntimeError(f"curl burst failed: {completed.stderr or completed.stdout[:500]}")
    return elapsed, {int(answer[1]) for answer in answers}


def run(ctx: Context) -> Result:
    log(f"{NAME}: generating a package")
    package = source_package(
        ctx.git_root,
        ctx.path("work"),
        "Medium",
        text_files=3_000,
        binary_files=8,
        binary_size=256 * 1024,
        history=3,
    )
    path = f"/{package.scope}/{package.name}/1.0.0.zip"
    times: dict[int, list[float]] = {1: [], CONCURRENCY: []}
    fetches: dict[int, list[int]] = {1: [], CONCURRENCY: []}
    warm: list[float] = []  # the same burst once cached: the cost of sending it
    archive = 0
    for repeat in range(ctx.repeats):
        for count in (1, CONCURRENCY) if repeat % 2 == 0 else (CONCURRENCY, 1):
            with ctx.proxy(ctx.workdir / f"coalescing-{count}-{repeat}") as proxy:
                ctx.git.reset()
                elapsed, sizes = _burst(proxy.url + path, count, ctx.workdir)
                if len(sizes) != 1:
                    raise RuntimeError(f"responses of different lengths: {sorted(sizes)}")
                archive = sizes.pop()
                times[count].append(elapsed)
                fetches[count].append(ctx.git.fetches)
                if count == CONCURRENCY:
                    warm.append(_burst(proxy.url + path, count, ctx.workdir)[0])
        log(
            f"{NAME}: repeat {repeat + 1}: 1 request {times[1][-1]:.2f} s, "
            f"{CONCURRENCY} requests {times[CONCURRENCY][-1]:.2f} s "
            f"({fetches[CONCURRENCY][-1]} fetches)"
        )
    ratio = median(times[CONCURRENCY]) / median(times[1])
    upstream = max(fetches[CONCURRENCY])
    return Result(
        NAME,
        ratio,
        f"<= {TARGET}",
        ratio <= TARGET and upstream == 1,
        f"{CONCURRENCY} requests {spread(times[CONCURRENCY])} s vs 1 request "
        f"{spread(times[1])} s; upstream fetches {upstream} (single: {max(fetches[1])}); "
        f"the same {CONCURRENCY} requests warm {spread(warm)} s "
        f"({package.files} files, {archive / MB:.1f} MB archive, median of {ctx.repeats})",
    )
