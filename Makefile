# The two commands: `make run` and `make test`. Everything else is what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
INSTALLED := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Debian packages: gettext compiles translations; PostgreSQL's server runs the tests;
# Playwright drives Debian's chromium in the browser tests (tests/browser); the fault
# tests (tests/faults) start their own Redis. PDFs are set in DejaVu, with WenQuanYi
# Micro Hei for Chinese, by WeasyPrint through Pango and HarfBuzz.
FONT_PACKAGES := fonts-dejavu-core fonts-wqy-microhei
PDF_PACKAGES := libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 $(FONT_PACKAGES)
RUN_PACKAGES := gettext $(PDF_PACKAGES)
TEST_PACKAGES := gettext postgresql redis-server chromium $(PDF_PACKAGES)
STACK_PACKAGES := gettext postgresql redis-server $(PDF_PACKAGES)
PYTEST_ARGS ?= -n 2 -q

.PHONY: run test lint typecheck pytest pytest-postgres messages install bench bench-quick \
	clean system-run system-test stack stack-stop

run: system-run $(INSTALLED) messages
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	@echo "Serving the demo district on http://127.0.0.1:8000 (sign-ins above)"
	$(PY) manage.py runserver 127.0.0.1:8000

test: system-test $(INSTALLED) messages lint typecheck pytest pytest-postgres

install: $(INSTALLED)

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

system-run:
	@$(MAKE) --no-print-directory .debian PACKAGES="$(RUN_PACKAGES)"

system-test:
	@$(MAKE) --no-print-directory .debian PACKAGES="$(TEST_PACKAGES)"

# Installs only what is missing, so that a second run costs nothing.
.debian:
	@missing=""; \
	for package in $(PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$package 2>/dev/null | grep -q "ok installed" || missing="$$missing $$package"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

messages: $(INSTALLED)
	$(PY) manage.py compilemessages --ignore=.venv -v0

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/bandit -c pyproject.toml -r . -ll -q

typecheck: $(INSTALLED)
	$(BIN)/mypy

# On SQLite, all but the tests that race PostgreSQL's row locks (marked postgresql);
# the next target runs every test, those included, on PostgreSQL.
pytest: $(INSTALLED) messages
	$(PY) -m pytest $(PYTEST_ARGS) -m "not postgresql"

# The whole suite against a throwaway PostgreSQL cluster on 127.0.0.1.
pytest-postgres: $(INSTALLED) messages
	$(PY) tests/postgres_cluster.py $(PY) -m pytest $(PYTEST_ARGS)

# bench/load.py runs the production-like stack of ops/stack.py: its packages first.
bench: $(INSTALLED) messages
	@$(MAKE) --no-print-directory .debian PACKAGES="$(STACK_PACKAGES)"
	$(PY) bench/run.py

bench-quick: $(INSTALLED) messages
	@$(MAKE) --no-print-directory .debian PACKAGES="$(STACK_PACKAGES)"
	$(PY) bench/run.py --quick

# A production-like stack on 127.0.0.1 (PostgreSQL, Redis, gunicorn, Celery worker
# and beat) with the demo district: see ops/stack.py.
stack: $(INSTALLED) messages
	@$(MAKE) --no-print-directory .debian PACKAGES="$(STACK_PACKAGES)"
	$(PY) ops/stack.py start

stack-stop:
	$(PY) ops/stack.py stop

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
