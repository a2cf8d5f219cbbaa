# The two set-up commands (README): `make run` and `make test`.
# Both create .venv with what they need; `make test` also installs Debian's
# chromium for the browser tests when it is missing.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CHROMIUM ?= /usr/bin/chromium
SUDO   := $(shell [ "$$(id -u)" = "0" ] || echo sudo)

.PHONY: run test lint typecheck audit unit integration e2e browser bench faults soak clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@ $(VENV)/.installed-run

$(CHROMIUM):
	@echo "Installing Debian's chromium for the browser tests"
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium

## Run the whole system on the embedded default (Tansu, Redis, worker, gateway, dashboards, simulator).
run: $(VENV)/.installed-run
	$(BIN)/rtic up

## Lint, type-check and run every test (unit, integration, end-to-end, browser).
test: $(VENV)/.installed-test $(CHROMIUM)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(MAKE) --no-print-directory audit
	$(BIN)/pytest

lint: $(VENV)/.installed-test
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

## Known vulnerabilities of the installed dependencies (pip-audit on PyPI's advisories;
## the project itself, installed editable, is skipped). A vulnerability fails the target.
## AUDIT_IGNORE lists ids ignored on purpose, each with its reason in docs/reliability.md.
## When PyPI's per-release JSON API (what pip-audit asks) does not answer, offline or
## behind a mirror without it, the audit is skipped with a message, not failed;
## RTIC_AUDIT=require makes that an error too (docs/reliability.md, "Dependency audit").
AUDIT_IGNORE :=
AUDIT_PROBE := import importlib.metadata as m, urllib.request as u; \
	u.urlopen('https://pypi.org/pypi/pip/%s/json' % m.version('pip'), timeout=10)
audit: $(VENV)/.installed-test
	@if $(BIN)/python -c "$(AUDIT_PROBE)" 2>/dev/null; then \
		$(BIN)/pip-audit --skip-editable --progress-spinner off $(foreach id,$(AUDIT_IGNORE),--ignore-vuln $(id)); \
	else \
		echo "pip-audit: skipped, PyPI's release JSON API does not answer from here"; \
		[ "$(RTIC_AUDIT)" != "require" ]; \
	fi

unit: $(VENV)/.installed-test
	$(BIN)/pytest tests/unit

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[test,bench]"
	touch $@ $(VENV)/.installed-test $(VENV)/.installed-run

## The benchmark suite (not tests): writes docs/benchmarks.md, benchmarks/results/*.json and a chart.
## BENCH_ARGS="--quick" for a smoke run, "--only peers,latency" for some parts.
bench: $(VENV)/.installed-bench
	$(BIN)/rtic bench $(BENCH_ARGS)

## The fault suite (not tests): kills, outages, scale-out under load; writes docs/reliability.md.
## FAULTS_ARGS="--quick" for short outages, "--only worker_kill,gateway_kill" for some faults.
faults: $(VENV)/.installed-test
	$(BIN)/rtic faults $(FAULTS_ARGS)

## The soak: ten times the West Midlands demand, 500 websocket clients (SOAK_MINUTES, default 30).
SOAK_MINUTES ?= 30
soak: $(VENV)/.installed-test
	$(BIN)/rtic faults --soak --minutes $(SOAK_MINUTES) $(FAULTS_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache artifacts
