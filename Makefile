# dbhealth: `make run` serves the dashboard, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint format bench setup lock clean

# Runtime dependencies only (the lock has exact versions).
$(VENV)/.run-installed: requirements/run.lock
	@scripts/ensure-system-packages build
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements/run.lock
	@touch $@

# Everything the tests, linters and benchmarks need.
$(VENV)/.dev-installed: requirements/dev.lock $(VENV)/.run-installed
	@scripts/ensure-system-packages build browser
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements/dev.lock
	@touch $@

setup: $(VENV)/.run-installed
	@$(PY) manage.py setup_demo

run: setup
	@echo "Serving the dashboard on http://$(HOST):$(PORT)/admin/db-health/"
	@$(PY) manage.py runserver $(HOST):$(PORT)

test: $(VENV)/.dev-installed
	@scripts/check-services
	$(PY) -m pytest
	@$(MAKE) --no-print-directory lint

lint: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(VENV)/.dev-installed
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: $(VENV)/.dev-installed
	@scripts/check-services
	$(PY) -m bench

# Re-resolve the lock files after changing dependency ranges in pyproject.toml.
lock:
	@test -x .venv-lock/bin/uv || ($(PYTHON) -m venv .venv-lock && .venv-lock/bin/pip install --quiet uv)
	.venv-lock/bin/uv pip compile pyproject.toml --extra project -o requirements/run.lock \
		--python-version 3.11 --quiet --no-header
	.venv-lock/bin/uv pip compile pyproject.toml --extra project --extra dev -o requirements/dev.lock \
		--python-version 3.11 --quiet --no-header

clean:
	rm -rf $(VENV) var staticfiles test-artifacts bench-results
