"""Anonymous counts: what happened, by day, with no person in them.

A count is written in the same transaction as the change it counts (an answer saved, a ticket closed, /stop), so
the two never disagree, and nothing in a row can point back at anyone: no id, no time finer than the day, and
only breakdowns that are the bot's own vocabulary (a language, a question id, an option id, an outcome, a rule
id, a bucket of minutes). Erasing a person (/delete, the retention purge) erases their rows elsewhere and leaves
these, which is the point: the statistics outlive the people, and the people are not in them.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.figures import bucket_of
from bot.storage.tables import stats

if TYPE_CHECKING:
    from bot.storage.lane import DriverConnection


@dataclass(frozen=True)
class Count:
    """One thing that happened once. `key` is the metric's own breakdown (a question id, a rule id, a bucket);
    the rest say where it happened. Empty strings, not NULLs: they are part of the row's key."""

    metric: str
    key: str = ""
    program_id: str = ""
    language: str = ""
    outcome: str = ""
    nationality: str = ""
    location: str = ""


#: The columns that, with the day, make a row's key.
DIMENSIONS = ("metric", "key", "program_id", "language", "outcome", "nationality", "location")


def record(conn: Connection | DriverConnection, day: dt.date, counts: Iterable[Count]) -> None:
    """Add `counts` to the day's rows, inside the caller's transaction (one upsert per distinct row)."""
    tally = Counter(counts)
    if not tally:
        return
    rows = [{"day": day, **{d: getattr(c, d) for d in DIMENSIONS}, "count": n} for c, n in tally.items()]
    conn.execute(_UPSERTS[conn.dialect.name], rows)


def _upsert(dialect: Any) -> Any:
    """Add to a row's count, creating it if need be (built once: a tap only binds values)."""
    upsert = dialect.insert(stats)
    return upsert.on_conflict_do_update(
        index_elements=["day", *DIMENSIONS], set_={"count": stats.c.count + upsert.excluded.count}
    )


_UPSERTS = {"sqlite": _upsert(sqlite), "postgresql": _upsert(postgresql)}


def hour_of_week(at: dt.datetime) -> str:
    """ "0" for Monday 00:00-00:59 UTC up to "167" for Sunday 23:00-23:59."""
    utc = at.replace(tzinfo=dt.UTC) if at.tzinfo is None else at.astimezone(dt.UTC)
    return str(utc.weekday() * 24 + utc.hour)


def waited(since: dt.datetime, until: dt.datetime) -> str:
    """How long something took, as the key of the bucket it is counted in."""
    return str(bucket_of((until - since).total_seconds()))


@dataclass(frozen=True)
class Row:
    day: dt.date
    count: Count
    n: int


async def rows(
    engine: AsyncEngine, *, since: dt.date | None, metrics: Sequence[str] | None = None, program_id: str = ""
) -> list[Row]:
    """The counts from `since` (None: all), optionally of some metrics and one program, summed per row."""
    query = select(stats.c.day, *(stats.c[d] for d in DIMENSIONS), func.sum(stats.c.count)).group_by(
        stats.c.day, *(stats.c[d] for d in DIMENSIONS)
    )
    if since is not None:
        query = query.where(stats.c.day >= since)
    if metrics is not None:
        query = query.where(stats.c.metric.in_(metrics))
    if program_id:
        # Counts that belong to no program (taps before the notice, tickets, opt-outs) are kept for every program.
        query = query.where(stats.c.program_id.in_(("", program_id)))
    async with engine.connect() as conn:
        found = (await conn.execute(query)).all()
    return [Row(row[0], Count(*row[1:-1]), int(row[-1])) for row in found]
