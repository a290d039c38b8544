"""The weekly digest: due from its hour in the office's zone, queued once a week into the staff group whatever
restarts or second workers do, and a typo in STATS_DIGEST stops the start with what to write instead."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from bot.app import Core
from bot.config import Settings
from bot.digest import WeeklyDigest
from bot.hours import BadDigestTime, DigestTime
from bot.insights import Insights
from bot.outbox import Entry, Outbox
from bot.storage import SqlStore, open_store
from bot.storage.stats import Count
from bot.storage.tables import outbox
from bot.texts import T

MEXICO = ZoneInfo("America/Mexico_City")
STAFF_CHAT = -100123
#: Monday 7 December 2026, 09:00 in Mexico City (UTC-6).
MONDAY_NINE = dt.datetime(2026, 12, 7, 15, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("moment", "week"),
    [
        (MONDAY_NINE - dt.timedelta(minutes=1), None),  # 08:59 in Mexico City: not yet
        (MONDAY_NINE, "2026-W50"),
        (MONDAY_NINE + dt.timedelta(days=3), "2026-W50"),  # down on Monday, back on Thursday: still this week's
        (MONDAY_NINE + dt.timedelta(days=6, hours=8, minutes=59), "2026-W50"),  # Sunday 23:59 local
        (MONDAY_NINE + dt.timedelta(days=7), "2026-W51"),
    ],
)
def test_the_digest_is_due_from_its_hour_in_the_office_zone(moment: dt.datetime, week: str | None) -> None:
    assert DigestTime.parse("Mon 09:00", MEXICO).due(moment) == week


def test_a_wednesday_digest_is_not_due_on_monday() -> None:
    wednesday = DigestTime.parse("wed 08:30", MEXICO)
    assert wednesday.due(MONDAY_NINE) is None
    assert wednesday.due(MONDAY_NINE + dt.timedelta(days=2)) == "2026-W50"


@pytest.mark.parametrize("text", ["monday 09:00", "mon 9", "mon 25:00", "09:00", "xyz 10:00"])
def test_an_unreadable_digest_time_says_what_to_write(text: str) -> None:
    with pytest.raises(BadDigestTime, match="STATS_DIGEST"):
        DigestTime.parse(text, MEXICO)
    with pytest.raises(ValidationError, match="STATS_DIGEST"):
        Settings(_env_file=None, stats_digest=text)  # type: ignore[call-arg]


def test_no_digest_unless_asked() -> None:
    assert Settings(_env_file=None).digest_time() is None  # type: ignore[call-arg]
    asked = Settings(_env_file=None, stats_digest="fri 17:00", office_timezone="America/Bogota")  # type: ignore[call-arg]
    assert asked.digest_time() == DigestTime(4, dt.time(17, 0), ZoneInfo("America/Bogota"))


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    opened = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'puente.db'}")
    yield opened
    await opened.close()


async def never_sent(entry: Entry) -> int:
    raise AssertionError("the outbox is not started in these tests")


def digest_at(store: SqlStore, core: Core, clock: list[dt.datetime]) -> tuple[WeeklyDigest, Outbox]:
    queue = Outbox(store, never_sent, now=lambda: clock[0])
    insights = Insights(store.engine, lambda: clock[0], core.programs)
    when = DigestTime.parse("mon 09:00", MEXICO)
    digest = WeeklyDigest(
        when, insights, store, queue, core.translator, chat_id=STAFF_CHAT, language="en", clock=lambda: clock[0]
    )
    return digest, queue


async def test_each_week_gets_one_digest_with_that_weeks_figures(store: SqlStore, core: Core) -> None:
    clock = [MONDAY_NINE - dt.timedelta(hours=1)]
    await store.count([Count("started", language="es")] * 7, MONDAY_NINE)
    first, queue = digest_at(store, core, clock)
    # A second worker (or the same bot after a restart) looking at the same moments.
    second, _ = digest_at(store, core, clock)

    assert not await first.post_if_due()
    clock[0] = MONDAY_NINE + dt.timedelta(minutes=1)
    assert await first.post_if_due()
    assert not await second.post_if_due()
    assert not await first.post_if_due()
    assert await queue.pending(STAFF_CHAT) == 1

    clock[0] = MONDAY_NINE + dt.timedelta(days=7)
    assert await second.post_if_due()
    assert await queue.pending(STAFF_CHAT) == 2

    texts = await _queued(store)
    assert texts[0].startswith(core.translator.text("en", T.STATS_DIGEST))
    assert "Opened the bot: 7" in texts[0]


async def _queued(store: SqlStore) -> list[str]:
    async with store.engine.connect() as conn:
        found = await conn.execute(select(outbox.c.payload).order_by(outbox.c.id))
        return [row.payload["text"] for row in found]
