"""Anonymous counts by day (the `stats` table), what of each person they hold (`participants.counted`), and when
staff first answered a ticket; the counts are back-filled once from what the database holds today.

What can be rebuilt is: who accepted the notice (and when), the questions answered and the one on screen, each
first result with its language, nationality and location, tickets opened and closed, /stop. What cannot is left
at zero rather than guessed: taps before the notice, active people by day, the rules behind past results, first
staff answers.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

import datetime as dt
from collections import Counter

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

#: Times to an answer are counted by bucket (bot.figures.BUCKETS, as of this revision).
BUCKETS = (60, 300, 900, 1800, 3600, 2 * 3600, 4 * 3600, 8 * 3600, 86400, 2 * 86400, 7 * 86400, 10**9)
KEY = ("day", "metric", "key", "program_id", "language", "outcome", "nationality", "location")


def upgrade() -> None:
    stats = op.create_table(
        "stats",
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("metric", sa.String(24), primary_key=True),
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("program_id", sa.String(64), primary_key=True),
        sa.Column("language", sa.String(8), primary_key=True),
        sa.Column("outcome", sa.String(32), primary_key=True),
        sa.Column("nationality", sa.String(32), primary_key=True),
        sa.Column("location", sa.String(32), primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
    )
    with op.batch_alter_table("participants") as batch:
        batch.add_column(sa.Column("counted", sa.Text, nullable=True))
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True))
    _backfill(op.get_bind(), stats)


def downgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("answered_at")
    with op.batch_alter_table("participants") as batch:
        batch.drop_column("counted")
    op.drop_table("stats")


def _backfill(conn: sa.Connection, stats: sa.Table) -> None:
    meta = sa.MetaData()
    participants = sa.Table("participants", meta, autoload_with=conn)
    answers = sa.Table("answers", meta, autoload_with=conn)
    tickets = sa.Table("tickets", meta, autoload_with=conn)
    optouts = sa.Table("broadcast_optouts", meta, autoload_with=conn)
    counts: Counter[tuple[object, ...]] = Counter()

    def add(day: dt.date, metric: str, key: str = "", program: str = "", language: str = "", **more: str) -> None:
        counts[(day, metric, key, program, language, more.get("outcome", ""), *_where(more))] += 1

    answered: dict[int, list[tuple[str, str, dt.datetime]]] = {}
    for user_id, question, option, at in conn.execute(
        sa.select(answers.c.user_id, answers.c.question_id, answers.c.option_id, answers.c.answered_at)
    ):
        answered.setdefault(user_id, []).append((question, option, _utc(at)))
    for person in conn.execute(sa.select(participants)).all():
        program, language = person.program_id, person.language
        marks = {f"p:{program}"}
        add(_utc(person.consented_at).date(), "consented", program=program, language=language)
        for question, _, at in answered.get(person.user_id, []):
            add(at.date(), "answered", question, program, language)
            add(at.date(), "reached", question, program, language)
            marks |= {f"a:{question}", f"q:{question}"}
        if person.node is not None:
            add(_utc(person.updated_at).date(), "reached", person.node, program, language)
            marks.add(f"q:{person.node}")
        if person.outcome is not None:
            given = {question: option for question, option, _ in answered.get(person.user_id, [])}
            where = {"nationality": given.get("nationality", ""), "location": given.get("location", "")}
            add(_utc(person.updated_at).date(), "finished", "", program, language, outcome=person.outcome, **where)
            marks.add("done")
        conn.execute(
            participants.update()
            .where(participants.c.user_id == person.user_id)
            .values(counted=" ".join(sorted(marks)))
        )
    for opened_at, closed_at in conn.execute(sa.select(tickets.c.opened_at, tickets.c.closed_at)):
        opened = _utc(opened_at)
        add(opened.date(), "ticket_opened", str(opened.weekday() * 24 + opened.hour))
        if closed_at is not None:
            closed = _utc(closed_at)
            seconds = (closed - opened).total_seconds()
            add(closed.date(), "ticket_closed", str(next(b for b in BUCKETS if seconds <= b)))
    for (at,) in conn.execute(sa.select(optouts.c.at).where(optouts.c.reason == "stopped")):
        add(_utc(at).date(), "stopped")
    if counts:
        conn.execute(stats.insert(), [{**dict(zip(KEY, row, strict=True)), "count": n} for row, n in counts.items()])


def _where(more: dict[str, str]) -> tuple[str, str]:
    return more.get("nationality", ""), more.get("location", "")


def _utc(value: dt.datetime) -> dt.datetime:
    """SQLite hands back naive datetimes (stored as UTC), PostgreSQL aware ones in the session's zone."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
