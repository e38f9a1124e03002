"""Scenario 3: cold archive build against `git clone --depth 1` + `git archive`.

The repository has a real-world shape (3,000 commits, 150 release tags,
10,001 files and 99 MB at the measured tag, binary resources replaced over
its history, repacked with deltas as a host stores it); the measured tag is
the newest release, the one a first request asks for. Both sides fetch it
from the same smart-HTTP server on loopback. The proxy starts from an empty
data directory every time (started before the clock runs); the clock covers
the request until the last byte of the archive. Bytes are request and
response bodies as the git server saw them.
"""

from __future__ import annotations

import shutil
import subprocess
import time

from tests.bench.common import MB, ZIP_ACCEPT, Result, clean_env, download, log, median, spread
from tests.bench.context import Context
from tests.bench.history import Shape, history_package

NAME = "cold-build"
TIME_TARGET = 1.0
BYTES_TARGET = 1.2
FULL = Shape(text_files=9_800, binary_files=200, commits=3_000, tags=150, binary_every=20)
QUICK = Shape(text_files=1_950, binary_files=50, commits=600, tags=30, binary_every=20)


def _git_side(ctx: Context, remote: str, tag: str, top: str, scratch_name: str) -> float:
    scratch = ctx.workdir / scratch_name
    env = clean_env(ctx.path("cold-build-home"))
    started = time.perf_counter()
    clone = ["git", "-c", "advice.detachedHead=false", "clone", "--quiet", "--depth", "1"]
    subprocess.run([*clone, "--branch", tag, remote, str(scratch / "clone")], env=env, check=True)
    subprocess.run(
        ["git", "archive", "--format", "zip", f"--prefix={top}/",
         "-o", str(scratch / "archive.zip"), tag],
        env=env, cwd=scratch / "clone", check=True,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    shutil.rmtree(scratch, ignore_errors=True)
    return elapsed


def run(ctx: Context) -> Result:
    shape = QUICK if ctx.quick else FULL
    log(f"{NAME}: generating {shape.commits} commits, {shape.tags} tags")
    history = history_package(ctx.git_root, "Large", shape)
    package, tag = history.package, history.last_tag
    log(
        f"{NAME}: {package.files} files, {package.content_bytes / MB:.0f} MB at {tag}, "
        f"{history.packed_bytes / MB:.0f} MB packed"
    )
    remote = f"{ctx.git.url}/{package.scope}/{package.name}.git"
    timings: dict[str, list[float]] = {"proxy": [], "git": []}
    transferred: dict[str, int] = {}
    for repeat in range(ctx.repeats):
        for side in ("proxy", "git") if repeat % 2 == 0 else ("git", "proxy"):
            if side == "proxy":
                scratch = ctx.workdir / f"cold-build-proxy-{repeat}"
                with ctx.proxy(scratch / "data") as proxy:
                    ctx.git.reset()
                    started = time.perf_counter()
                    download(f"{proxy.url}/{package.scope}/{package.name}/{tag}.zip", ZIP_ACCEPT)
                    timings["proxy"].append(time.perf_counter() - started)
                shutil.rmtree(scratch, ignore_errors=True)
            else:
                ctx.git.reset()
                timings["git"].append(
                    _git_side(ctx, remote, tag, package.identity, f"cold-build-git-{repeat}")
                )
            transferred[side] = ctx.git.sent + ctx.git.received
        log(
            f"{NAME}: repeat {repeat + 1}: proxy {timings['proxy'][-1]:.1f} s, "
            f"git {timings['git'][-1]:.1f} s"
        )
    ratio = median(timings["proxy"]) / median(timings["git"])
    bytes_ratio = transferred["proxy"] / transferred["git"]
    return Result(
        NAME,
        ratio,
        f"<= {TIME_TARGET:g}",
        ratio <= TIME_TARGET and bytes_ratio <= BYTES_TARGET,
        f"proxy {spread(timings['proxy'])} s vs git {spread(timings['git'])} s; "
        f"bytes {bytes_ratio:.2f}x (target <= {BYTES_TARGET:g}): proxy "
        f"{transferred['proxy'] / MB:.1f} MB vs git {transferred['git'] / MB:.1f} MB "
        f"({package.files} files, {package.content_bytes / MB:.0f} MB at {tag}; "
        f"{history.commits} commits, {len(history.tags)} tags, "
        f"{history.packed_bytes / MB:.0f} MB packed; median of {ctx.repeats})",
    )
