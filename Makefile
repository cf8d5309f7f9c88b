# Two commands a user needs: `make run` (set up + headless load test on an embedded Milvus) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ARGS ?=

.PHONY: run test test-fast lint bench clean setup browser prometheus

$(BIN)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

setup: $(BIN)/.installed

# Debian's Chromium for the browser tests (web UI, HTML report); Playwright drives it (no browser download).
browser:
	command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# Debian's Prometheus for the monitoring test (a real server scrapes loadgen and Milvus, the dashboard's queries run)
prometheus:
	command -v prometheus >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }

run: $(BIN)/.installed
	$(BIN)/loadgen run $(ARGS)

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Workers: most of a test's time is waiting (a server's index build and load, a run's fixed -t), so four workers
# on two cores finish sooner than two or three; each worker starts its own session Milvus when its first test needs
# one.
# A test file stays on one worker (--dist loadfile): its module fixtures (a milvus-lite server, a collection) start
# once. (--dist loadgroup would balance finer, but pytest-xdist 3.8.0 ignores xdist_group marks under pytest 9.2.)
WORKERS ?= 4
# The suite starts a few hundred Python processes (loadgen, Locust, their forked checks); a shell that sets
# PYTHONDONTWRITEBYTECODE (some containers do) would make each of them compile loadgen's modules again.
test test-fast: export PYTHONDONTWRITEBYTECODE=
PYTEST_PARALLEL := -n $(WORKERS) --dist loadfile --no-loadscope-reorder

test: lint browser prometheus
	$(BIN)/pytest $(PYTEST_PARALLEL) $(ARGS)

# the fast tier: lint and every test that needs no Milvus server (fake store, unit tests); it cannot start one
test-fast: lint
	$(BIN)/pytest $(PYTEST_PARALLEL) -m "not milvus and not slow" $(ARGS)

bench: $(BIN)/.installed
	$(BIN)/python bench/run_all.py $(ARGS)

clean:
	rm -rf $(VENV) results .pytest_cache .mypy_cache .ruff_cache
