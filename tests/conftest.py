"""Shared fixtures: the loaded program and catalogs, a fixed clock, the --update-golden switch, and a "figures"
section at the end of the run for what tests measured along the way (printed, never checked)."""

from __future__ import annotations

import datetime as dt

# Imported here, at collection, on purpose: otherwise hypothesis's pytest plugin imports it during the final
# summary, deep in pytest's hook stack, where CPython 3.11.7 can fail compiling it ("AST constructor recursion
# depth mismatch") and turn a green run red. Seen when running only tests/e2e/.
import hypothesis  # noqa: F401
import pytest

from bot.app import Core, load_core
from bot.config import Settings


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="rewrite the `expect` block of every golden vector from what the engine now does (review the diff!)",
    )


#: Lines for the "figures" section of the run's summary: `request.config.stash[FIGURES].append(line)`.
FIGURES = pytest.StashKey[list[str]]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[FIGURES] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    lines = config.stash.get(FIGURES, [])
    if lines:
        terminalreporter.section("figures")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def core() -> Core:
    return load_core(Settings(_env_file=None))  # type: ignore[call-arg]


@pytest.fixture
def frozen_now() -> dt.datetime:
    return dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
