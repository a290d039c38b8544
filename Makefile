# Every task a maintainer or CI runs. On a fresh machine `make run` and `make check` set everything up themselves.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run chat check test lint types bench bench-broadcast lock clean

run: $(VENV)/.runtime  ## install and start the bot (SQLite, long polling)
	$(BIN)/python -m bot

chat: $(VENV)/.runtime  ## the questionnaire in this terminal, no Telegram
	$(BIN)/python -m bot chat

check: lint types test  ## everything CI runs

test: $(VENV)/.dev
	$(BIN)/python -m pytest

lint: $(VENV)/.dev
	$(BIN)/ruff check bot flows tests scripts
	$(BIN)/ruff format --check bot flows tests scripts

types: $(VENV)/.dev
	$(BIN)/mypy

bench: $(VENV)/.dev  ## engine and full-stack figures (prints, asserts nothing)
	$(BIN)/python scripts/bench.py

bench-broadcast: $(VENV)/.dev  ## broadcast rate, sender ceiling, kill -9 and latency figures (about 15 minutes)
	$(BIN)/python scripts/bench_broadcast.py

lock: $(VENV)/.dev  ## re-pin after changing pyproject.toml
	$(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 --extra postgres -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 --extra postgres --extra dev -o requirements-dev.lock

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.lock pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.dev: requirements-dev.lock pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements-dev.lock uv
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@ $(VENV)/.runtime

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
