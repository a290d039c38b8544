"""The questionnaire's hot path on SQLite: whole transactions on one thread, statements on the driver itself.

Through aiosqlite every statement, fetch and commit is a hop to its thread and back; through SQLAlchemy's
execution layer every statement builds an execution context, a result and its metadata, some 80 µs each on the
bench machine, several times what SQLite itself takes. A tap is a load and a save, seven statements (README
"Benchmarks"). Here each transaction is one hop to a thread of its own, and each statement is compiled once by
SQLAlchemy (its SQL, its parameter order, its type conversions in and out) and then run straight on the
standard library's sqlite3 cursor. Same file, same pragmas, the same single-writer lock in SqlStore and the same
text in every column, so a commit here is as durable as one through the engine and the rows read the same.

`DriverConnection` answers the part of SQLAlchemy's `Connection` the hot path uses (`execute` then `first` or
`all`, and `dialect`), so `bot.storage.sql._load` and `_save` run unchanged on either.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import ClauseElement, Select
from sqlalchemy.dialects.sqlite.base import SQLiteDialect
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.compiler import SQLCompiler

_T = TypeVar("_T")
_Convert = Callable[[Any], Any]

#: The dialect the statements are compiled for: SQLAlchemy's own for this driver.
DIALECT: SQLiteDialect = SQLiteDialect_pysqlite()


class Prepared:
    """One statement, compiled once: SQL text with `?` placeholders, the names that fill them in order, and
    SQLAlchemy's conversion for each (a datetime becomes the text SQLAlchemy writes) and for each column read."""

    def __init__(self, statement: ClauseElement, keys: Sequence[str]) -> None:
        compiled = statement.compile(dialect=DIALECT, column_keys=list(keys))
        assert isinstance(compiled, SQLCompiler)
        assert compiled.positiontup is not None
        self.sql = compiled.string
        self._names = tuple(compiled.positiontup)
        expanding = sorted(name for name in self._names if compiled.binds[name].expanding)
        if expanding:
            raise ValueError(f"an expanding parameter ({', '.join(expanding)}) has no fixed SQL")
        self._binds: tuple[_Convert | None, ...] = tuple(
            compiled.binds[name].type.dialect_impl(DIALECT).bind_processor(DIALECT) for name in self._names
        )
        self.row: type[tuple[Any, ...]] | None = None
        self._results: tuple[_Convert | None, ...] = ()
        if isinstance(statement, Select):
            columns = list(statement.selected_columns)
            self.row = namedtuple("Row", [column.key for column in columns])  # type: ignore[misc]
            self._results = tuple(
                column.type.dialect_impl(DIALECT).result_processor(DIALECT, None) for column in columns
            )

    def values(self, parameters: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(
            value if convert is None or value is None else convert(value)
            for value, convert in zip((parameters[name] for name in self._names), self._binds, strict=True)
        )

    def read(self, raw: Sequence[Any]) -> tuple[Any, ...]:
        assert self.row is not None
        return self.row(
            *(value if convert is None else convert(value) for value, convert in zip(raw, self._results, strict=True))
        )


class Rows:
    """What a statement read, as the hot path asks for it (SQLAlchemy's `Result.first` and `all`)."""

    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self._rows = rows

    def first(self) -> tuple[Any, ...] | None:
        return self._rows[0] if self._rows else None

    def all(self) -> list[tuple[Any, ...]]:
        return self._rows


class DriverConnection:
    """A sqlite3 connection that runs SQLAlchemy statements compiled once (`Prepared`, kept per statement).

    Only for statements built once at import (the cache holds them by identity); an integrity error is raised
    as SQLAlchemy's, so callers catch one kind whichever connection ran it."""

    dialect: Dialect = DIALECT

    def __init__(self, raw: sqlite3.Connection) -> None:
        self.raw = raw
        self._prepared: dict[tuple[int, tuple[str, ...]], tuple[ClauseElement, Prepared]] = {}

    def execute(
        self, statement: ClauseElement, parameters: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None
    ) -> Rows:
        """One statement with one set of parameters, or (a list of them) once for each, as SQLAlchemy does."""
        try:
            if parameters is None or isinstance(parameters, Mapping):
                one = parameters or {}
                prepared = self._prepare(statement, one)
                cursor = self.raw.execute(prepared.sql, prepared.values(one))
                return Rows([prepared.read(raw) for raw in cursor.fetchall()] if prepared.row else [])
            if parameters:
                prepared = self._prepare(statement, parameters[0])
                self.raw.executemany(prepared.sql, [prepared.values(row) for row in parameters])
            return Rows([])
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(str(statement), None, exc) from exc

    def _prepare(self, statement: ClauseElement, parameters: Mapping[str, Any]) -> Prepared:
        # Compiled for the parameters' names, as SQLAlchemy's execute does (an INSERT takes its columns from them).
        keys = tuple(sorted(parameters))
        cache_key = (id(statement), keys)
        found = self._prepared.get(cache_key)
        if found is None:
            # The statement is kept with its compiled form, so its id cannot be reused by another object.
            found = self._prepared[cache_key] = (statement, Prepared(statement, keys))
        return found[1]


class SqliteThread:
    """The SQLite database opened a second time, with the standard library's driver, on one thread of its own:
    a read or a whole write transaction is one hop there and back."""

    def __init__(self, path: str, configure: Callable[[sqlite3.Connection], None]) -> None:
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._conn = self._thread.submit(self._connect, path, configure).result()

    @staticmethod
    def _connect(path: str, configure: Callable[[sqlite3.Connection], None]) -> DriverConnection:
        # Autocommit at the driver: this class says where each transaction begins and ends.
        raw = sqlite3.connect(path, isolation_level=None)
        configure(raw)
        return DriverConnection(raw)

    async def read(self, body: Callable[[DriverConnection], _T]) -> _T:
        """`body` on this thread, outside any transaction: each statement reads the latest commit."""
        return await asyncio.get_running_loop().run_in_executor(self._thread, body, self._conn)

    async def write(self, body: Callable[[DriverConnection], _T]) -> _T:
        """`body` in one transaction, committed before this returns; rolled back if it raises."""

        def run() -> _T:
            # IMMEDIATE takes the write lock at once: a writer in another process makes this wait (busy_timeout)
            # here, not fail halfway through the transaction.
            self._conn.raw.execute("BEGIN IMMEDIATE")
            try:
                result = body(self._conn)
            except BaseException:
                self._conn.raw.execute("ROLLBACK")
                raise
            self._conn.raw.execute("COMMIT")
            return result

        return await asyncio.get_running_loop().run_in_executor(self._thread, run)

    def close(self) -> None:
        self._thread.submit(self._conn.raw.close).result()
        self._thread.shutdown()
