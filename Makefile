# arbstream: every target sets up what it needs itself (venv, Kafka jars, dashboard),
# so a clean clone needs nothing but `make run` / `make test`. Re-runs reuse caches.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
KAFKA_LIBS := .cache/kafka-3.9.1/libs
INSTALLED  := $(VENV)/.installed
JARS       := $(KAFKA_LIBS)/.complete
DASHBOARD_BUILT := dashboard/dist/index.html
DASHBOARD_DEPS  := dashboard/node_modules/.package-lock.json
CHROMIUM        := /usr/bin/chromium

.PHONY: setup run demo test lint unit integration bench broker clean dashboard dashboard-test chromium mutation soak

setup: $(INSTALLED) $(JARS) dashboard

$(INSTALLED): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "arbstream needs Python 3.11, found " + sys.version' 
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

$(JARS): deploy/kafka/pom.xml $(INSTALLED)
	$(BIN)/arbstream broker --fetch-only

# Builds the dashboard when it exists (npm ci only when package-lock.json changed).
dashboard:
	@if [ -f dashboard/package.json ]; then $(MAKE) --no-print-directory $(DASHBOARD_BUILT); fi

$(DASHBOARD_DEPS): dashboard/package-lock.json dashboard/package.json
	cd dashboard && npm ci --no-audit --no-fund
	touch $@

$(DASHBOARD_BUILT): $(DASHBOARD_DEPS) $(shell find dashboard/src dashboard/index.html dashboard/vite.config.ts dashboard/tsconfig.json -type f 2>/dev/null)
	cd dashboard && npm run build

# Type check + Vitest component tests (the end-to-end run is tests/test_dashboard_e2e.py, in pytest).
dashboard-test: dashboard
	@if [ -f dashboard/package.json ]; then cd dashboard && npm run typecheck && npm test; fi

# The end-to-end tests drive Debian's Chromium (never a downloaded browser); installed once.
chromium:
	@test -x $(CHROMIUM) || (apt-get update -q && apt-get install -y -q chromium)

run: setup
	$(BIN)/arbstream up

demo: setup
	$(BIN)/arbstream up --demo

broker: setup
	$(BIN)/arbstream broker

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy arbstream plumbing ingest processors api schemas tests

test: setup lint dashboard-test chromium
	ARBSTREAM_REQUIRE_E2E=1 $(BIN)/pytest

bench: setup
	$(BIN)/arbstream bench

# The demo stack under injected faults for an hour (not part of `make test`): memory, recoveries,
# invariants; report in soak-results/<UTC time>/ (decision 0022).
SOAK_MINUTES ?= 60
soak: setup
	$(BIN)/arbstream soak --minutes $(SOAK_MINUTES)

# Mutation testing of the pure logic against the fast unit tests ([tool.mutmut] in pyproject.toml),
# one module at a time (the CPU is shared), from a clean mutants/ so the stats see today's tests
# (a named run re-tests every mutant anyway). Fails when > 10 % of processors/' mutants survive.
# One module only: make mutation MUTATION_MODULES=processors.funding
MUTATION_MODULES ?= processors.arbitrage processors.funding processors.engine processors.health_view processors.event_time \
	schemas ingest.venues.binance ingest.venues.okx
MUTATION_JOBS ?= 2
mutation: $(INSTALLED)
	rm -rf mutants
	for module in $(MUTATION_MODULES); do $(BIN)/mutmut run --max-children $(MUTATION_JOBS) "$$module.*" || exit 1; done
	$(BIN)/python -m tests.mutation_report --survivors

clean:
	rm -rf $(VENV) .cache mutants dashboard/dist dashboard/node_modules .pytest_cache .mypy_cache .ruff_cache
