# dbhealth: `make run` serves the dashboard, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test test-matrix lint format bench setup lock clean

# Runtime dependencies only (the lock has exact versions).
$(VENV)/.run-installed: requirements/run.lock
	@scripts/ensure-system-packages build
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -qq --disable-pip-version-check -r requirements/run.lock
	@touch $@

# Everything the tests, linters and benchmarks need.
$(VENV)/.dev-installed: requirements/dev.lock $(VENV)/.run-installed
	@scripts/ensure-system-packages build browser ops
	@$(PY) -m pip install -qq --disable-pip-version-check -r requirements/dev.lock
	@touch $@

setup: $(VENV)/.run-installed
	@$(PY) manage.py setup_demo

run: setup
	@echo "Serving the dashboard on http://$(HOST):$(PORT)/admin/db-health/"
	@$(PY) manage.py runserver $(HOST):$(PORT)

test: $(VENV)/.dev-installed
	@scripts/check-services
	$(PY) -m pytest
	$(PY) -m pytest --ds=tests.adoption.settings tests/adoption
	$(PY) -m pytest --ds=tests.adoption_healthcheck.settings tests/adoption_healthcheck
	@$(MAKE) --no-print-directory lint

lint: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(VENV)/.dev-installed
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# gunicorn and the peers (django-health-check, django-watchman): `make bench` only.
$(VENV)/.bench-installed: requirements/bench.lock $(VENV)/.dev-installed
	@$(PY) -m pip install -qq --disable-pip-version-check -r requirements/bench.lock
	@touch $@

bench: $(VENV)/.bench-installed
	@scripts/check-services
	$(PY) -m bench

# Re-resolve the lock files after changing dependency ranges in pyproject.toml.
lock:
	@test -x .venv-lock/bin/uv || ($(PYTHON) -m venv .venv-lock && .venv-lock/bin/pip install --quiet uv)
	.venv-lock/bin/uv pip compile pyproject.toml --extra project -o requirements/run.lock \
		--python-version 3.11 --quiet --no-header
	.venv-lock/bin/uv pip compile pyproject.toml --extra project --extra dev -o requirements/dev.lock \
		--python-version 3.11 --quiet --no-header
	.venv-lock/bin/uv pip compile pyproject.toml --extra project --extra bench -c requirements/dev.lock \
		-o requirements/bench.lock --python-version 3.11 --quiet --no-header
	echo "Django>=5.2,<5.3" | .venv-lock/bin/uv pip compile pyproject.toml requirements/matrix.in - \
		-o requirements/django52.lock --python-version 3.11 --quiet --no-header
	echo "Django>=6.0,<6.1" | .venv-lock/bin/uv pip compile pyproject.toml requirements/matrix.in - \
		-o requirements/django60.lock --python-version 3.12 --quiet --no-header
	echo "Django>=6.1,<6.2" | .venv-lock/bin/uv pip compile pyproject.toml requirements/matrix.in - \
		-o requirements/django61.lock --python-version 3.12 --quiet --no-header

# tests/adoption/ on Django 5.2 (Python 3.11), 6.0 (3.12) and 6.1 (3.12, 3.13), each in a
# fresh virtualenv that installs this repository like a site would (noxfile.py).
test-matrix: $(VENV)/.dev-installed
	@scripts/check-services
	$(VENV)/bin/nox

clean:
	rm -rf $(VENV) var staticfiles test-artifacts bench-results .nox build
