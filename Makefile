# Switchboard: `make run` serves on the embedded defaults, `make test` runs every check and test.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: bootstrap install run migrate test check lint typecheck format pytest unit

bootstrap:  ## make sure uv is there (it is the only thing installed outside the project's venv)
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet "uv>=0.5"

install: bootstrap  ## the locked dependencies into .venv
	@$(UV) sync --frozen --quiet

run: install  ## migrate the SQLite file and serve on http://$(HOST):$(PORT)
	$(UV) run --frozen switchboard serve --migrate --host $(HOST) --port $(PORT)

migrate: install
	$(UV) run --frozen switchboard migrate

test: install check pytest  ## lint, type-check, then the whole test suite

check: lint typecheck

lint:
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen hadolint Dockerfile

typecheck:
	$(UV) run --frozen mypy

pytest:
	$(UV) run --frozen pytest

unit: install  ## only the fast tests
	$(UV) run --frozen pytest -m unit

format: install
	$(UV) run --frozen ruff format .
	$(UV) run --frozen ruff check --fix .
