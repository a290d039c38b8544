"""One contract, every backend: in-memory, SQLite, and PostgreSQL when one is reachable on 127.0.0.1:5432."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from types import MappingProxyType

import pytest
from sqlalchemy import delete, text

from bot.storage import MemoryStore, Participant, SqlStore, Store, open_store
from bot.storage.tables import answers, participants, processed_updates
from flows.engine import Session

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
POSTGRES_URL = os.environ.get("PUENTE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


def postgres_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "memory":
        backend: Store = MemoryStore()
    elif request.param == "sqlite":
        backend = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'data' / 'puente.db'}")
    else:
        if not postgres_reachable():
            pytest.skip("no PostgreSQL on 127.0.0.1:5432")
        backend = await open_store(POSTGRES_URL)
        assert isinstance(backend, SqlStore)
        async with backend.engine.begin() as conn:
            for table in (answers, participants, processed_updates):
                await conn.execute(delete(table))
    yield backend
    await backend.close()


def person(user_id: int = 7, node: str | None = "location", **answered: str) -> Participant:
    history = tuple(answered)
    return Participant(
        user_id=user_id,
        chat_id=user_id,
        language="ht",
        consented_at=NOW,
        session=Session("venezuela-2022", node, MappingProxyType(dict(answered)), history),
    )


async def test_unknown_person_loads_as_none(store: Store) -> None:
    """Nobody is stored before they consent."""
    assert await store.load(404) is None


async def test_round_trip_keeps_answers_in_order(store: Store) -> None:
    """What is saved loads back equal, Back history in answer order."""
    saved = person(node="mx_pa_irregular", nationality="venezuelan", location="mexico", mexico_entry="before")
    assert await store.save(saved, previous=None, update_id=1, now=NOW)
    assert await store.load(7) == saved


async def test_changed_and_removed_answers(store: Store) -> None:
    """Going back and answering differently replaces the stored answers; dropped ones disappear."""
    first = person(node="travels_with", nationality="family", family_relation="spouse")
    await store.save(first, previous=None, update_id=1, now=NOW)
    changed = person(node="location", nationality="venezuelan")
    await store.save(changed, previous=first, update_id=2, now=NOW)
    assert await store.load(7) == changed


async def test_same_update_applies_once(store: Store) -> None:
    """A repeated update id writes nothing and says so."""
    first = person(node="location", nationality="venezuelan")
    assert await store.save(first, previous=None, update_id=10, now=NOW)
    assert await store.processed(10)
    assert (await store.load_for(7, update_id=10)).already_processed
    assert not (await store.load_for(7, update_id=11)).already_processed
    assert not await store.save(
        person(node="mexico_entry", nationality="venezuelan", location="mexico"), previous=first, update_id=10, now=NOW
    )
    assert await store.load(7) == first


async def test_delete_erases_person_and_answers(store: Store) -> None:
    """Delete leaves nothing that loads, and reports whether there was anything."""
    await store.save(person(nationality="venezuelan"), previous=None, update_id=None, now=NOW)
    assert await store.delete(7)
    assert await store.load(7) is None
    assert not await store.delete(7)
    if isinstance(store, SqlStore):
        async with store.engine.connect() as conn:
            left = (await conn.execute(text("SELECT count(*) FROM answers WHERE user_id = 7"))).scalar_one()
        assert left == 0


async def test_people_are_independent(store: Store) -> None:
    """Concurrent saves for different people never mix their answers."""
    people = [person(user_id=i, node="location", nationality="venezuelan" if i % 2 else "family") for i in range(1, 21)]
    results = await asyncio.gather(*(store.save(p, previous=None, update_id=100 + p.user_id, now=NOW) for p in people))
    assert all(results)
    for p in people:
        assert await store.load(p.user_id) == p


async def test_finished_session_keeps_outcome(store: Store) -> None:
    """A finished questionnaire stores no current question and its outcome."""
    done = Participant(**{**person(node=None, nationality="h2b_country").__dict__, "outcome": "another_route"})
    await store.save(done, previous=None, update_id=None, now=NOW)
    loaded = await store.load(7)
    assert loaded is not None
    assert loaded.session.finished
    assert loaded.outcome == "another_route"


async def test_a_long_walk_back_and_forth(store: Store) -> None:
    """Saving step by step with back-and-forth changes always leaves exactly the current path stored."""
    steps = [
        person(node="location", nationality="venezuelan"),
        person(node="mexico_entry", nationality="venezuelan", location="mexico"),
        person(node="location", nationality="venezuelan"),
        person(node="mx_pa_irregular", nationality="venezuelan", location="panama"),
        person(node="nationality"),
        person(node="family_relation", nationality="family"),
    ]
    previous = None
    for number, current in enumerate(steps):
        assert await store.save(current, previous=previous, update_id=200 + number, now=NOW)
        assert await store.load(7) == current
        previous = current
