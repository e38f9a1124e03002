"""Scenario 3: cold archive build against `git clone --depth 1` + `git archive`.

Both sides fetch the same tag from the same smart-HTTP upstream. The proxy
starts from an empty data directory every time (started before the clock
runs); the clock covers the request until the last byte of the archive.
"""

from __future__ import annotations

import shutil
import subprocess
import time

from tests.bench.common import (
    MB,
    ZIP_ACCEPT,
    Context,
    Result,
    clean_env,
    download,
    log,
    median,
    spread,
)
from tests.bench.repos import source_package

NAME = "cold-build"
TARGET = 1.2


def run(ctx: Context) -> Result:
    text_files, binary_files = (2_000, 40) if ctx.quick else (10_000, 280)
    log(f"{NAME}: generating a package with {text_files + binary_files} files")
    package = source_package(
        ctx.git_root,
        ctx.path("work"),
        "Large",
        text_files=text_files,
        binary_files=binary_files,
        binary_size=256 * 1024,
        history=3,
    )
    log(f"{NAME}: {package.files} files, {package.content_bytes / MB:.0f} MB")
    remote = f"{ctx.git.url}/{package.scope}/{package.name}.git"
    proxied: list[float] = []
    cloned: list[float] = []
    clone_parts: list[tuple[float, float]] = []
    sizes: dict[str, int] = {}
    home = ctx.path("cold-build-home")
    for repeat in range(ctx.repeats):
        for side in ("proxy", "git") if repeat % 2 == 0 else ("git", "proxy"):
            scratch = ctx.workdir / f"cold-build-{side}-{repeat}"
            if side == "proxy":
                with ctx.proxy(scratch / "data") as proxy:
                    started = time.perf_counter()
                    sizes["proxy"] = download(
                        f"{proxy.url}/{package.scope}/{package.name}/1.0.0.zip", ZIP_ACCEPT
                    )
                    proxied.append(time.perf_counter() - started)
            else:
                env = clean_env(home)
                started = time.perf_counter()
                clone = ["git", "-c", "advice.detachedHead=false", "clone", "--quiet"]
                subprocess.run(
                    [*clone, "--depth", "1", "--branch", "1.0.0", remote, str(scratch / "clone")],
                    env=env,
                    check=True,
                )
                middle = time.perf_counter()
                subprocess.run(
                    ["git", "archive", "--format", "zip", f"--prefix={package.identity}/",
                     "-o", str(scratch / "archive.zip"), "1.0.0"],
                    env=env, cwd=scratch / "clone", check=True,
                )  # fmt: skip
                ended = time.perf_counter()
                cloned.append(ended - started)
                clone_parts.append((middle - started, ended - middle))
                sizes["git"] = (scratch / "archive.zip").stat().st_size
            shutil.rmtree(scratch, ignore_errors=True)
        log(f"{NAME}: repeat {repeat + 1}: proxy {proxied[-1]:.1f} s, git {cloned[-1]:.1f} s")
    ratio = median(proxied) / median(cloned)
    clone_s = median([part[0] for part in clone_parts])
    archive_s = median([part[1] for part in clone_parts])
    return Result(
        NAME,
        ratio,
        f"<= {TARGET}",
        ratio <= TARGET,
        f"proxy {spread(proxied)} s vs git {spread(cloned)} s "
        f"(clone {clone_s:.2f} s + archive {archive_s:.2f} s; {package.files} files, "
        f"{package.content_bytes / MB:.0f} MB, zip {sizes['proxy'] / MB:.0f} MB proxy / "
        f"{sizes['git'] / MB:.0f} MB git, 3 commits, median of {ctx.repeats})",
    )
