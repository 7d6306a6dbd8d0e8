# Two commands for a fresh clone: `make run` and `make test`. Each creates .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PHONE_ACTIONS_TENANTS_FILE ?= docs/examples/tenants.toml

.PHONY: run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## run: install, then serve the API on its embedded default (SQLite in data/, the outbox):
## creates the tenant demo on first start, prints a token and a curl command that sends a
## code into the outbox; Ctrl-C stops it. PORT=0 picks a free port.
PORT ?= 8000
run: $(STAMP)
	$(BIN)/phone-actions serve --demo --host 127.0.0.1 --port $(PORT)

## test: install, then run the whole suite (exit code 5, "no tests", is not a failure)
test: $(STAMP)
	$(BIN)/python -m pytest; rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 0; fi; exit $$rc

## lint: ruff check, ruff format --check, mypy strict (its files: pyproject's [tool.mypy]),
## lint-imports (pyproject's [tool.importlinter]: sandbox guest code never imports its host)
LINT_PATHS := runtime plugins tests bench tenant_actions
lint: $(STAMP)
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

bench: $(STAMP)
	$(BIN)/python bench/pipeline.py
	$(BIN)/python bench/providers.py
	$(BIN)/python bench/http_clients.py
	$(BIN)/python bench/replay.py
	$(BIN)/python bench/sandbox.py

clean:
	rm -rf $(VENV) data
