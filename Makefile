# grenache-lab. `make up` sets up a fresh machine and starts the lab; the logic lives in
# images/host/setup.sh (host: venv, Docker engine, Compose) and `lab up` (images, stack,
# health), so each target here is one or two lines.
SHELL := /bin/bash
VENV := .venv
LAB := $(VENV)/bin/lab
SETUP := images/host/setup.sh

# UP_ARGS: e.g. "--skip client" or "--source offline"; PYTEST_ARGS: e.g. "-m 'not docker'";
# SERVICES (make logs): e.g. "grape-1 worker-2".
UP_ARGS ?=
PYTEST_ARGS ?=
SERVICES ?=
# CHAOS: the short scenarios `make chaos` runs against the Compose lab (CI's chaos job).
CHAOS ?= scenarios/ci/partition.yaml scenarios/ci/latency.yaml scenarios/ci/kill-worker.yaml \
	scenarios/all-slow.yaml

.PHONY: up down logs status images test test-deps chaos bench lint setup venv engine compose

up: setup
	$(LAB) up $(UP_ARGS)

down: venv
	$(LAB) down

logs: venv
	$(LAB) logs $(SERVICES)

status: venv
	$(LAB) status

images: setup
	$(LAB) up --images-only $(UP_ARGS)

# The whole suite: unit, local-process integration, interop with the real Node.js Grenache,
# the report in headless Chromium, and the Compose lab tests (which skip, saying why, when
# no Docker engine answers).
test: venv test-deps
	$(VENV)/bin/pytest $(PYTEST_ARGS)

test-deps: venv
	@$(SETUP) node chromium

# Short scenarios on the Compose lab; fails when any run exits non-zero (1: an expectation
# failed, 2: the run could not be carried out). Reports land in reports/.
chaos: up
	@status=0; for s in $(CHAOS); do $(LAB) run "$$s" || status=1; done; \
	$(LAB) report --index >/dev/null || true; exit $$status

bench: venv test-deps
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(VENV)/bin/python "$$b" || exit 1; done

# Both linters always run, so one report shows every problem; the target fails if either does.
lint: venv
	@status=0; \
	$(VENV)/bin/ruff check lab tests || status=1; \
	$(VENV)/bin/mypy || status=1; \
	exit $$status

setup: venv engine compose

venv:
	@$(SETUP) venv

engine:
	@$(SETUP) engine

compose: venv
	@$(SETUP) compose
