"""Scenario 2: warm release-list and metadata requests per second against nginx.

The same JSON bodies, fetched from the proxy, are what nginx serves as static
files; wrk cycles through the release list and every version's metadata.
"""

from __future__ import annotations

from tests.bench.common import CORES, JSON_ACCEPT, Nginx, Result, http_get, log, median, spread
from tests.bench.context import Context
from tests.bench.load import wrk
from tests.bench.repos import source_package

NAME = "metadata"
TARGET = 0.3
CONNECTIONS = 64
VERSIONS = 20


def run(ctx: Context) -> Result:
    log(f"{NAME}: generating a package with {VERSIONS} releases")
    tags = [f"1.{minor}.0" for minor in range(VERSIONS)]
    package = source_package(
        ctx.git_root, ctx.path("work"), "Meta", text_files=30, tags=iter(tags), history=VERSIONS
    )
    base = f"/{package.scope}/{package.name}"
    paths = [base] + [f"{base}/{tag}" for tag in tags]
    data_dir = ctx.path("metadata-data")
    root = ctx.path("metadata-static")
    with ctx.proxy(data_dir) as single, ctx.proxy(data_dir, workers=CORES) as multi:
        static_paths = []
        for index, path in enumerate(paths):
            body = http_get(single.url + path, JSON_ACCEPT)  # fills every release
            (root / f"{index}.json").write_bytes(body)
            static_paths.append(f"/{index}.json")
        with Nginx(ctx.workdir, root) as nginx:
            figures: dict[str, list[float]] = {"nginx": [], "proxy": [], "workers": []}
            targets: list[tuple[str, str, list[str]]] = [
                ("nginx", nginx.url, static_paths),
                ("proxy", single.url, paths),
                ("workers", multi.url, paths),
            ]
            for repeat in range(ctx.repeats):
                shift = repeat % len(targets)
                for name, url, which in targets[shift:] + targets[:shift]:
                    run_ = wrk(
                        url,
                        which,
                        connections=CONNECTIONS,
                        seconds=ctx.load_seconds,
                        workdir=ctx.workdir,
                        headers={"Accept": JSON_ACCEPT},
                    )
                    figures[name].append(run_.requests_per_second)
                log(
                    f"{NAME}: repeat {repeat + 1}: "
                    + ", ".join(
                        f"{name} {values[-1]:.0f} req/s" for name, values in figures.items()
                    )
                )
    reference = median(figures["nginx"])
    ratio = median(figures["proxy"]) / reference
    workers_ratio = median(figures["workers"]) / reference
    return Result(
        NAME,
        ratio,
        f">= {TARGET}",
        ratio >= TARGET,
        f"proxy {spread(figures['proxy'], '{:.0f}')} req/s, "
        f"proxy --workers {CORES} {spread(figures['workers'], '{:.0f}')} req/s "
        f"(ratio {workers_ratio:.2f}) vs nginx {spread(figures['nginx'], '{:.0f}')} req/s "
        f"(list + {VERSIONS} metadata documents, c={CONNECTIONS}, "
        f"{ctx.repeats}x{ctx.load_seconds:g} s each)",
    )
