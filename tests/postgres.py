"""A PostgreSQL database of a test's own on the machine's server, dropped afterwards.

Tests that share the server (other tests, a helper's run, several workers of one test) must not share a schema:
one run's migration would be another's surprise.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from tests.test_storage_contract import POSTGRES_URL, postgres_reachable


@contextlib.asynccontextmanager
async def own_database(purpose: str) -> AsyncIterator[str]:
    """Create an empty database named after `purpose`, yield its URL, drop it (and its connections) at the end.
    Skips the test when no PostgreSQL answers on 127.0.0.1:5432."""
    if not postgres_reachable():
        pytest.skip("no PostgreSQL on 127.0.0.1:5432")
    name = f"puente_{purpose}_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
        finally:
            async with admin.connect() as conn:
                await conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()
