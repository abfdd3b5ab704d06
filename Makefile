# The two commands for a fresh machine are `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | sha256sum | cut -c1-12)

.PHONY: setup demo test bench lint browser-deps leaderboard clean-venv

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	rm -f $(VENV)/.installed-* && touch $@

setup: $(STAMP)

# Browser for the leaderboard test: Debian's chromium (Playwright's own download is not used).
browser-deps:
	bash scripts/install-browser.sh

# (1) Build the default suites from real photographs, run the OP4KSR reference on all of them, write the leaderboard.
demo: setup
	$(BIN)/op4ksr-bench build-dataset --suite all --workers 2
	$(BIN)/op4ksr-bench weights fetch
	$(BIN)/op4ksr-bench run --method op4ksr --suite all --results leaderboard/results
	$(BIN)/op4ksr-bench leaderboard --results leaderboard/results --out leaderboard

# (2) Install everything the tests need and run them (CPU only, offline once installed).
test: setup browser-deps
	$(BIN)/python -m pytest -q -p no:randomly --benchmark-disable

# Timed benchmarks (pytest-benchmark); not part of `make test`.
bench: setup
	$(BIN)/python -m pytest -q tests -k benchmark --benchmark-only --benchmark-columns=min,mean,max,rounds

# Regenerate the published leaderboard of the default run (all default methods; see docs/leaderboard/README.md).
leaderboard: setup
	bash scripts/publish-leaderboard.sh

lint: setup
	$(BIN)/ruff format --check . && $(BIN)/ruff check .

clean-venv:
	rm -rf $(VENV)
