# The two commands of the README's quick start: `make run` and `make test`.
# Each sets up what it needs first (a virtualenv in .venv; for the tests, pouchdb-server
# from npm in tests/couchdb and Debian's chromium), so both work on a fresh machine.
# The virtualenv is made with the distribution's CPython when it is 3.11 or newer, with venv
# and the headers the C extensions build with: Debian's is built with PGO and LTO, and runs
# the engine about 1.2x faster than a plain source build such as pyenv's default
# (bench/engine.py prints which one it ran on). PYTHON=... chooses another.
PYTHON ?= $(shell /usr/bin/python3 -c '$(PYTHON_OK)' 2>/dev/null && echo /usr/bin/python3 || echo python3)
PYTHON_OK = import ensurepip, os, sys, sysconfig, venv; sys.exit(sys.version_info < (3, 11) or not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))
VENV ?= .venv
BIN = $(VENV)/bin
POUCHDB = tests/couchdb/node_modules/.bin/pouchdb-server

.PHONY: run test bench mutation setup clean

$(BIN)/sixminutes: pyproject.toml sixminutes/_prescan.c
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

$(POUCHDB): tests/couchdb/package.json tests/couchdb/package-lock.json
	npm ci --prefix tests/couchdb --no-audit --no-fund --ignore-scripts --loglevel=error
	touch $@

# The browser tests drive Debian's Chromium with Playwright (no browser download).
/usr/bin/chromium:
	$$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -qq chromium

# The Prometheus tests (tests/contrib) run Debian's promtool, prometheus and alertmanager.
# Without systemd (containers) the packages' services do not start; the tests use free
# ports anyway, never 9090/9093.
/usr/bin/promtool:
	$$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -qq --no-install-recommends prometheus

/usr/bin/prometheus-alertmanager:
	$$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -qq --no-install-recommends prometheus-alertmanager

setup: $(BIN)/sixminutes

# The live service with synthetic traffic (one carrier in trouble) and a local state file. It
# prints the link to open (/6minutes/#token=...: the token it generated at the first run and
# keeps in sixminutes-demo.sqlite.token, mode 0600).
run: setup
	$(BIN)/sixminutes serve --demo --state sixminutes-demo.sqlite

test: setup $(POUCHDB) /usr/bin/chromium /usr/bin/promtool /usr/bin/prometheus-alertmanager
	$(BIN)/python -m pytest

# bench/ingest.py loads the service with wrk, Debian's compiled HTTP benchmark client.
/usr/bin/wrk:
	$$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -qq --no-install-recommends wrk

bench: setup /usr/bin/wrk
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/python bench/replay.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/reading.py
	$(BIN)/python bench/catchup.py
	$(BIN)/python bench/groupby.py
	$(BIN)/python bench/engine.py
	$(BIN)/python bench/group.py

# Mutation testing (issue 20; not in CI: the whole takes hours on two shared cores). mutmut
# mutates the core modules one at a time, one worker (MODULES="windows stats" for a few; see
# tools/mutation.py --list), then the hand-made mutations of the edges are applied one by
# one (tools/hand_mutations.py); each prints its score. Results: docs/architecture.md.
mutation: setup $(POUCHDB)
	$(BIN)/python -m pip install --quiet -e '.[test,mutation]'
	$(BIN)/python tools/mutation.py $(MODULES)
	$(BIN)/python tools/hand_mutations.py

clean:
	rm -rf $(VENV) tests/couchdb/node_modules bench/out sixminutes-demo.sqlite* sixminutes/*.so build
