"""Scenario 5: resident memory while serving 20 concurrent downloads of a 500 MB archive.

The archive is built once through the proxy (its peak during the build is
reported too); then a fresh proxy process on the same data directory is
measured: idle VmRSS after a first request, then VmRSS sampled every 10 ms and
VmHWM (reset after the idle reading) while wrk keeps 20 downloads running.
"""

from __future__ import annotations

import time

from tests.bench.common import (
    JSON_ACCEPT,
    MB,
    ZIP_ACCEPT,
    Result,
    RssSampler,
    download,
    http_get,
    log,
    proc_status_kib,
    reset_peak_rss,
)
from tests.bench.context import Context
from tests.bench.load import wrk
from tests.bench.repos import source_package

NAME = "memory"
TARGET_MB = 100
DOWNLOADS = 20


def run(ctx: Context) -> Result:
    size = 100 * MB if ctx.quick else 500 * MB
    log(f"{NAME}: generating a {size // MB} MB package")
    package = source_package(
        ctx.git_root,
        ctx.path("work"),
        "Huge",
        text_files=20,
        binary_files=size // (5 * MB),
        binary_size=5 * MB,
        compression=0,
    )
    path = f"/{package.scope}/{package.name}/1.0.0.zip"
    data_dir = ctx.path("memory-data")
    with ctx.proxy(data_dir) as builder:
        log(f"{NAME}: building the archive through the proxy")
        # The server and its build processes, where the archive is built.
        with RssSampler(builder.pid, tree=True) as during_build:
            started = time.perf_counter()
            archive = download(builder.url + path, ZIP_ACCEPT)
            build_seconds = time.perf_counter() - started
    with ctx.proxy(data_dir) as proxy:
        http_get(f"{proxy.url}/{package.scope}/{package.name}/1.0.0", JSON_ACCEPT)
        time.sleep(1)
        idle = proc_status_kib(proxy.pid, "VmRSS")
        reset = reset_peak_rss(proxy.pid)
        seconds = 4.0 if ctx.quick else 10.0
        with RssSampler(proxy.pid) as sampler:
            served = wrk(
                proxy.url,
                [path],
                connections=DOWNLOADS,
                seconds=seconds,
                workdir=ctx.workdir,
                headers={"Accept": ZIP_ACCEPT},
            )
        hwm = proc_status_kib(proxy.pid, "VmHWM") if reset else 0
    peak = max(sampler.peak_kib, hwm)
    growth_mb = (peak - idle) * 1024 / MB
    return Result(
        NAME,
        growth_mb,
        f"<= {TARGET_MB} MB",
        growth_mb <= TARGET_MB,
        f"peak {growth_mb:.1f} MB above idle (idle {idle * 1024 / MB:.0f} MB, peak VmRSS "
        f"{sampler.peak_kib * 1024 / MB:.0f} MB over {sampler.samples} samples, VmHWM "
        f"{hwm * 1024 / MB if reset else float('nan'):.0f} MB); {DOWNLOADS} downloads of a "
        f"{archive / MB:.0f} MB archive served {served.bytes / MB:.0f} MB in "
        f"{served.seconds:.0f} s; cold build of it took {build_seconds:.0f} s, peak VmRSS of "
        f"the server and its build processes "
        f"{during_build.peak_kib * 1024 / MB:.0f} MB (RssAnon "
        f"{during_build.peak_anon_kib * 1024 / MB:.0f} MB; the rest is the mmap'd pack)",
        unit=" MB",
    )
