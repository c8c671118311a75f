# StateSet — the two commands first: `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Python 3.13: PYTHON=..., else python3.13 on PATH, else pyenv's 3.13.
PYTHON ?= $(shell for p in python3.13 $$HOME/.pyenv/versions/3.13*/bin/python3.13 /usr/local/bin/python3.13; do \
	if command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null; then echo $$p; break; fi; done)
VENV := .venv
BIN := $(VENV)/bin
WITH_DB := $(BIN)/python -m stateset.localdb exec --

.PHONY: help run test lint format bench worker beat migrate schema venv clean-data

help:
	@echo "make run      serve API + admin on http://127.0.0.1:8000 (embedded PostgreSQL if DATABASE_URL is unset)"
	@echo "make test     the test suite on PostgreSQL (embedded or DATABASE_URL), Redis if REDIS_URL is set"
	@echo "make lint     ruff (line length 100), import-linter (the layering, tests included), mypy"
	@echo "              (strict on services, selectors, locks), missing migrations, OpenAPI schema drift"
	@echo "make bench    k6 load test against gunicorn, compared with the framework floor"
	@echo "make worker | beat | migrate | schema"

$(BIN)/.installed: requirements.txt requirements-dev.txt requirements-telemetry.txt
	@test -n "$(PYTHON)" || { echo "Python 3.13 not found: set PYTHON=/path/to/python3.13"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

venv: $(BIN)/.installed

run: venv
	$(BIN)/python -m stateset.run

test: venv
	STATESET_ENV=test $(WITH_DB) $(BIN)/pytest $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	@# The django-stubs plugin loads the settings, which need a database URL but never connect.
	STATESET_ENV=test DATABASE_URL=$${DATABASE_URL:-postgres://mypy@127.0.0.1:1/mypy} $(BIN)/mypy
	STATESET_ENV=test $(WITH_DB) $(BIN)/python manage.py makemigrations --check --dry-run
	STATESET_ENV=test $(WITH_DB) $(BIN)/python manage.py spectacular --validate --fail-on-warn --file /tmp/stateset-openapi.yaml
	@diff -u docs/openapi.yaml /tmp/stateset-openapi.yaml || { echo "OpenAPI schema changed: review it, then run 'make schema' and commit docs/openapi.yaml"; exit 1; }

schema: venv
	STATESET_ENV=test $(WITH_DB) $(BIN)/python manage.py spectacular --validate --fail-on-warn --file docs/openapi.yaml

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

migrate: venv
	$(WITH_DB) $(BIN)/python manage.py migrate

worker: venv
	$(BIN)/celery -A stateset worker -l info

beat: venv
	$(BIN)/celery -A stateset beat -l info

bench: venv
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes -r loadtest/requirements-bench.txt
	$(BIN)/python -m loadtest.bench $(BENCH_ARGS)

clean-data:
	-$(BIN)/python -m stateset.localdb stop
	rm -rf .data
