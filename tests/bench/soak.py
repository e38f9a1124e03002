"""Scenario: a mixed-load soak of `serve --workers 2`: errors, log lines and memory.

For two minutes (20 s with --quick), wrk keeps 8 connections busy with cached
requests (release list, metadata, manifest and archive of a cached package),
while another client, every half second, asks for a release nobody fetched
yet from six concurrent connections (archive, metadata, manifest: one fill
across both workers), for `/identifiers` of its repository and for a package
no upstream has (404). Counted as errors: any answer other than the expected
one, and any connection error or timeout. Every line the server writes on
stderr must be a JSON object, and stdout must stay empty. The resident memory
of the whole process tree (supervisor, workers and their build processes) is
sampled every second after a warm-up (eight releases filled at once, so that
every worker's build processes have started); "flat" compares the mean of
the last 15 s with that of the first 15 s.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tests.bench.common import MB, Proxy, Result, download, http_get, log, tree_status_kib
from tests.bench.context import Context
from tests.bench.load import Wrk, WrkRun
from tests.bench.repos import Generated, source_package

NAME = "soak"
TARGET_MB = 100
WORKERS = 2
CONNECTIONS = 8
CHURN_EVERY_SECONDS = 0.5
CHURN_REPOSITORIES = 4
WINDOW_SECONDS = 15
WARM_UP = 8


@dataclass
class _Churn:
    """Cold releases, asked for while the cached load runs."""

    proxy: Proxy
    releases: list[tuple[Generated, str]]
    git_url: str
    statuses: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    filled: int = 0

    def _get(self, path: str, expected: int) -> None:
        try:
            download(self.proxy.url + path, timeout=120)
            status = 200
        except urllib.error.HTTPError as error:
            status = error.code
        except OSError as error:
            self.failures.append(f"{path}: {error}")
            self.statuses["error"] += 1
            return
        self.statuses[str(status)] += 1
        if status != expected:
            self.failures.append(f"{path}: {status}")

    def fill(self, number: int, package: Generated, version: str, pool: ThreadPoolExecutor) -> None:
        base = f"/{package.scope}/{package.name}/{version}"
        paths = [f"{base}.zip"] * 4 + [base, f"{base}/Package.swift"]
        list(pool.map(lambda path: self._get(path, 200), paths))
        self.filled += 1
        repository = f"{self.git_url}/{package.scope}/{package.name}.git"
        self._get(f"/identifiers?url={repository}", 200)
        self._get(f"/{package.scope}/Missing{number}", 404)

    def run(self, stop: threading.Event) -> None:
        with ThreadPoolExecutor(6) as pool:
            for number, (package, version) in enumerate(self.releases):
                if stop.is_set():
                    return
                began = time.monotonic()
                self.fill(number, package, version, pool)
                stop.wait(max(0.0, CHURN_EVERY_SECONDS - (time.monotonic() - began)))

    def all_at_once(self) -> None:
        """Every release at once: each worker fills several, so that all its
        build processes start."""
        releases = len(self.releases)
        with ThreadPoolExecutor(releases) as fills, ThreadPoolExecutor(6 * releases) as requests:
            waiting = [
                fills.submit(self.fill, number, package, version, requests)
                for number, (package, version) in enumerate(self.releases)
            ]
            for future in waiting:
                future.result()


def _packages(ctx: Context) -> tuple[Generated, list[tuple[Generated, str]]]:
    tags = [f"1.{minor}.0" for minor in range(4)]
    cached = source_package(
        ctx.git_root, ctx.path("work"), "Hot", text_files=40, tags=iter(tags), history=len(tags)
    )
    # Enough for a release every CHURN_EVERY_SECONDS all along the full run.
    per_repository = 64
    churn = []
    for number in range(CHURN_REPOSITORIES):
        versions = [f"2.{minor}.0" for minor in range(per_repository)]
        package = source_package(
            ctx.git_root,
            ctx.path("work"),
            f"Churn{number}",
            text_files=60,
            tags=iter(versions),
            history=per_repository,
            seed=100 + number,
        )
        churn += [(package, version) for version in versions]
    # Interleaved, so that fetches go into every mirror all along.
    churn.sort(key=lambda release: (release[1], release[0].name))
    return cached, churn


def _log_lines(proxy: Proxy) -> tuple[int, list[str]]:
    """How many stderr lines there are, and those that are not JSON objects."""
    lines = proxy.log_path.read_bytes().splitlines()
    bad = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            bad.append(line[:200].decode("utf-8", "replace"))
    return len(lines), bad


def _sample(pid: int, samples: list[float], stop: threading.Event) -> None:
    while not stop.is_set():
        samples.append(tree_status_kib(pid, "VmRSS") * 1024 / MB)
        stop.wait(1.0)


def run(ctx: Context) -> Result:
    log(f"{NAME}: generating packages")
    cached, churn = _packages(ctx)
    seconds = 20.0 if ctx.quick else 120.0
    base = f"/{cached.scope}/{cached.name}"
    paths = [base]
    for minor in range(4):
        paths += [f"{base}/1.{minor}.0", f"{base}/1.{minor}.0/Package.swift"]
        paths += [f"{base}/1.{minor}.0.zip"]
    with ctx.proxy(ctx.path("soak-data"), workers=WORKERS) as proxy:
        for path in paths:
            http_get(proxy.url + path)
        # Warm-up: every worker has filled several releases at once, so all
        # its build processes run.
        warm = _Churn(proxy, churn[:WARM_UP], ctx.git.url)
        warm.all_at_once()
        stop = threading.Event()
        memory: list[float] = []
        churn_load = _Churn(proxy, churn[WARM_UP:], ctx.git.url)
        threads = [
            threading.Thread(target=_sample, args=(proxy.pid, memory, stop)),
            threading.Thread(target=churn_load.run, args=(stop,)),
        ]
        load = Wrk(proxy.url, paths, connections=CONNECTIONS, workdir=ctx.workdir).start()
        for thread in threads:
            thread.start()
        stop.wait(seconds)
        stop.set()
        for thread in threads:
            thread.join()
        cached_run = load.stop(check=False)
    return _result(proxy, cached_run, warm, churn_load, memory, seconds)


def _result(
    proxy: Proxy, cached: WrkRun, warm: _Churn, churn: _Churn, memory: list[float], seconds: float
) -> Result:
    lines, bad_lines = _log_lines(proxy)
    stdout = Path(proxy.stdout_path).read_bytes()
    errors = cached.errors + cached.bad_statuses + len(warm.failures) + len(churn.failures)
    window = max(1, min(WINDOW_SECONDS, len(memory) // 2))
    first = sum(memory[:window]) / window
    last = sum(memory[-window:]) / window
    growth = last - first
    passed = errors == 0 and not bad_lines and not stdout and growth <= TARGET_MB
    churned = sum(churn.statuses.values())
    return Result(
        NAME,
        growth,
        f"<= {TARGET_MB} MB",
        passed,
        f"{seconds:.0f} s on --workers {WORKERS}: {errors} errors "
        f"({cached.requests} cached requests by wrk, {cached.requests / cached.seconds:.0f}/s, "
        f"{cached.errors} socket errors, {cached.bad_statuses} bad statuses; {churn.filled} "
        f"cold releases filled, {churned} requests: {dict(sorted(churn.statuses.items()))}"
        f"{'; ' + '; '.join(churn.failures[:3]) if churn.failures else ''}); "
        f"{lines} stderr lines, {len(bad_lines)} not JSON, {len(stdout)} bytes on stdout; "
        f"RSS of the process tree {first:.0f} -> {last:.0f} MB "
        f"(min {min(memory):.0f}, max {max(memory):.0f}, means of the first and last "
        f"{window} s)",
        unit=" MB",
    )
