"""flows/ stays a pure core: no Telegram, database, network or clock can creep in."""

from __future__ import annotations

import ast
from pathlib import Path

FLOWS = Path(__file__).resolve().parents[1] / "flows"
ALLOWED_ROOTS = {
    "__future__",
    "csv",  # parses text handed in (the directory); opens nothing
    "io",  # in-memory text buffers for csv
    "collections",
    "dataclasses",
    "datetime",
    "enum",
    "functools",
    "pathlib",
    "re",
    "types",
    "typing",
    "unicodedata",
    "pydantic",
    "yaml",
    "flows",
}
CLOCK_CALLS = {"now", "today", "utcnow", "time", "monotonic", "perf_counter"}


def python_files() -> list[Path]:
    return sorted(FLOWS.rglob("*.py"))


def test_flows_imports_only_pure_modules() -> None:
    """Every import in flows/ is in the allow-list: no aiogram, sqlalchemy, aiohttp, asyncio, socket, os, time."""
    offenders = []
    for path in python_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] not in ALLOWED_ROOTS]
    assert offenders == []


def test_flows_never_reads_the_clock() -> None:
    """No call in flows/ asks for the current time: the host passes the date in."""
    offenders = []
    for path in python_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in CLOCK_CALLS:
                offenders.append(f"{path.name}:{node.lineno} .{node.func.attr}()")
    assert offenders == []


def test_the_purity_check_can_fail(tmp_path: Path) -> None:
    """The import scan really flags a forbidden import (so the checks above are not vacuous)."""
    tree = ast.parse("import aiogram\nfrom sqlalchemy import select\n")
    found = [
        n.names[0].name if isinstance(n, ast.Import) else n.module
        for n in ast.walk(tree)
        if isinstance(n, ast.Import | ast.ImportFrom)
    ]
    assert [f for f in found if f and f.split(".")[0] not in ALLOWED_ROOTS] == ["aiogram", "sqlalchemy"]
