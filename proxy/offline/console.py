"""Terminal output of the offline commands: a progress bar and full detail on a
terminal, only failures and one summary line when piped (so scripts and CI logs
stay quiet)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Never, TextIO

from tqdm import tqdm


class Console:
    def __init__(self, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.interactive = self.out.isatty()

    def detail(self, line: str) -> None:
        """Shown on a terminal only."""
        if self.interactive:
            print(line, file=self.out)

    def always(self, line: str) -> None:
        print(line, file=self.out)

    @contextmanager
    def progress(
        self, description: str, total: int | None, unit: str = "item"
    ) -> Iterator[tqdm[Never]]:
        # tqdm draws on stderr and only when it is a terminal.
        bar: tqdm[Never] = tqdm(
            total=total,
            desc=description,
            unit=unit,
            unit_scale=unit == "B",
            file=self.err,
            disable=None if self.err.isatty() else True,
            leave=False,
        )
        try:
            yield bar
        finally:
            bar.close()
