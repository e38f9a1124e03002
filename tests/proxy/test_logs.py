"""Log records leave a process as whole lines, each with one write."""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from proxy.logs import configure_logging


@pytest.fixture
def log_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[int, Path]]:
    """A file descriptor to log to; every global the set-up touches is put back."""
    path = tmp_path / "log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(sys, "unraisablehook", sys.unraisablehook)
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    level = root.level
    try:
        yield fd, path
    finally:
        os.close(fd)
        root.setLevel(level)
        logging.captureWarnings(False)
        structlog.reset_defaults()


def _fail(error: Exception) -> None:
    raise error


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def test_each_record_is_one_write_of_the_whole_line(
    log_file: tuple[int, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    fd, path = log_file
    writes: list[bytes] = []
    real_write = os.write

    def counting_write(target: int, data: Any) -> int:
        if target == fd:
            writes.append(bytes(data))
        return real_write(target, data)

    monkeypatch.setattr(os, "write", counting_write)
    configure_logging("info", "json", fd=fd)
    # Far above PIPE_BUF: several processes' writes of this size to one pipe
    # may interleave, which is why workers each get a pipe of their own.
    structlog.get_logger().info("long_record", payload="x" * 100_000)
    structlog.get_logger().debug("filtered_out")

    assert len(writes) == 1
    assert writes[0].endswith(b"}\n")
    [record] = _records(path)
    assert record["event"] == "long_record"
    assert record["payload"] == "x" * 100_000
    assert record["pid"] == os.getpid()


def test_console_records_are_written_whole_too(log_file: tuple[int, Path]) -> None:
    fd, path = log_file
    configure_logging("info", "console", fd=fd)
    try:
        _fail(ValueError("boom"))
    except ValueError:
        structlog.get_logger().exception("request_failed")
    text = path.read_text()
    assert "request_failed" in text
    assert "ValueError: boom" in text
    assert text.endswith("\n")


def test_library_logging_warnings_and_uncaught_exceptions_become_records(
    log_file: tuple[int, Path],
) -> None:
    fd, path = log_file
    configure_logging("info", "json", fd=fd, capture=True)
    try:
        _fail(OSError("connection reset"))
    except OSError:
        logging.getLogger("aiohttp.server").exception("Error handling request")
    logging.getLogger("asyncio").debug("below the level")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("something is deprecated", DeprecationWarning, stacklevel=1)
    try:
        _fail(RuntimeError("nobody caught this"))
    except RuntimeError as error:
        sys.excepthook(RuntimeError, error, error.__traceback__)

    library, warned, uncaught = _records(path)
    assert library["event"] == "library_message"
    assert (library["logger"], library["message"]) == ("aiohttp.server", "Error handling request")
    assert library["level"] == "error"
    assert "OSError: connection reset" in library["exception"]
    assert (warned["event"], warned["logger"]) == ("library_message", "py.warnings")
    assert "something is deprecated" in warned["message"]
    assert uncaught["event"] == "uncaught_exception"
    assert "RuntimeError: nobody caught this" in uncaught["exception"]
