# strykr-alerts: `make run` and `make test` set everything up on a machine with python3 (3.11+) and make.

PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= alerts.toml

# uv must use the machine's Python, never download one.
export UV_PYTHON_DOWNLOADS := never

.PHONY: install system-deps run cluster test lint format typecheck unit bench clean help

help:
	@echo "make run    - set up (first time) and run the service with $(CONFIG)"
	@echo "make cluster - run a whole cluster (PostgreSQL, Mosquitto, every role) as local processes"
	@echo "make test   - set up (first time), lint, type-check and run every test"
	@echo "make bench  - run the benchmarks in bench/"
	@echo "make format - format the code with ruff"

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

# The project and its dev tools, exactly as uv.lock pins them.
$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

# The dashboard's chart library, from the npm registry, exactly as package-lock.json pins it.
WEB := service/web
$(WEB)/node_modules/.installed: $(WEB)/package.json $(WEB)/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "npm is needed for the dashboard's chart library: install Node.js (apt-get install npm)" >&2; exit 1; }
	npm ci --prefix $(WEB) --no-audit --no-fund --loglevel=error
	@touch $@

install: $(VENV)/.synced $(WEB)/node_modules/.installed

# Programs the tests start themselves (Mosquitto); installed when missing and possible.
system-deps:
	@scripts/install-system-deps.sh

run: install
	$(BIN)/strykr-alerts run --config $(CONFIG)

# deploy/docker-compose.cluster.yml's roles as processes, with servers of their own (Ctrl-C stops).
cluster: install system-deps
	$(BIN)/python scripts/local_cluster.py

lint: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/pytest tests/unit

test: lint typecheck system-deps
	$(BIN)/pytest

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install system-deps
	$(BIN)/python bench/engine.py
	$(BIN)/python bench/checkpoint.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/fanout.py
	$(BIN)/python bench/cluster.py

clean:
	rm -rf $(VENV) $(TOOLS) $(WEB)/node_modules .pytest_cache .mypy_cache .ruff_cache
