"""Looking for what is left of a person: in every column of every table of a database, or in lines of logs.

Used by the deletion tests (nothing of a deleted person may remain) and the log test (nothing personal is logged).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import MetaData, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.storage import tables


@dataclass(frozen=True)
class Needles:
    """What identifies a person: numbers (user id, chat id) and texts (names, messages, answers as written)."""

    ids: frozenset[int] = frozenset()
    texts: frozenset[str] = frozenset()
    _patterns: tuple[re.Pattern[str], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # An id counts only as a whole number: 7712345678 inside 177123456789 is someone else.
        patterns = tuple(re.compile(rf"(?<!\d){i}(?!\d)") for i in sorted(self.ids))
        object.__setattr__(self, "_patterns", patterns)

    def found_in(self, value: Any) -> list[str]:
        """Which needles a value holds: an int equal to an id, or a text (JSON included) containing one."""
        if value is None or isinstance(value, bool):
            return []
        if isinstance(value, int):
            return [str(value)] if value in self.ids else []
        if isinstance(value, (dict, list)):
            value = json.dumps(value, ensure_ascii=False)
        elif isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        text = str(value)
        hits = [p.pattern for p in self._patterns if p.search(text)]
        return hits + [t for t in sorted(self.texts) if t in text]


async def database_traces(engine: AsyncEngine, needles: Needles) -> list[str]:
    """Every (table.column: needle) where the database still holds one of the needles.

    The schema is reflected from the database itself, so a table added later is searched without anyone
    remembering to add it here; it must include every table the code declares.
    """
    reflected = MetaData()
    async with engine.connect() as conn:
        await conn.run_sync(reflected.reflect)
        missing = set(tables.metadata.tables) - set(reflected.tables)
        assert not missing, f"tables declared in bot/storage/tables.py but not in the database: {missing}"
        found = []
        for table in reflected.sorted_tables:
            for row in (await conn.execute(select(table))).all():
                for column, value in row._mapping.items():
                    found += [f"{table.name}.{column}: {hit}" for hit in needles.found_in(_decoded(value))]
    return found


def _decoded(value: Any) -> Any:
    """JSON columns reflect as text on some backends: read them as JSON when they are."""
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def log_traces(lines: Iterable[str], needles: Needles) -> list[str]:
    """Every (line number: needle) of log lines that hold a needle, with the line for the failure message."""
    found = []
    for number, line in enumerate(lines, 1):
        # Lines are JSON with ensure_ascii=False, but a library may escape: read the JSON to compare texts.
        try:
            readable = json.dumps(json.loads(line), ensure_ascii=False)
        except ValueError:
            readable = line
        found += [f"line {number}: {hit!r} in {line[:300]}" for hit in needles.found_in(readable)]
    return found
