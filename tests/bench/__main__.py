"""`python -m tests.bench [--quick] [--only NAME ...] [--keep]`: run the benchmark suite.

Prints one line per scenario on stdout (progress goes to stderr). The exit
status is 1 when a scenario could not run, not when a target is missed: a
miss is a finding, documented in the README's Performance section.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
import traceback
from collections.abc import Callable, Sequence

from tests.bench import (
    coalescing,
    cold_build,
    download,
    graph,
    latency,
    memory,
    metadata,
    resolve,
    soak,
)
from tests.bench.common import Result, log
from tests.bench.context import Context

SCENARIOS: dict[str, Callable[[Context], Result]] = {
    download.NAME: download.run,
    metadata.NAME: metadata.run,
    cold_build.NAME: cold_build.run,
    coalescing.NAME: coalescing.run,
    latency.NAME: latency.run,
    memory.NAME: memory.run,
    resolve.NAME: resolve.run,
    graph.NAME: graph.run,
    soak.NAME: soak.run,
}
REQUIRED_TOOLS = ("git", "nginx", "wrk", "curl")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smaller inputs, one repetition, short load runs (for development; "
        "the targets are meant for full runs)",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=list(SCENARIOS),
        metavar="NAME",
        help=f"run only this scenario (repeatable): {', '.join(SCENARIOS)}",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the working directory (for investigation)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if missing:
        print(f"bench: missing tools: {', '.join(missing)} (make bench installs them)")
        return 2
    selected = args.only or list(SCENARIOS)
    failed = False
    started = time.monotonic()
    with Context(quick=args.quick, keep=args.keep) as ctx:
        log(f"working in {ctx.workdir}")
        for name in selected:
            began = time.monotonic()
            try:
                result = SCENARIOS[name](ctx)
            except Exception as exc:  # noqa: BLE001 - report and go on with the next scenario
                traceback.print_exc()
                result = Result(name, None, "-", None, f"ERROR: {exc}")
                failed = True
            print(result.line(), flush=True)
            log(f"{name} took {time.monotonic() - began:.0f} s")
    mode = " (--quick: reduced inputs)" if args.quick else ""
    print(f"total {time.monotonic() - started:.0f} s{mode}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
