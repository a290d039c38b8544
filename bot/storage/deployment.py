"""Choices admins make from Telegram that must outlive a restart: key -> value, with who and when."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, insert, select

from bot.storage.sql import SqlStore
from bot.storage.tables import deployment


class Deployment:
    def __init__(self, store: SqlStore) -> None:
        self.store = store

    async def get(self, key: str) -> str | None:
        async with self.store.engine.connect() as conn:
            found = await conn.execute(select(deployment.c.value).where(deployment.c.key == key))
            return found.scalar_one_or_none()

    async def set(self, key: str, value: str, *, by: int, now: dt.datetime) -> None:
        async with self.store.writing() as conn:
            await conn.execute(delete(deployment).where(deployment.c.key == key))
            await conn.execute(insert(deployment).values(key=key, value=value, changed_by=by, changed_at=now))
