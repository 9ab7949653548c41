# Switchboard: `make run` serves on the embedded defaults, `make test` runs every check and test.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
# Unset: SWITCHBOARD_HOST / SWITCHBOARD_PORT (or .env) decide, as for `switchboard serve`; `make run PORT=9000` wins.
HOST ?=
PORT ?=

.PHONY: bootstrap install run migrate test check lint typecheck format pytest unit audit lock bench bench-batches bench-soak bench-readme loadtest wrk

bootstrap:  ## make sure uv is there (it is the only thing installed outside the project's venv)
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet "uv>=0.5"

install: bootstrap  ## the locked dependencies into .venv
	@$(UV) sync --frozen --quiet

run: install  ## migrate the SQLite file and serve (on http://127.0.0.1:8000 unless SWITCHBOARD_HOST/PORT say otherwise)
	$(UV) run --frozen switchboard serve --migrate $(if $(HOST),--host $(HOST)) $(if $(PORT),--port $(PORT))

migrate: install
	$(UV) run --frozen switchboard migrate

test: install check audit pytest  ## lint, type-check, audit the dependencies, then the whole test suite

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

EXPORT := $(UV) export --format requirements-txt --frozen --all-groups --no-emit-project --no-header --quiet

audit: install  ## requirements.lock matches uv.lock, and no pinned package has a known vulnerability (PyPI's data)
	@$(EXPORT) | diff - requirements.lock >/dev/null || { echo "requirements.lock is stale: run make lock"; exit 1; }
	$(UV) run --frozen python tools/audit_dependencies.py requirements.lock

lock:  ## re-resolve uv.lock and export requirements.lock (pins with hashes)
	$(UV) lock
	$(EXPORT) -o requirements.lock

format: install
	$(UV) run --frozen ruff format .
	$(UV) run --frozen ruff check --fix .

bench: install wrk  ## the benchmark: tables in bench/results/ (BENCH_ARGS="--quick" for a short run)
	$(UV) run --frozen python -m bench.run $(BENCH_ARGS)
	$(UV) run --frozen python -m bench.batches $(BATCH_BENCH_ARGS)

bench-batches: install  ## batch throughput on one and two workers, interactive p50 with and without a batch running
	$(UV) run --frozen python -m bench.batches $(BATCH_BENCH_ARGS)

bench-soak: install wrk  ## long run at concurrency 64 watching for a memory leak (SOAK_ARGS="--requests 200000")
	$(UV) run --frozen python -m bench.soak $(SOAK_ARGS)

loadtest: install  ## 60 s of mixed load on PostgreSQL + Redis, then the usage books balanced (LOADTEST_ARGS="--seconds 300")
	$(UV) run --frozen python -m bench.loadtest $(LOADTEST_ARGS)

bench-readme: install  ## copy bench/results/latest.md into the README's performance section
	$(UV) run --frozen python -m bench.readme

wrk:  ## install wrk with apt-get when it is missing and we may; else the benchmark uses its own async client
	@command -v wrk >/dev/null 2>&1 && exit 0; \
	if [ "$$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; \
	else echo "bench: wrk is missing and apt-get needs root: using the built-in async client"; exit 0; fi; \
	command -v apt-get >/dev/null 2>&1 || { echo "bench: no apt-get to install wrk: using the built-in async client"; exit 0; }; \
	echo "bench: installing wrk with apt-get"; \
	$$SUDO apt-get install -y -qq wrk >/dev/null 2>&1 || { $$SUDO apt-get update -qq >/dev/null 2>&1 && $$SUDO apt-get install -y -qq wrk >/dev/null 2>&1; } \
	|| echo "bench: could not install wrk: using the built-in async client"
