"""Failing examples of the parser properties are printed in full.

Importing schemathesis (the OpenAPI fuzzing in `tests/conformance`) replaces
Hypothesis's printer of falsifying examples with one that prints nothing,
for speed, process-wide; with it, a failing property would show `text=,`.
Hypothesis offers no hook for its printer, so its own is put back for the
duration of each property test.
"""

from __future__ import annotations

import pytest
from hypothesis import core
from hypothesis.vendor import pretty


@pytest.fixture(autouse=True)
def readable_failures(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(core, "RepresentationPrinter", pretty.RepresentationPrinter)
