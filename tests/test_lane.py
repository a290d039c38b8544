"""The SQLite hot path (bot.storage.lane) against SQLAlchemy's own execution of the same statements.

The questionnaire's load and save run on the standard library's driver with statements SQLAlchemy compiled
once; everything else in the bot reads those rows through SQLAlchemy. These tests hold the two to the same bytes
in every column, and the lane's transactions to all-or-nothing.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from types import MappingProxyType

import pytest
from sqlalchemy import bindparam, delete
from sqlalchemy.exc import IntegrityError

from bot.storage import Participant, SqlStore, open_store
from bot.storage.lane import Prepared
from bot.storage.stats import Count
from bot.storage.tables import answers
from flows.engine import Session

NOW = dt.datetime(2026, 11, 22, 12, 0, 5, 123456, tzinfo=dt.UTC)
TABLES = ("participants", "answers", "processed_updates", "stats")


def person(node: str | None, *answered: tuple[str, str], outcome: str | None = None) -> Participant:
    return Participant(
        user_id=41,
        chat_id=41,
        language="ht",
        consented_at=NOW - dt.timedelta(minutes=3),
        session=Session("venezuela-2022", node, MappingProxyType(dict(answered)), tuple(q for q, _ in answered)),
        outcome=outcome,
        counted=frozenset({"started"}),
    )


#: A walk with an answer added, one changed, one taken back, and a result: every statement of the hot path.
WALK = [
    person("nationality"),
    person("location", ("nationality", "venezuelan")),
    person("passport", ("nationality", "venezuelan"), ("location", "mexico")),
    person("passport", ("nationality", "venezuelan"), ("location", "panama")),
    person("location", ("nationality", "venezuelan")),
    person(None, ("nationality", "venezuelan"), ("location", "panama"), outcome="eligible"),
]


async def walk(store: SqlStore) -> None:
    previous = None
    for update_id, participant in enumerate(WALK, start=900):
        counts = [Count("answered", key=participant.session.node or "", language="ht")]
        assert await store.save(participant, previous=previous, update_id=update_id, now=NOW, counts=counts)
        loaded = (await store.load_for(participant.user_id, update_id=None)).participant
        assert loaded == participant
        previous = loaded


def dump(database: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of the hot path's tables as SQLite holds it: each value with its storage class."""
    with sqlite3.connect(database) as conn:
        return {
            table: sorted(
                tuple((value, type(value).__name__) for value in row) for row in conn.execute(f"SELECT * FROM {table}")
            )
            for table in TABLES
        }


@pytest.fixture
async def lane_store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'lane.db'}")
    yield store
    await store.close()


async def test_the_lane_writes_what_sqlalchemy_writes(lane_store: SqlStore, tmp_path: Path) -> None:
    engine_only = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'engine.db'}")
    try:
        through_engine = SqlStore(engine_only.engine, single_writer=True)  # the same store without the lane
        await walk(through_engine)
        await walk(lane_store)
    finally:
        await engine_only.close()
    by_lane, by_engine = dump(tmp_path / "lane.db"), dump(tmp_path / "engine.db")
    assert by_lane["answers"], "the walk left answers to compare"
    assert by_lane == by_engine


async def test_a_transaction_that_fails_leaves_nothing(lane_store: SqlStore) -> None:
    first, second = WALK[0], WALK[1]
    assert await lane_store.save(first, previous=None, update_id=1, now=NOW)
    # Saved as new although they exist: the update id is written, then the person's row is refused.
    with pytest.raises(IntegrityError):
        await lane_store.save(second, previous=None, update_id=2, now=NOW)
    assert not await lane_store.processed(2), "the update id went with the rest of its transaction"
    assert (await lane_store.load_for(41, update_id=None)).participant == first
    # An update applied once is refused the second time, as SQLAlchemy's error, and the lane goes on.
    assert await lane_store.save(second, previous=first, update_id=2, now=NOW)
    assert not await lane_store.save(WALK[2], previous=second, update_id=2, now=NOW)
    assert (await lane_store.load_for(41, update_id=None)).participant == second


def test_a_statement_whose_sql_depends_on_its_values_is_refused() -> None:
    expanding = delete(answers).where(answers.c.question_id.in_(bindparam("gone", expanding=True)))
    with pytest.raises(ValueError, match="gone"):
        Prepared(expanding, ["gone"])
