# Two entry points for people and CI: `make run` and `make test`.
# Both create a private virtualenv in .venv on first use, so a fresh clone needs
# nothing beyond Python 3.11+, git, make and the Swift toolchain.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint fuzz bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/spm-proxy serve

lint: $(STAMP)
	$(BIN)/ruff check proxy upstreams cache tests
	$(BIN)/ruff format --check proxy upstreams cache tests
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest -q -ra

# Long fuzzing (README, "Development"): the parser properties and the OpenAPI
# conformance run with a fresh random seed and FUZZ_EXAMPLES examples each.
# `make fuzz FUZZ_SEED=<seed>` replays a run.
fuzz: $(STAMP)
	@seed="$(FUZZ_SEED)"; \
	[ -n "$$seed" ] || seed=$$($(BIN)/python -c 'import secrets; print(secrets.randbelow(2**32))'); \
	echo "make fuzz: FUZZ_SEED=$$seed, FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-5000}"; \
	FUZZ_SEED=$$seed FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-5000} \
		$(BIN)/pytest -ra tests/properties tests/conformance \
		|| { echo "make fuzz failed; replay with: make fuzz FUZZ_SEED=$$seed"; exit 1; }

# Benchmarks against nginx, wrk and git on loopback (README, "Performance").
# BENCH_ARGS="--quick" or "--only NAME" for development.
bench: $(STAMP)
	@command -v nginx >/dev/null && command -v wrk >/dev/null && command -v curl >/dev/null \
		|| (apt-get update -qq && apt-get install -y -qq nginx wrk curl)
	$(BIN)/python -m tests.bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache spm-proxy-data
