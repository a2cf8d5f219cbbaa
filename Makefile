# The two set-up commands (README): `make run` and `make test`.
# Both create .venv with what they need; `make test` also installs Debian's
# chromium for the browser tests when it is missing.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CHROMIUM ?= /usr/bin/chromium
SUDO   := $(shell [ "$$(id -u)" = "0" ] || echo sudo)

.PHONY: run test lint typecheck unit integration e2e browser bench faults soak clean

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
	$(BIN)/pytest

lint: $(VENV)/.installed-test
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

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
