"""The `spm-proxy` command."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

import structlog
from pydantic import ByteSize, TypeAdapter, ValidationError

from proxy.config import (
    ConfigError,
    Settings,
    check_data_dir,
    default_config_text,
    load_settings,
)
from proxy.logs import configure_logging, use_json
from proxy.offline import commands
from proxy.serve import serve
from proxy.wiring import check_credentials, prepare_data_dir


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        type=Path,
        default=os.environ.get("SPM_PROXY_CONFIG"),
        help="TOML configuration file (default: $SPM_PROXY_CONFIG, else the embedded default)",
    )
    common.add_argument("--data-dir", type=Path, help="where the cache lives (server.data_dir)")
    common.add_argument(
        "--log-level", choices=["debug", "info", "warning", "error"], help="log.level"
    )
    common.add_argument("--log-format", choices=["auto", "json", "console"], help="log.format")
    common.add_argument(
        "--offline",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="never contact any upstream; use only what is cached (offline)",
    )
    return common


def _selection_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--resolved",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="a Package.resolved file (format 1, 2 or 3); repeatable",
    )
    command.add_argument(
        "--package",
        action="append",
        default=[],
        metavar="SPEC",
        help="ID (latest), ID@1.2.3, ID@1.2.0..<2.0.0 or ID@from:1.2.0; repeatable",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spm-proxy",
        description="Caching pull-through proxy for the Swift Package Registry protocol.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = _common_options()

    serve = commands.add_parser("serve", parents=[common], help="run the registry server")
    serve.add_argument("--host", help="address to listen on (server.host)")
    serve.add_argument("--port", type=int, help="port to listen on (server.port)")
    serve.add_argument("--public-url", help="base URL clients use (server.public_url)")
    serve.add_argument(
        "--workers", type=int, help="server processes sharing port and data (server.workers)"
    )

    _offline_commands(commands, common)
    commands.add_parser("default-config", help="print the embedded default configuration")
    return parser


def _offline_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """The commands of the offline workflow and the data directory's upkeep."""
    warm = commands.add_parser(
        "warm", parents=[common], help="fill the cache from Package.resolved files or packages"
    )
    _selection_options(warm)
    warm.add_argument("--jobs", type=int, help="releases fetched at once")

    export = commands.add_parser(
        "export", parents=[common], help="write a verified bundle of cached releases"
    )
    export.add_argument("-o", "--output", type=Path, required=True, help="bundle file to write")
    _selection_options(export)

    import_ = commands.add_parser(
        "import", parents=[common], help="verify a bundle, then add it to the cache"
    )
    import_.add_argument("bundle", type=Path)

    verify = commands.add_parser(
        "verify", parents=[common], help="re-hash every stored blob against the ledger"
    )
    verify.add_argument(
        "--no-refetch", action="store_true", help="only report and quarantine corrupt blobs"
    )

    gc = commands.add_parser(
        "gc", parents=[common], help="keep the data directory under its size limit"
    )
    gc.add_argument("--max-size", help="size limit, e.g. 50GiB (cache.max_disk_size)")
    gc.add_argument(
        "--prune",
        action="append",
        default=[],
        metavar="SPEC",
        help="also remove these cached releases (ID or ID@VERSIONS); their ledger stays",
    )
    gc.add_argument("--dry-run", action="store_true", help="show what would go, change nothing")

    migrate = commands.add_parser(
        "migrate",
        parents=[common],
        help="upgrade the data directory to this version's format (start-up does it too)",
    )
    migrate.add_argument(
        "--check",
        action="store_true",
        help="only say what an upgrade would change; exit status 1 when one is pending",
    )


def _flag_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given as flags: the top layer, above the environment."""
    server = {
        key: value
        for key, value in {
            "host": getattr(args, "host", None),
            "port": getattr(args, "port", None),
            "data_dir": args.data_dir,
            "public_url": getattr(args, "public_url", None),
            "workers": getattr(args, "workers", None),
        }.items()
        if value is not None
    }
    log = {
        key: value
        for key, value in {"level": args.log_level, "format": args.log_format}.items()
        if value is not None
    }
    overrides: dict[str, Any] = {}
    if args.offline is not None:
        overrides["offline"] = args.offline
    if server:
        overrides["server"] = server
    if log:
        overrides["log"] = log
    return overrides


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Flags over environment over file over the embedded default."""
    # Commands report through their own output; their logs are for trouble,
    # unless the file, the environment or a flag asks for more.
    defaults = {} if args.command == "serve" else {"log": {"level": "warning"}}
    return load_settings(args.config, _flag_overrides(args), defaults=defaults)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    return _parser().parse_args(argv)


def _run_command(args: argparse.Namespace, settings: Settings) -> int:
    configure_logging(settings.log.level, settings.log.format)
    if args.command == "gc":
        return _gc(args, settings)
    runs: dict[str, Callable[[], Coroutine[Any, Any, int]]] = {
        "migrate": lambda: commands.migrate(settings, check=args.check),
        "warm": lambda: commands.warm(settings, args.resolved, args.package, args.jobs),
        "export": lambda: commands.export(settings, args.output, args.resolved, args.package),
        "import": lambda: commands.import_(settings, args.bundle),
        "verify": lambda: commands.verify(settings, refetch=not args.no_refetch),
    }
    return asyncio.run(runs[args.command]())


def _gc(args: argparse.Namespace, settings: Settings) -> int:
    max_size = None
    if args.max_size is not None:
        try:
            max_size = int(TypeAdapter(ByteSize).validate_python(args.max_size))
        except ValidationError as exc:
            print(f"spm-proxy gc: --max-size {args.max_size!r}: {exc}", file=sys.stderr)
            return 2
    return asyncio.run(commands.gc(settings, max_size, args.prune, args.dry_run))


def _refuse(args: argparse.Namespace, settings: Settings, error: ConfigError) -> int:
    if args.command == "serve" and use_json(settings.log.format):
        # A log shipper reading the server's stderr gets the refusal as a record too.
        configure_logging(settings.log.level, settings.log.format)
        structlog.get_logger().error("startup_refused", error=str(error))
    else:
        print(f"spm-proxy: {error}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "default-config":
        sys.stdout.write(default_config_text())
        return 0
    try:
        settings = settings_from_args(args)
    except ConfigError as exc:
        # Before the settings are valid, log.format is unknown: plain text.
        print(f"spm-proxy: {exc}", file=sys.stderr)
        return 2
    if args.command == "migrate" and args.check:
        # A check reads only: it neither creates nor probes the directory.
        return _run_command(args, settings)
    try:
        check_credentials(settings, dict(os.environ))
        check_data_dir(settings)
        if args.command != "migrate":
            _prepare(settings)
    except ConfigError as exc:
        return _refuse(args, settings, exc)
    if args.command == "serve":
        return serve(settings)
    return _run_command(args, settings)


def _prepare(settings: Settings) -> None:
    """Upgrade an older data directory before anything opens it (ConfigError: refused)."""
    configure_logging(settings.log.level, settings.log.format)
    asyncio.run(prepare_data_dir(settings))
