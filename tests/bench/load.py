"""Load generation with wrk: request rates, throughput and latency, errors refused."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from tests.bench.common import CORES, MB

_WRK_SCRIPT = """\
local paths = {%(paths)s}
local headers = {%(headers)s}
local counter = 0
%(delay)s
request = function()
  counter = counter + 1
  return wrk.format("GET", paths[(counter %% #paths) + 1], headers)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%%d,"bytes":%%d,"duration_us":%%d,"errors":%%d,"status":%%d,' ..
    '"p50_us":%%d,"p99_us":%%d,"max_us":%%d}\\n',
    summary.requests, summary.bytes, summary.duration,
    e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


@dataclass(frozen=True, slots=True)
class WrkRun:
    requests: int
    bytes: int
    seconds: float
    # Request latencies, as wrk measured them, in milliseconds.
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    # Socket errors and timeouts; answers other than 2xx and 3xx.
    errors: int = 0
    bad_statuses: int = 0

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.seconds

    @property
    def megabytes_per_second(self) -> float:
        return self.bytes / self.seconds / MB


def _lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string literal is a valid Lua string literal here


class Wrk:
    """wrk running in the background until `stop()` (SIGINT: wrk then reports
    what it measured so far, as at the end of its duration). With `pause_ms`,
    each connection waits that long before each request (wrk's `delay()`):
    a steady load below saturation, where latency is not queueing."""

    def __init__(
        self,
        base_url: str,
        paths: Sequence[str],
        *,
        connections: int,
        workdir: Path,
        headers: dict[str, str] | None = None,
        threads: int = CORES,
        seconds: float = 3600,
        pause_ms: int = 0,
    ) -> None:
        self.base_url = base_url
        self.seconds = seconds
        self._script = workdir / f"wrk-{time.monotonic_ns()}.lua"
        self._script.write_text(
            _WRK_SCRIPT
            % {
                "delay": f"delay = function() return {pause_ms} end" if pause_ms else "",
                "paths": ", ".join(_lua_string(path) for path in paths),
                "headers": ", ".join(
                    f"[{_lua_string(key)}] = {_lua_string(value)}"
                    for key, value in (headers or {}).items()
                ),
            }
        )
        self._command = [
            shutil.which("wrk") or "wrk",
            f"-t{min(threads, connections)}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout", "120s",
            "-s", str(self._script),
            base_url,
        ]  # fmt: skip
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> Self:
        self._process = subprocess.Popen(
            self._command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        return self

    def stop(self, *, interrupt: bool = True, check: bool = True) -> WrkRun:
        """Interrupt wrk (or, with `interrupt` False, let it run its duration)
        and return its measurements; with `check`, any error raises."""
        assert self._process is not None
        if interrupt:
            self._process.send_signal(signal.SIGINT)
        try:
            stdout, stderr = self._process.communicate(timeout=self.seconds + 180)
        finally:
            self._script.unlink(missing_ok=True)
        found = [line for line in stdout.splitlines() if line.startswith("WRK_JSON ")]
        if not found:
            raise RuntimeError(f"wrk failed: {stdout}\n{stderr}")
        summary = json.loads(found[-1].removeprefix("WRK_JSON "))
        if check and (summary["errors"] or summary["status"]):
            raise RuntimeError(f"wrk saw errors against {self.base_url}: {summary}")
        return WrkRun(
            summary["requests"],
            summary["bytes"],
            summary["duration_us"] / 1e6,
            summary["p50_us"] / 1e3,
            summary["p99_us"] / 1e3,
            summary["max_us"] / 1e3,
            summary["errors"],
            summary["status"],
        )


def wrk(
    base_url: str,
    paths: Sequence[str],
    *,
    connections: int,
    seconds: float,
    workdir: Path,
    headers: dict[str, str] | None = None,
    threads: int = CORES,
    pause_ms: int = 0,
) -> WrkRun:
    """wrk for `seconds`."""
    run = Wrk(
        base_url,
        paths,
        connections=connections,
        workdir=workdir,
        headers=headers,
        threads=threads,
        seconds=seconds,
        pause_ms=pause_ms,
    )
    return run.start().stop(interrupt=False)
