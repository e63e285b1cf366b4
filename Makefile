# The two commands of the README's quick start: `make run` and `make test`.
# Each sets up what it needs first (a virtualenv in .venv), so both work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
SAMPLE = samples/demo.jsonl.gz

.PHONY: run test bench setup clean

$(BIN)/sixminutes: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

setup: $(BIN)/sixminutes

# Replay a freshly generated sample (1 hour of synthetic traffic) and print the report.
run: setup
	mkdir -p samples
	$(BIN)/sixminutes synth --count 12000 --hours 1 --out $(SAMPLE)
	$(BIN)/sixminutes replay $(SAMPLE)

test: setup
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/python bench/engine.py

clean:
	rm -rf $(VENV) samples bench/out
