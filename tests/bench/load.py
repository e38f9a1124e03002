"""Load generation with wrk: request rates and throughput, errors refused."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.bench.common import CORES, MB

_WRK_SCRIPT = """\
local paths = {%(paths)s}
local headers = {%(headers)s}
local counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", paths[(counter %% #paths) + 1], headers)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%%d,"bytes":%%d,"duration_us":%%d,"errors":%%d,"status":%%d}\\n',
    summary.requests, summary.bytes, summary.duration,
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""


@dataclass(frozen=True, slots=True)
class WrkRun:
    requests: int
    bytes: int
    seconds: float

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.seconds

    @property
    def megabytes_per_second(self) -> float:
        return self.bytes / self.seconds / MB


def _lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string literal is a valid Lua string literal here


def wrk(
    base_url: str,
    paths: Sequence[str],
    *,
    connections: int,
    seconds: float,
    workdir: Path,
    headers: dict[str, str] | None = None,
    threads: int = CORES,
) -> WrkRun:
    script = workdir / f"wrk-{time.monotonic_ns()}.lua"
    script.write_text(
        _WRK_SCRIPT
        % {
            "paths": ", ".join(_lua_string(path) for path in paths),
            "headers": ", ".join(
                f"[{_lua_string(key)}] = {_lua_string(value)}"
                for key, value in (headers or {}).items()
            ),
        }
    )
    command = [
        shutil.which("wrk") or "wrk",
        f"-t{min(threads, connections)}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout", "120s",
        "-s", str(script),
        base_url,
    ]  # fmt: skip
    completed = subprocess.run(
        command, capture_output=True, check=False, timeout=seconds + 180, text=True
    )
    script.unlink()
    found = [line for line in completed.stdout.splitlines() if line.startswith("WRK_JSON ")]
    if completed.returncode != 0 or not found:
        raise RuntimeError(f"wrk failed: {completed.stdout}\n{completed.stderr}")
    summary = json.loads(found[-1].removeprefix("WRK_JSON "))
    if summary["errors"] or summary["status"]:
        raise RuntimeError(f"wrk saw errors against {base_url}: {summary}")
    return WrkRun(summary["requests"], summary["bytes"], summary["duration_us"] / 1e6)
