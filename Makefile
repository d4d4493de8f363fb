# Lägesbild. `make run` serves the demo on http://127.0.0.1:8000, `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# Debian packages the test suite needs: a browser, PostgreSQL with PostGIS, and gettext for the
# translation check.
TEST_DEBS := chromium postgresql-15 postgresql-15-postgis-3 gettext fonts-dejavu-core

.PHONY: run test install install-dev system-packages lint typecheck test-sqlite test-postgres fuzz bench load-test messages clean

# The app refuses to start without a secret key. For the local demo, a random one is kept in var/secret_key
# (made once); LAGESBILD_SECRET_KEY in the environment wins.
SECRET_FILE := var/secret_key
WITH_KEY = LAGESBILD_SECRET_KEY="$${LAGESBILD_SECRET_KEY:-$$(cat $(SECRET_FILE))}"

run: install $(SECRET_FILE)
	$(WITH_KEY) $(BIN)/lagesbild migrate --noinput
	$(WITH_KEY) $(BIN)/lagesbild createcachetable
	$(WITH_KEY) $(BIN)/lagesbild demo --if-empty
	@# The background worker sends reminders and digests (to the console in development); it stops with the server.
	$(WITH_KEY) $(BIN)/lagesbild db_worker --no-reload & worker=$$!; trap "kill $$worker 2>/dev/null" EXIT INT TERM; \
		$(WITH_KEY) $(BIN)/lagesbild runserver $(HOST):$(PORT)

$(SECRET_FILE):
	mkdir -p $(dir $@)
	umask 077 && $(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(50))' > $@

# The whole suite. Its three passes run side by side (two cores; each waits for much of its time: the browser
# tests on Chromium, the PostgreSQL pass on its server): the tests without a browser on SQLite, those on
# PostgreSQL, and the browser tests. The browser tests, the longest pass, go first when all want the CPU (the
# other two run at a lower priority, `nice`). Each pass's output follows when all are done; any failing fails
# the run.
test: install-dev system-packages lint typecheck
	@mkdir -p var; rm -f var/test-sqlite.rc var/test-postgres.rc; \
	( LAGESBILD_DATABASE_URL= nice -n 5 $(BIN)/python -m pytest -m "not browser" $(PARALLEL) > var/test-sqlite.log 2>&1; \
	  echo $$? > var/test-sqlite.rc ) & \
	( nice -n 5 $(MAKE) --no-print-directory test-postgres > var/test-postgres.log 2>&1; echo $$? > var/test-postgres.rc ) & \
	LAGESBILD_DATABASE_URL= LAGESBILD_TEST_SQLITE=var/test-browser.sqlite3 $(BIN)/python -m pytest -m browser; \
	browser=$$?; wait; \
	echo "--- The SQLite pass without a browser (run beside the browser tests) ---"; cat var/test-sqlite.log; \
	echo "--- The PostgreSQL pass (run beside the browser tests) ---"; cat var/test-postgres.log; \
	sqlite=$$(cat var/test-sqlite.rc 2>/dev/null || echo 1); postgres=$$(cat var/test-postgres.rc 2>/dev/null || echo 1); \
	echo "browser tests: exit $$browser; SQLite pass: exit $$sqlite; PostgreSQL pass: exit $$postgres"; \
	[ "$$browser" = 0 ] && [ "$$sqlite" = 0 ] && [ "$$postgres" = 0 ]

install: $(VENV)/.installed node_modules/.installed

install-dev: $(VENV)/.installed-dev node_modules/.installed

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Installs what is missing, once; does nothing on a machine that has it all.
system-packages:
	@missing=$$(for p in $(TEST_DEBS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "Installing Debian packages: $$missing"; \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

lint: install-dev
	$(BIN)/ruff check .

typecheck: install-dev
	LAGESBILD_SECRET_KEY=typecheck-only $(BIN)/mypy

# Two workers (one a core) for the SQLite pass's tests without a browser, a module to a worker; the browser
# tests share one Chromium and run one at a time. The PostgreSQL pass has one worker (in `make test`, beside
# the browser tests): with two workers beside the server, the loopback tile server and geocoder were slow
# enough once to answer one build of the derived-values comparison differently.
PARALLEL = -n 2 --dist loadfile

test-sqlite: install-dev system-packages
	LAGESBILD_DATABASE_URL= $(BIN)/python -m pytest -m "not browser" $(PARALLEL)
	LAGESBILD_DATABASE_URL= $(BIN)/python -m pytest -m browser

# Tests marked `pure` touch no database (statistics calibration, source rules), and the browser tests drive the
# pages, whose data come from the API tested on both backends: both ran on the SQLite pass, which `make run` uses.
# In two processes as well (a test database each): run side by side in `make test`, it is the longest pass, and
# for its last minutes it runs alone.
test-postgres: install-dev system-packages
	$(BIN)/python scripts/with_postgres.py -- $(BIN)/python -m pytest -m "not pure and not browser" $(PARALLEL)

# schemathesis with over ten thousand generated requests on each database (make test runs about two thousand).
fuzz: install-dev
	LAGESBILD_FUZZ_EXAMPLES=60 $(BIN)/python -m pytest tests/test_api_fuzz.py
	$(BIN)/python scripts/with_postgres.py -- env LAGESBILD_FUZZ_EXAMPLES=60 $(BIN)/python -m pytest tests/test_api_fuzz.py

# 200 simulated members for 10 minutes against gunicorn and PostgreSQL, over a million deviations (bench/load_test.py).
load-test: install-dev system-packages
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	cd bench && ../$(BIN)/python ../scripts/with_postgres.py --as-deployed -- ../$(BIN)/python load_test.py --count 1000000

bench: install-dev
	$(BIN)/python bench/bench_deviations.py
	$(BIN)/python bench/bench_meetings.py
	$(BIN)/python bench/bench_analysis.py
	$(BIN)/python bench/bench_photos.py
	$(BIN)/python bench/bench_export.py

# Refresh the message catalogues after changing user-facing text (needs gettext).
messages: install-dev
	cd src/lagesbild && export LAGESBILD_SECRET_KEY=messages-only && ../../$(BIN)/lagesbild makemessages -l sv -l en --no-obsolete --no-location \
		&& ../../$(BIN)/lagesbild compilemessages

clean:
	rm -rf $(VENV) node_modules var .pytest_cache .mypy_cache .ruff_cache
