# Sluicegate developer tasks. Quickstart: `make demo`, `make test`.
#
#   make test [PYTEST_ARGS="-k sticky -x"]   ruff, mypy --strict, import-linter, pytest
#   make demo                                 two app versions behind the router at 90/10
#   make bench [BENCH_ARGS=--quick]           router benchmarks (not part of `make test`)
#   make lint | fmt | clean | distclean

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV        ?= .venv
BIN         := $(VENV)/bin
STAMP       := $(VENV)/.installed
# Python 3.11 if installed, else whatever python3 is (checked to be >= 3.11 below).
PYTHON      ?= $(shell command -v python3.11 2>/dev/null || command -v python3 2>/dev/null)
PYTEST_ARGS ?=
BENCH_ARGS  ?=
LINT_PATHS  := src tests bench examples
# The Node OFREP interop test's packages (tests/agent/test_node_ofrep_interop.py).
NODE_INTEROP := tests/interop/node

.PHONY: help venv node-interop test lint fmt demo demo-containers bench clean distclean

help:
	@echo "make demo    the router at 90/10 with sticky users, then a canary deployment v1 -> v2"
	@echo "make test    ruff, mypy --strict, import-linter, pytest  (PYTEST_ARGS=... to pass on)"
	@echo "make bench   router benchmarks"
	@echo "make lint    static checks only;  make fmt   format the code with ruff"
	@echo "make clean   remove caches and build output;  make distclean   also remove $(VENV) and $(NODE_INTEROP)/node_modules"

venv: $(STAMP)

# The stamp depends on pyproject.toml: dependencies are reinstalled only when it changes.
$(STAMP): pyproject.toml
	@if [ -z "$(PYTHON)" ]; then \
	  echo "error: no python3.11 or python3 on PATH; install Python 3.11 (apt-get install python3)" >&2; \
	  exit 1; \
	fi
	@if ! "$(PYTHON)" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then \
	  echo "error: $(PYTHON) is Python $$("$(PYTHON)" -c 'import sys; print(*sys.version_info[:2], sep=".")'); Sluicegate needs 3.11 or newer" >&2; \
	  exit 1; \
	fi
	@if [ ! -x "$(BIN)/python" ] || ! "$(BIN)/python" -m pip --version >/dev/null 2>&1; then \
	  rm -rf "$(VENV)"; \
	  echo "creating $(VENV) with $(PYTHON)"; \
	  if ! out=$$("$(PYTHON)" -m venv "$(VENV)" 2>&1); then \
	    rm -rf "$(VENV)"; \
	    echo "$$out" | tail -n 3 >&2; \
	    if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	      echo "'$(PYTHON) -m venv' failed (no ensurepip); installing python3-venv with apt-get"; \
	      DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null; \
	      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null; \
	      "$(PYTHON)" -m venv "$(VENV)"; \
	    else \
	      echo "error: '$(PYTHON) -m venv' failed: Python's venv/ensurepip support is missing." >&2; \
	      echo "On Debian or Ubuntu install it, then run make again:" >&2; \
	      echo "    sudo apt-get install python3-venv" >&2; \
	      exit 1; \
	    fi; \
	  fi; \
	fi
	@echo "installing sluicegate and its dev tools into $(VENV) (pip install -e .[dev])"
	@$(BIN)/python -m pip install --disable-pip-version-check -e '.[dev]' >$(VENV)/pip.log 2>&1 \
	  || { tail -n 40 $(VENV)/pip.log >&2; echo "error: pip install failed; full log: $(VENV)/pip.log" >&2; exit 1; }
	@touch $(STAMP)

# `npm ci` when node_modules is missing or older than package-lock.json. Without npm (or
# when npm ci fails) the Node interop tests skip and say why — or fail under
# SLUICEGATE_REQUIRE_ALL=1, which .ci/run sets after installing the modules itself.
node-interop:
	@if [ ! -f $(NODE_INTEROP)/node_modules/.package-lock.json ] \
	    || [ $(NODE_INTEROP)/package-lock.json -nt $(NODE_INTEROP)/node_modules/.package-lock.json ]; then \
	  if command -v npm >/dev/null; then \
	    echo "installing the Node interop packages (npm ci in $(NODE_INTEROP))"; \
	    npm ci --prefix $(NODE_INTEROP) --no-audit --no-fund --loglevel=error \
	      || echo "warning: npm ci failed; the Node OFREP interop tests will skip" >&2; \
	  else \
	    echo "npm not found: the Node OFREP interop tests will skip (apt-get install nodejs npm)"; \
	  fi; \
	fi

test: venv node-interop
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy --strict src/
	$(BIN)/lint-imports
	$(BIN)/pytest $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy --strict src/
	$(BIN)/lint-imports

fmt: venv
	$(BIN)/ruff check --select I --fix $(LINT_PATHS)
	$(BIN)/ruff format $(LINT_PATHS)

demo: venv
	$(BIN)/python examples/demo.py
	$(BIN)/python examples/deploy_demo.py

demo-containers: venv
	$(BIN)/python examples/deploy_demo.py --containers

bench: venv
	$(BIN)/python bench/router.py $(BENCH_ARGS)

clean:
	rm -rf build dist .pytest_cache .mypy_cache .ruff_cache .import_linter_cache bench/out
	find src tests bench examples -name __pycache__ -type d -prune -exec rm -rf {} + 2>/dev/null || true
	find src -maxdepth 1 -name '*.egg-info' -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) $(NODE_INTEROP)/node_modules
