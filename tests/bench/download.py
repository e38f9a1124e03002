"""Scenario 1: warm archive download throughput against nginx with sendfile."""

from __future__ import annotations

from tests.bench.common import MB, ZIP_ACCEPT, Nginx, Result, http_get, log, median, spread
from tests.bench.context import Context
from tests.bench.load import wrk
from tests.bench.repos import source_package

NAME = "download"
TARGET = 0.9
CONNECTIONS = 16


def run(ctx: Context) -> Result:
    size = 10 * MB if ctx.quick else 50 * MB
    log(f"{NAME}: generating a {size // MB} MB package")
    package = source_package(
        ctx.git_root,
        ctx.path("work"),
        "Archive50",
        text_files=20,
        binary_files=size // MB,
        binary_size=MB,
        compression=0,
    )
    path = f"/{package.scope}/{package.name}/1.0.0.zip"
    root = ctx.path("download-static")
    with ctx.proxy(ctx.path("download-data")) as proxy:
        archive = http_get(proxy.url + path, ZIP_ACCEPT)
        (root / package.scope / package.name).mkdir(parents=True)
        (root / path.lstrip("/")).write_bytes(archive)
        with Nginx(ctx.workdir, root) as nginx:
            proxied: list[float] = []
            served: list[float] = []
            for repeat in range(ctx.repeats):
                order = [(proxy.url, proxied), (nginx.url, served)]
                for url, into in order if repeat % 2 == 0 else reversed(order):
                    run_ = wrk(
                        url,
                        [path],
                        connections=CONNECTIONS,
                        seconds=ctx.load_seconds,
                        workdir=ctx.workdir,
                        headers={"Accept": ZIP_ACCEPT},
                    )
                    into.append(run_.megabytes_per_second)
                log(
                    f"{NAME}: repeat {repeat + 1}: proxy {proxied[-1]:.0f} MB/s, "
                    f"nginx {served[-1]:.0f} MB/s"
                )
    ratio = median(proxied) / median(served)
    return Result(
        NAME,
        ratio,
        f">= {TARGET}",
        ratio >= TARGET,
        f"proxy {spread(proxied, '{:.0f}')} MB/s vs nginx {spread(served, '{:.0f}')} MB/s "
        f"({len(archive) / MB:.1f} MB archive, c={CONNECTIONS}, "
        f"{ctx.repeats}x{ctx.load_seconds:g} s each)",
    )
