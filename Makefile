# The two commands for a fresh machine are `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | sha256sum | cut -c1-12)

.PHONY: setup demo test bench lint browser-deps leaderboard clean-venv

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24" "setuptools>=77"
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	rm -f $(VENV)/.installed-* && touch $@

setup: $(STAMP)

# Browser for the leaderboard test: Debian's chromium (Playwright's own download is not used).
browser-deps:
	bash scripts/install-browser.sh

# (1) Build the default suites from real photographs, run the OP4KSR reference and bicubic on all of them, and
# write a leaderboard of these runs: results in results/, the site in site/ (both gitignored; open site/index.html).
# The published leaderboard in leaderboard/ changes only through `make leaderboard`.
demo: setup
	$(BIN)/op4ksr-bench build-dataset --suite all --workers 2
	$(BIN)/op4ksr-bench weights fetch
	$(BIN)/op4ksr-bench run --method op4ksr --suite all --results results
	$(BIN)/op4ksr-bench run --method bicubic --suite all --results results
	$(BIN)/op4ksr-bench leaderboard --results results --out site
	@echo "demo leaderboard: open site/index.html"

# (2) Install everything the tests need and run them all but the GPU ones (CPU only, offline once installed).
# A plain `pytest` is the fast subset: no slow, browser or GPU tests (see pyproject.toml).
test: setup browser-deps
	$(BIN)/python -m pytest -q -p no:randomly --benchmark-disable -m "not gpu"

# Timed benchmarks (pytest-benchmark); not part of `make test`.
bench: setup
	$(BIN)/python -m pytest -q tests -m "not gpu" -k benchmark --benchmark-enable --benchmark-only \
		--benchmark-columns=min,mean,max,rounds

# Regenerate the published leaderboard of the default run (all default methods; see docs/leaderboard/README.md).
leaderboard: setup
	bash scripts/publish-leaderboard.sh

lint: setup
	$(BIN)/ruff format --check . && $(BIN)/ruff check .

clean-venv:
	rm -rf $(VENV)
