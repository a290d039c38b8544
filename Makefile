# Every task a maintainer or CI runs. On a fresh machine `make run` and `make check` set everything up themselves.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

# The vulnerability audit's tool, pinned, in a venv of its own: never part of the bot's install or of `make check`.
PIP_AUDIT_VERSION ?= 2.10.0
AUDIT_VENV ?= .venv-audit

.PHONY: run chat web check test browser lint types bench bench-broadcast lock audit clean

run: $(VENV)/.runtime  ## install and start the bot (SQLite, long polling)
	$(BIN)/python -m bot

chat: $(VENV)/.runtime  ## the questionnaire in this terminal, no Telegram
	$(BIN)/python -m bot chat

web: $(VENV)/.runtime  ## the staff web console on 127.0.0.1:8081 (prints a one-time sign-in link)
	$(BIN)/python -m bot web

check: lint types test  ## everything CI runs

test: $(VENV)/.dev browser
	$(BIN)/python -m pytest

# The web console's browser tests (tests/browser) drive Debian's Chromium through chromedriver: installed here when
# missing and this is root on Debian; anywhere else they skip, saying why.
browser:
	@if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && apt-get install -y -qq chromium chromium-driver fonts-noto-color-emoji >/dev/null \
	      || echo "Chromium could not be installed: the browser tests will skip"; \
	  else \
	    echo "No chromium/chromedriver (apt-get install chromium chromium-driver): the browser tests will skip"; \
	  fi; \
	fi

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

audit: $(AUDIT_VENV)/.pip-audit-$(PIP_AUDIT_VERSION)  ## known vulnerabilities in the locked versions (needs the internet)
	$(AUDIT_VENV)/bin/pip-audit --no-deps --disable-pip --progress-spinner off \
		--requirement requirements.lock --requirement requirements-dev.lock

$(AUDIT_VENV)/.pip-audit-$(PIP_AUDIT_VERSION):
	rm -rf $(AUDIT_VENV)
	$(PYTHON) -m venv $(AUDIT_VENV)
	$(AUDIT_VENV)/bin/python -m pip install --quiet pip-audit==$(PIP_AUDIT_VERSION)
	touch $@

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
	rm -rf $(VENV) $(AUDIT_VENV) .pytest_cache .mypy_cache .ruff_cache
