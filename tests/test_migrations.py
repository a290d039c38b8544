"""The Alembic migrations build exactly the schema the code describes (bot/storage/tables.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection

from bot.storage import SqlStore, open_store
from bot.storage.tables import metadata
from tests.postgres import own_database


def diff(connection: Connection) -> list[object]:
    return list(compare_metadata(MigrationContext.configure(connection), metadata))


async def test_migrated_schema_matches_the_tables(tmp_path: Path) -> None:
    """After migrating an empty database, autogenerate finds nothing to add, drop or change."""
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
    assert isinstance(store, SqlStore)
    async with store.engine.connect() as conn:
        assert await conn.run_sync(diff) == []
    await store.close()


async def test_migrating_twice_is_harmless(tmp_path: Path) -> None:
    """Opening an already migrated database (every restart) changes nothing and loses nothing."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    first = await open_store(url)
    await first.close()
    second = await open_store(url)
    assert await second.load(1) is None
    await second.close()


async def test_workers_starting_at_once_on_postgresql_migrate_once() -> None:
    """Four workers opening a new PostgreSQL database together: each waits its turn, one migrates, all start."""
    async with own_database("migrate") as url:
        async with asyncio.timeout(60):  # without the lock they deadlock on each other's CREATE TABLE
            stores = await asyncio.gather(*(open_store(url) for _ in range(4)))
        try:
            async with stores[0].engine.connect() as conn:
                assert await conn.run_sync(diff) == []
            assert [await store.load(1) for store in stores] == [None] * 4
        finally:
            for store in stores:
                await store.close()
