"""structlog set-up: one whole line per record, JSON when not on a terminal.

A log shipper reads stderr line by line, so every record must reach it whole.
structlog's `PrintLogger` uses `print()`, which may issue the text and its
newline as two writes (always so with `PYTHONUNBUFFERED=1`); a second process
writing to the same pipe in between splits both lines. Here each record is
written with one `os.write` of the complete line, under a lock, so threads of
one process never split each other's lines either. Across processes a single
write is atomic only up to PIPE_BUF bytes (POSIX `write()`), which a record with
a traceback can exceed: several workers therefore never share a descriptor,
their output is relayed line by line by one parent (see `proxy.supervisor`).

With `capture` (the server processes), records of the standard library's
`logging` (aiohttp, asyncio), warnings and uncaught exceptions go through the
same renderer, so nothing else reaches stderr as free text.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections.abc import MutableMapping
from types import TracebackType
from typing import Any, Literal

import structlog

Format = Literal["auto", "json", "console"]

_write_lock = threading.Lock()
_STANDARD_LEVELS = (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL)


def write_whole(fd: int, data: bytes) -> None:
    """Write `data` completely, one `os.write` unless the kernel takes less.

    A log that cannot be written (its reader is gone, the disk is full) drops
    the line: it must not fail the request that logs it, and there is nobody
    left to tell.
    """
    with _write_lock:
        view = memoryview(data)
        with contextlib.suppress(OSError):
            while view:
                # A blocking write returns early only when a signal interrupts
                # it; the lock keeps this process's other writers out of the gap.
                view = view[os.write(fd, view) :]


class LineLogger:
    """A structlog logger writing each rendered record as one line to `fd`."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def msg(self, message: str) -> None:
        write_whole(self._fd, message.encode("utf-8", "replace") + b"\n")

    log = debug = info = warn = warning = msg
    fatal = failure = err = error = critical = exception = msg


class LineLoggerFactory:
    def __init__(self, fd: int) -> None:
        self._logger = LineLogger(fd)

    def __call__(self, *args: Any) -> LineLogger:
        return self._logger


class _ToStructlog(logging.Handler):
    """Standard-library records (aiohttp, asyncio, warnings) as structlog events."""

    def emit(self, record: logging.LogRecord) -> None:
        level = max((lvl for lvl in _STANDARD_LEVELS if lvl <= record.levelno), default=10)
        fields: dict[str, Any] = {"logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            fields["exc_info"] = record.exc_info
        structlog.get_logger().log(level, "library_message", **fields)


def _add_pid(
    _logger: object, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    # With several workers, which process a line came from.
    event.setdefault("pid", os.getpid())
    return event


def use_json(fmt: Format, fd: int = 2) -> bool:
    return fmt == "json" or (fmt == "auto" and not os.isatty(fd))


def configure_logging(level: str, fmt: Format, *, fd: int = 2, capture: bool = False) -> None:
    """Set up structlog; `capture` also routes the standard library's logging,
    warnings and uncaught exceptions through it (for the server processes)."""
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if use_json(fmt, fd)
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _add_pid,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=LineLoggerFactory(fd),
        cache_logger_on_first_use=False,
    )
    if capture:
        _capture_foreign_output(logging.getLevelNamesMapping()[level.upper()])


def _log_uncaught(
    kind: type[BaseException], value: BaseException, traceback: TracebackType | None
) -> None:
    structlog.get_logger().error("uncaught_exception", exc_info=(kind, value, traceback))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is not None:
        structlog.get_logger().error(
            "uncaught_exception",
            thread=getattr(args.thread, "name", None),
            exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
        )


def _log_unraisable(unraisable: sys.UnraisableHookArgs) -> None:
    structlog.get_logger().warning(
        "unraisable_exception",
        message=unraisable.err_msg or "Exception ignored in",
        object=repr(unraisable.object),
        exc_info=(unraisable.exc_type, unraisable.exc_value, unraisable.exc_traceback),
    )


def _capture_foreign_output(level: int) -> None:
    root = logging.getLogger()
    root.handlers = [_ToStructlog()]
    root.setLevel(level)
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread
    sys.unraisablehook = _log_unraisable
