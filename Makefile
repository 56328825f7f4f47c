# Renkei — the two commands a new user needs: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export RENKEI_VAR_DIR ?= var

.PHONY: run test setup setup-test system-deps system-deps-test migrate demo clean-var lint audit test-sqlite \
	test-postgres

# Debian packages the server needs: WeasyPrint's Pango and HarfBuzz subsetting, and the Japanese font of the
# print forms. The tests also need Chromium for the browser tests (Playwright drives Debian's build: no browser
# download). Installing missing ones takes root; `make` says which to install otherwise.
RUN_PACKAGES := libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-noto-cjk
TEST_PACKAGES := $(RUN_PACKAGES) chromium

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

# Fast when everything is present (dpkg -s only); apt-get update runs only when something is missing, and only
# as root: anyone else is told the one apt-get command to run.
define install_debian
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" -ne 0 ]; then echo "missing Debian packages; as root run: apt-get install -y$$missing" >&2; exit 1; fi; \
		echo "installing Debian packages:$$missing"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing; \
	fi
endef

system-deps:
	$(call install_debian,$(RUN_PACKAGES))

system-deps-test:
	$(call install_debian,$(TEST_PACKAGES))

setup: system-deps $(STAMP)

setup-test: system-deps-test $(STAMP)

migrate: setup
	@mkdir -p $(RENKEI_VAR_DIR)
	$(VENV)/bin/renkei migrate

demo: migrate
	$(VENV)/bin/renkei demo --skip-if-loaded

run: demo
	$(VENV)/bin/renkei serve --host 127.0.0.1 --port 8000

lint: setup
	$(VENV)/bin/lint-imports

# Known vulnerabilities in the pinned dependencies (PyPI's advisory data, so it needs the network; not part of
# `make test`, whose result must not change overnight). --strict: a dependency that could not be checked fails.
audit: setup
	$(VENV)/bin/pip-audit --skip-editable --strict --progress-spinner off

test-sqlite: setup-test
	RENKEI_TEST_BACKEND=sqlite $(PY) -m pytest -q

test-postgres: setup-test
	RENKEI_TEST_BACKEND=postgres $(PY) -m pytest -q

# SQLite always; PostgreSQL too when RENKEI_TEST_DATABASE_URL is set (.ci/run sets it when PostgreSQL answers).
test: setup-test lint
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
