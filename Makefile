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
# Hook for the interop tests' set-up (npm ci of the pinned Node Grenache); empty = nothing.
INTEROP_SETUP ?=

.PHONY: up down logs status images test lint setup venv engine compose

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

test: venv
	$(INTEROP_SETUP)
	$(VENV)/bin/pytest $(PYTEST_ARGS)

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
