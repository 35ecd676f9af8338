# Every target sets itself up, idempotently, on a fresh machine with Python 3.11 and Node 20.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
RUN_STAMP := $(VENV)/.run-deps
DEV_STAMP := $(VENV)/.dev-deps
NODE_STAMP := node_modules/.stamp
# checkov pins packages that clash with the app's requirements: it gets a venv of its own.
IAC_STAMP := $(VENV)/iac/.iac-deps

.PHONY: run test lint typecheck unit clean bench bench-quick

run: $(RUN_STAMP) $(NODE_STAMP) local.settings.json
	$(PY) -m localdev.run

test: $(DEV_STAMP) $(IAC_STAMP) $(NODE_STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy .
	$(PY) -m pytest

# Benchmarks print ratios measured side by side; they never fail on a number (bench/README.md).
bench: $(RUN_STAMP) $(NODE_STAMP)
	$(PY) -m bench

bench-quick: $(RUN_STAMP) $(NODE_STAMP)
	$(PY) -m bench --quick

lint: $(DEV_STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: $(DEV_STAMP)
	$(PY) -m mypy .

unit: $(DEV_STAMP) $(IAC_STAMP)
	$(PY) -m pytest tests/unit

$(PY):
	$(PYTHON) -m venv $(VENV)

# What running needs: the app's runtime requirements and the CLI (the local host and the
# simulator use only those plus the standard library). The CLI is installed as `osctl`.
$(RUN_STAMP): requirements.txt requirements-local.txt pyproject.toml | $(PY)
	$(PIP) install -r requirements-local.txt
	$(PIP) install --no-deps -e .
	touch $@

$(DEV_STAMP): $(RUN_STAMP) requirements-dev.txt
	$(PIP) install -r requirements-dev.txt
	touch $@

$(IAC_STAMP): requirements-iac.txt | $(PY)
	$(PYTHON) -m venv $(VENV)/iac
	$(VENV)/iac/bin/python -m pip --disable-pip-version-check -q install -r requirements-iac.txt
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

local.settings.json:
	cp local.settings.sample.json $@

clean:
	rm -rf $(VENV) node_modules .localdev .pytest_cache .mypy_cache .ruff_cache .hypothesis
