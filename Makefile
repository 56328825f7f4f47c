# Renkei — the two commands a new user needs: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export RENKEI_VAR_DIR ?= var

.PHONY: run test setup system-deps migrate demo clean-var lint test-sqlite test-postgres

# Debian packages WeasyPrint needs (Pango, HarfBuzz subsetting) and the Japanese font of the print forms;
# Chromium for the browser tests (Playwright drives Debian's build: no browser download).
SYSTEM_PACKAGES := libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-noto-cjk chromium

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

# Fast when everything is present (dpkg -s only); apt-get update runs only when something is missing.
system-deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		if [ "$$(id -u)" -ne 0 ]; then echo "run as root: apt-get install -y$$missing" >&2; exit 1; fi; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing; \
	fi

setup: system-deps $(STAMP)

migrate: setup
	@mkdir -p $(RENKEI_VAR_DIR)
	$(VENV)/bin/renkei migrate

demo: migrate
	$(VENV)/bin/renkei demo --skip-if-loaded

run: demo
	$(VENV)/bin/renkei serve --host 127.0.0.1 --port 8000

lint: setup
	$(VENV)/bin/lint-imports

test-sqlite: setup
	RENKEI_TEST_BACKEND=sqlite $(PY) -m pytest -q

test-postgres: setup
	RENKEI_TEST_BACKEND=postgres $(PY) -m pytest -q

# SQLite always; PostgreSQL too when RENKEI_TEST_DATABASE_URL is set (.ci/run sets it when PostgreSQL answers).
test: setup lint
	RENKEI_TEST_BACKEND=sqlite $(PY) -m pytest -q
	@if [ -n "$$RENKEI_TEST_DATABASE_URL" ]; then \
		RENKEI_TEST_BACKEND=postgres $(PY) -m pytest -q; \
	elif [ "$$CI" = "true" ]; then \
		echo "CI=true but RENKEI_TEST_DATABASE_URL is not set: refusing to skip the PostgreSQL run" >&2; exit 1; \
	else \
		echo "(PostgreSQL run skipped: set RENKEI_TEST_DATABASE_URL to include it)"; \
	fi

clean-var:
	rm -rf $(RENKEI_VAR_DIR)
