"""The `spm-proxy` command."""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from proxy.app import create_app
from proxy.config import ConfigError, Settings, default_config_text, load_settings
from proxy.logging import configure_logging
from proxy.wiring import check_credentials


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spm-proxy",
        description="Caching pull-through proxy for the Swift Package Registry protocol.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the registry server")
    serve.add_argument(
        "--config",
        type=Path,
        default=os.environ.get("SPM_PROXY_CONFIG"),
        help="TOML configuration file (default: $SPM_PROXY_CONFIG, else the embedded default)",
    )
    serve.add_argument("--host", help="address to listen on (server.host)")
    serve.add_argument("--port", type=int, help="port to listen on (server.port)")
    serve.add_argument("--data-dir", type=Path, help="where the cache lives (server.data_dir)")
    serve.add_argument("--public-url", help="base URL clients use (server.public_url)")
    serve.add_argument(
        "--workers", type=int, help="server processes sharing port and data (server.workers)"
    )
    serve.add_argument(
        "--log-level", choices=["debug", "info", "warning", "error"], help="log.level"
    )
    serve.add_argument("--log-format", choices=["auto", "json", "console"], help="log.format")
    serve.add_argument(
        "--offline",
        action="store_true",
        default=None,
        help="never contact any upstream; serve only what is cached (offline)",
    )

    commands.add_parser("default-config", help="print the embedded default configuration")
    return parser


def _flag_overrides(args: argparse.Namespace) -> dict[str, Any]:
    server = {
        key: value
        for key, value in {
            "host": args.host,
            "port": args.port,
            "data_dir": args.data_dir,
            "public_url": args.public_url,
            "workers": args.workers,
        }.items()
        if value is not None
    }
    log = {
        key: value
        for key, value in {"level": args.log_level, "format": args.log_format}.items()
        if value is not None
    }
    overrides: dict[str, Any] = {}
    if args.offline:
        overrides["offline"] = True
    if server:
        overrides["server"] = server
    if log:
        overrides["log"] = log
    return overrides


def _run_server(settings: Settings) -> None:
    configure_logging(settings.log.level, settings.log.format)
    web.run_app(
        create_app(settings),
        host=settings.server.host,
        port=settings.server.port,
        # Several workers bind the same port; the kernel spreads connections.
        reuse_port=settings.server.workers > 1,
        access_log=None,  # one structured line per request comes from our middleware
        print=lambda message: print(message, file=sys.stderr),
    )


def _serve(settings: Settings) -> int:
    workers = settings.server.workers
    if workers == 1:
        _run_server(settings)
        return 0
    if settings.server.port == 0:
        print("spm-proxy: server.port must be fixed when workers > 1", file=sys.stderr)
        return 2
    # Fresh interpreters, not forks: no event loop or open file is inherited.
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_run_server, args=(settings,), name=f"spm-proxy worker {n}")
        for n in range(workers)
    ]
    for process in processes:
        process.start()

    def stop(signum: int, _frame: object) -> None:
        for process in processes:
            if process.pid is not None and process.is_alive():
                os.kill(process.pid, signum)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    for process in processes:
        process.join()
    return max((process.exitcode or 0) for process in processes)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "default-config":
        sys.stdout.write(default_config_text())
        return 0
    try:
        settings = load_settings(args.config, _flag_overrides(args))
        check_credentials(settings, dict(os.environ))
    except ConfigError as exc:
        print(f"spm-proxy: {exc}", file=sys.stderr)
        return 2
    return _serve(settings)
