"""How long and with which seed the property-based tests run.

`make test` runs every property derandomized with a modest number of examples,
so the suite is fast and a failure reproduces on every machine. `make fuzz`
sets `FUZZ_SEED` (random unless given) and `FUZZ_EXAMPLES`: the same tests then
draw fresh inputs from that seed, many more of them, and the seed is printed
in the session header so that a failure can be replayed with
`make fuzz FUZZ_SEED=<seed>`.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

SEED_VARIABLE = "FUZZ_SEED"
EXAMPLES_VARIABLE = "FUZZ_EXAMPLES"
# Examples per property in a fuzzing run, unless FUZZ_EXAMPLES says otherwise.
DEFAULT_FUZZ_EXAMPLES = 5000

PROFILE = "spm-proxy"
FUZZ_PROFILE = "spm-proxy-fuzz"


class FuzzSettingError(ValueError):
    """A FUZZ_* variable that is not a whole number."""


def _whole_number(variable: str) -> int | None:
    text = os.environ.get(variable, "").strip()
    if not text:
        return None
    if not text.isascii() or not text.isdigit():
        raise FuzzSettingError(f"{variable}={text!r} is not a whole number")
    return int(text)


def fuzz_seed() -> int | None:
    """The seed of a fuzzing run, or None in the derandomized default run."""
    return _whole_number(SEED_VARIABLE)


def fuzzing() -> bool:
    return fuzz_seed() is not None


def examples(default: int) -> int:
    """Examples for one property: `default` normally, many more when fuzzing."""
    if not fuzzing():
        return default
    return _whole_number(EXAMPLES_VARIABLE) or DEFAULT_FUZZ_EXAMPLES


def register_profiles() -> None:
    """The two Hypothesis profiles; the fuzzing one is loaded when FUZZ_SEED is set.

    Neither has a deadline: timing on a shared two-core CI machine says nothing
    about correctness, and benchmarks measure speed (README, Performance).
    Neither keeps an example database: a default run must not depend on what an
    earlier run on the same machine found, and a fuzzing run is replayed by seed.
    """
    settings.register_profile(
        PROFILE,
        derandomize=True,
        database=None,
        deadline=None,
        max_examples=100,
        print_blob=True,
    )
    settings.register_profile(
        FUZZ_PROFILE,
        derandomize=False,
        database=None,
        deadline=None,
        max_examples=examples(100),
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow],
    )
    settings.load_profile(FUZZ_PROFILE if fuzzing() else PROFILE)


def replay_hint() -> str:
    seed = fuzz_seed()
    if seed is None:
        return "property tests: derandomized (make fuzz runs them long with a random seed)"
    return (
        f"fuzzing: seed {seed}, {examples(0)} examples per property; "
        f"replay with `make fuzz FUZZ_SEED={seed}`"
    )
