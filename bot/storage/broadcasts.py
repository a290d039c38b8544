"""Broadcasts in the database: drafts, jobs, one row per recipient, and who opted out.

A broadcast's recipients are fixed when it starts (the audience as it is then), one row each; the sender pages
through the pending ones and records outcomes in batches. Everything a restart needs is here: a broadcast that
was running when the process died carries on with its pending rows.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Collection, Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Row

from bot.claims import claimable
from bot.storage import stats
from bot.storage.referrals import Status as ReferralStatus
from bot.storage.sql import SqlStore, utc
from bot.storage.stats import Count
from bot.storage.tables import (
    answers,
    broadcast_optouts,
    broadcast_recipients,
    broadcasts,
    participants,
    referrals,
    tickets,
)
from bot.storage.tickets import OPEN as OPEN_TICKETS


class BroadcastStatus(enum.StrEnum):
    DRAFT = "draft"
    #: Waiting for the broadcast before it to finish.
    QUEUED = "queued"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    DONE = "done"


#: A broadcast in one of these is over; nothing changes it any more.
ENDED = (BroadcastStatus.CANCELLED, BroadcastStatus.DONE)


class RecipientStatus(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    #: Telegram refused this message for good ("chat not found", a bad file, too many retries).
    FAILED = "failed"
    #: They blocked the bot or their account is gone: left out of later broadcasts too.
    BLOCKED = "blocked"
    #: The broadcast was cancelled before their turn.
    CANCELLED = "cancelled"
    #: They sent /stop after the broadcast began, before their turn.
    SKIPPED = "skipped"


class OptOut(enum.StrEnum):
    STOPPED = "stopped"
    UNREACHABLE = "unreachable"


#: The answers an audience can be narrowed by: dimension -> the questionnaire's question id.
ANSWER_DIMENSIONS: Mapping[str, str] = {"nationality": "nationality", "country": "location"}


@dataclass(frozen=True)
class Audience:
    """Who a broadcast is for: every filter set must hold (none set: everyone subscribed)."""

    language: str | None = None
    outcome: str | None = None
    nationality: str | None = None
    country: str | None = None
    referral: str | None = None
    #: True: only people talking to staff right now.
    handoff: bool | None = None
    #: Only these people (user ids), e.g. those whose result changed when the program was switched.
    people: tuple[int, ...] | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Audience:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if values.get("people") is not None:
            values["people"] = tuple(int(p) for p in values["people"])
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if v is not None}
        if "people" in data:
            data["people"] = list(data["people"])
        return data

    @property
    def everyone(self) -> bool:
        return not self.to_json()


@dataclass(frozen=True)
class Version:
    """One language's message: a text, with a photo or a document (Telegram file ids) or neither."""

    text: str
    photo: str | None = None
    document: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Version:
        return cls(str(data["text"]), data.get("photo"), data.get("document"))


@dataclass(frozen=True)
class Broadcast:
    id: int
    created_by: int
    #: The admin's language, for the composer, the progress message and the report.
    language: str
    status: BroadcastStatus
    step: str | None
    versions: Mapping[str, Version]
    fallback: str | None
    audience: Audience
    scheduled_for: dt.datetime | None
    timezone: str | None
    progress_message_id: int | None
    report: Mapping[str, Any] | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    #: The worker that edits the progress message, and until when its claim holds (bot.broadcast).
    reporter: str | None = None
    reporter_until: dt.datetime | None = None

    def reported_by_another(self, worker_id: str, now: dt.datetime) -> bool:
        """Whether a live claim of another worker says it shows this broadcast's progress."""
        return (
            self.reporter is not None
            and self.reporter != worker_id
            and self.reporter_until is not None
            and self.reporter_until >= now
        )

    def version_for(self, language: str) -> str | None:
        """Which version someone speaking `language` gets: their own, else the fallback, else none."""
        if language in self.versions:
            return language
        return self.fallback if self.fallback in self.versions else None


@dataclass(frozen=True)
class Recipient:
    user_id: int
    chat_id: int
    #: The version they get (their language, or the fallback).
    language: str
    attempts: int


@dataclass(frozen=True)
class Outcome:
    """What happened to one recipient; `reason` is Telegram's description, never the message."""

    user_id: int
    status: RecipientStatus
    attempts: int
    reason: str | None = None


@dataclass(frozen=True)
class Counts:
    by_status: Mapping[RecipientStatus, int] = field(default_factory=dict)

    def __getitem__(self, status: RecipientStatus) -> int:
        return self.by_status.get(status, 0)

    @property
    def total(self) -> int:
        return sum(self.by_status.values())

    @property
    def done(self) -> int:
        return self.total - self[RecipientStatus.PENDING]


class Broadcasts:
    def __init__(self, store: SqlStore, answer_dimensions: Mapping[str, str] = ANSWER_DIMENSIONS) -> None:
        self.store = store
        self.answer_dimensions = answer_dimensions

    # ------------------------------------------------------------------ drafts and jobs

    async def draft_of(self, admin_id: int) -> Broadcast | None:
        """The admin's broadcast being composed, if any."""
        async with self.store.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(broadcasts)
                    .where(broadcasts.c.created_by == admin_id, broadcasts.c.status == BroadcastStatus.DRAFT)
                    .order_by(broadcasts.c.id.desc())
                    .limit(1)
                )
            ).first()
        return _broadcast(row) if row else None

    async def new_draft(self, admin_id: int, language: str, step: str, now: dt.datetime) -> Broadcast:
        """Start composing (an unfinished draft of the same admin is dropped)."""
        async with self.store.writing() as conn:
            await conn.execute(
                delete(broadcasts).where(
                    broadcasts.c.created_by == admin_id, broadcasts.c.status == BroadcastStatus.DRAFT
                )
            )
            result = await conn.execute(
                insert(broadcasts).values(
                    created_by=admin_id,
                    language=language,
                    status=BroadcastStatus.DRAFT,
                    step=step,
                    versions={},
                    audience={},
                    created_at=now,
                )
            )
            key = result.inserted_primary_key
        assert key is not None
        found = await self.get(int(key[0]))
        assert found is not None
        return found

    async def edit_draft(
        self,
        broadcast_id: int,
        *,
        step: str | None = None,
        versions: Mapping[str, Version] | None = None,
        fallback: str | None = None,
        audience: Audience | None = None,
    ) -> Broadcast | None:
        values: dict[str, Any] = {}
        if step is not None:
            values["step"] = step
        if versions is not None:
            values["versions"] = {lang: asdict(v) for lang, v in versions.items()}
        if fallback is not None:
            values["fallback"] = fallback
        if audience is not None:
            values["audience"] = audience.to_json()
        async with self.store.writing() as conn:
            await conn.execute(
                update(broadcasts)
                .where(broadcasts.c.id == broadcast_id, broadcasts.c.status == BroadcastStatus.DRAFT)
                .values(**values)
            )
        return await self.get(broadcast_id)

    async def discard(self, broadcast_id: int) -> None:
        async with self.store.writing() as conn:
            await conn.execute(
                delete(broadcasts).where(broadcasts.c.id == broadcast_id, broadcasts.c.status == BroadcastStatus.DRAFT)
            )

    async def get(self, broadcast_id: int) -> Broadcast | None:
        async with self.store.engine.connect() as conn:
            row = (await conn.execute(select(broadcasts).where(broadcasts.c.id == broadcast_id))).first()
        return _broadcast(row) if row else None

    async def recent(self, limit: int = 10) -> list[Broadcast]:
        """The latest broadcasts that left the composer, newest first."""
        async with self.store.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(broadcasts)
                    .where(broadcasts.c.status != BroadcastStatus.DRAFT)
                    .order_by(broadcasts.c.id.desc())
                    .limit(limit)
                )
            ).all()
        return [_broadcast(row) for row in rows]

    async def submit(
        self, broadcast_id: int, *, scheduled_for: dt.datetime | None = None, timezone: str | None = None
    ) -> bool:
        """A draft leaves the composer: queued to go now, or scheduled. False if it was no longer a draft."""
        status = BroadcastStatus.SCHEDULED if scheduled_for else BroadcastStatus.QUEUED
        async with self.store.writing() as conn:
            result = await conn.execute(
                update(broadcasts)
                .where(broadcasts.c.id == broadcast_id, broadcasts.c.status == BroadcastStatus.DRAFT)
                .values(status=status, step=None, scheduled_for=scheduled_for, timezone=timezone)
            )
        return bool(result.rowcount)

    async def transition(
        self, broadcast_id: int, to: BroadcastStatus, *, allowed_from: Collection[BroadcastStatus], now: dt.datetime
    ) -> Broadcast | None:
        """Move a broadcast between states (pause, resume, cancel); None when its state does not allow it.

        Cancelling marks every recipient still pending as cancelled, in the same transaction.
        """
        async with self.store.writing() as conn:
            values: dict[str, Any] = {"status": to}
            if to in ENDED:
                values["finished_at"] = now
            result = await conn.execute(
                update(broadcasts)
                .where(broadcasts.c.id == broadcast_id, broadcasts.c.status.in_(list(allowed_from)))
                .values(**values)
            )
            if not result.rowcount:
                return None
            if to == BroadcastStatus.CANCELLED:
                await conn.execute(
                    update(broadcast_recipients)
                    .where(
                        broadcast_recipients.c.broadcast_id == broadcast_id,
                        broadcast_recipients.c.status == RecipientStatus.PENDING,
                    )
                    .values(status=RecipientStatus.CANCELLED, done_at=now)
                )
        return await self.get(broadcast_id)

    async def next_job(self, now: dt.datetime) -> Broadcast | None:
        """The broadcast to work on: one already running, else the oldest queued or due scheduled one."""
        async with self.store.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(broadcasts)
                    .where(
                        or_(
                            broadcasts.c.status.in_((BroadcastStatus.RUNNING, BroadcastStatus.QUEUED)),
                            and_(broadcasts.c.status == BroadcastStatus.SCHEDULED, broadcasts.c.scheduled_for <= now),
                        )
                    )
                    .order_by((broadcasts.c.status != BroadcastStatus.RUNNING), broadcasts.c.id)
                    .limit(1)
                )
            ).first()
        return _broadcast(row) if row else None

    async def next_scheduled(self) -> dt.datetime | None:
        async with self.store.engine.connect() as conn:
            found = (
                await conn.execute(
                    select(func.min(broadcasts.c.scheduled_for)).where(broadcasts.c.status == BroadcastStatus.SCHEDULED)
                )
            ).scalar_one()
        return utc(found) if found is not None else None

    async def begin(self, broadcast: Broadcast, now: dt.datetime) -> int | None:
        """Fix the recipients (the audience as it is now) and mark the broadcast running, in one transaction.

        Returns how many recipients it has, or None if it was not waiting to start (already begun, cancelled).
        """
        chosen = self._audience_query(broadcast.audience)
        language = self._version_column(broadcast)
        rows = select(
            literal(broadcast.id).label("broadcast_id"),
            participants.c.user_id,
            participants.c.chat_id,
            language.label("language"),
            literal(RecipientStatus.PENDING.value).label("status"),
            literal(0).label("attempts"),
        ).where(participants.c.user_id.in_(chosen), language.is_not(None))
        async with self.store.writing() as conn:
            started = await conn.execute(
                update(broadcasts)
                .where(
                    broadcasts.c.id == broadcast.id,
                    broadcasts.c.status.in_((BroadcastStatus.QUEUED, BroadcastStatus.SCHEDULED)),
                )
                .values(status=BroadcastStatus.RUNNING, started_at=now)
            )
            if not started.rowcount:
                return None
            columns = ["broadcast_id", "user_id", "chat_id", "language", "status", "attempts"]
            result = await conn.execute(insert(broadcast_recipients).from_select(columns, rows))
        return int(result.rowcount)

    async def finish(self, broadcast_id: int, now: dt.datetime) -> Counts | None:
        """Mark a running broadcast done and keep its counts in the report; None if it was not running (another
        worker finished it first, and that one reports it)."""
        counts = await self.counts(broadcast_id)
        report = {status.value: n for status, n in counts.by_status.items()}
        async with self.store.writing() as conn:
            result = await conn.execute(
                update(broadcasts)
                .where(broadcasts.c.id == broadcast_id, broadcasts.c.status == BroadcastStatus.RUNNING)
                .values(status=BroadcastStatus.DONE, finished_at=now, report=report)
            )
        return counts if result.rowcount else None

    async def set_progress_message(self, broadcast_id: int, message_id: int) -> None:
        async with self.store.writing() as conn:
            await conn.execute(
                update(broadcasts).where(broadcasts.c.id == broadcast_id).values(progress_message_id=message_id)
            )

    # ------------------------------------------------------------------ recipients

    async def pending(self, broadcast_id: int, *, after: int | None, limit: int) -> list[Recipient]:
        """The next pending recipients in user id order, after the user id `after`."""
        query = (
            select(
                broadcast_recipients.c.user_id,
                broadcast_recipients.c.chat_id,
                broadcast_recipients.c.language,
                broadcast_recipients.c.attempts,
            )
            .where(
                broadcast_recipients.c.broadcast_id == broadcast_id,
                broadcast_recipients.c.status == RecipientStatus.PENDING,
            )
            .order_by(broadcast_recipients.c.user_id)
            .limit(limit)
        )
        if after is not None:
            query = query.where(broadcast_recipients.c.user_id > after)
        async with self.store.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [Recipient(r.user_id, r.chat_id, r.language, r.attempts) for r in rows]

    async def claim(
        self, broadcast_id: int, worker_id: str, *, limit: int, now: dt.datetime, until: dt.datetime
    ) -> list[Recipient]:
        """Take up to `limit` pending recipients nobody holds (or whose holder's lease passed), in user id order.

        On PostgreSQL the rows are locked with SKIP LOCKED, so two workers claiming at once get different rows
        without waiting on each other; SQLite has one writer at a time.
        """
        table = broadcast_recipients
        chosen = (
            select(table.c.user_id, table.c.chat_id, table.c.language, table.c.attempts)
            .where(table.c.broadcast_id == broadcast_id, table.c.status == RecipientStatus.PENDING)
            .where(claimable(table, now))
            .order_by(table.c.user_id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        async with self.store.writing() as conn:
            rows = (await conn.execute(chosen)).all()
            if rows:
                await conn.execute(
                    update(table)
                    .where(table.c.broadcast_id == broadcast_id, table.c.user_id.in_([r.user_id for r in rows]))
                    .values(claimed_by=worker_id, lease_until=until)
                )
        return [Recipient(r.user_id, r.chat_id, r.language, r.attempts) for r in rows]

    async def claim_reporting(self, broadcast_id: int, worker_id: str, *, now: dt.datetime, until: dt.datetime) -> bool:
        """Become (or stay) the worker that shows the broadcast's progress; False while another live one is."""
        async with self.store.writing() as conn:
            result = await conn.execute(
                update(broadcasts)
                .where(
                    broadcasts.c.id == broadcast_id,
                    or_(claimable(broadcasts, now), broadcasts.c.claimed_by == worker_id),
                )
                .values(claimed_by=worker_id, lease_until=until)
            )
        return bool(result.rowcount)

    async def renew(self, broadcast_id: int, worker_id: str, until: dt.datetime) -> None:
        """Extend every claim `worker_id` holds on the broadcast (its pending recipients, the progress message)."""
        async with self.store.writing() as conn:
            await conn.execute(
                update(broadcast_recipients)
                .where(
                    broadcast_recipients.c.broadcast_id == broadcast_id,
                    broadcast_recipients.c.claimed_by == worker_id,
                    broadcast_recipients.c.status == RecipientStatus.PENDING,
                )
                .values(lease_until=until)
            )
            await conn.execute(
                update(broadcasts)
                .where(broadcasts.c.id == broadcast_id, broadcasts.c.claimed_by == worker_id)
                .values(lease_until=until)
            )

    async def holders(self, broadcast_id: int) -> list[str]:
        """The workers holding claims on the broadcast (its pending recipients or its progress message)."""
        async with self.store.engine.connect() as conn:
            on_rows = select(broadcast_recipients.c.claimed_by).where(
                broadcast_recipients.c.broadcast_id == broadcast_id,
                broadcast_recipients.c.status == RecipientStatus.PENDING,
                broadcast_recipients.c.claimed_by.is_not(None),
            )
            on_job = select(broadcasts.c.claimed_by).where(
                broadcasts.c.id == broadcast_id, broadcasts.c.claimed_by.is_not(None)
            )
            found = (await conn.execute(on_rows.union(on_job))).scalars().all()
        return [str(worker) for worker in found]

    async def release(self, broadcast_id: int, workers: Collection[str], *, reporting: bool = True) -> None:
        """Free the claims these workers hold on the broadcast (they stopped working on it, or they are dead): on
        its pending recipients, and with `reporting` on its progress message."""
        if not workers:
            return
        async with self.store.writing() as conn:
            await conn.execute(
                update(broadcast_recipients)
                .where(
                    broadcast_recipients.c.broadcast_id == broadcast_id,
                    broadcast_recipients.c.claimed_by.in_(list(workers)),
                    broadcast_recipients.c.status == RecipientStatus.PENDING,
                )
                .values(claimed_by=None, lease_until=None)
            )
            if not reporting:
                return
            await conn.execute(
                update(broadcasts)
                .where(broadcasts.c.id == broadcast_id, broadcasts.c.claimed_by.in_(list(workers)))
                .values(claimed_by=None, lease_until=None)
            )

    async def record(
        self, broadcast_id: int, outcomes: Iterable[Outcome], now: dt.datetime, *, worker_id: str | None = None
    ) -> None:
        """Write a batch of outcomes in one transaction; blocked people are also left out of later broadcasts.

        A row cancelled meanwhile still records what really happened to a message that was already on its way.
        With `worker_id`, only rows that worker still holds are written (a worker whose lease was taken over does
        not overwrite the new holder).
        """
        batch = list(outcomes)
        if not batch:
            return
        mine = [] if worker_id is None else [broadcast_recipients.c.claimed_by == worker_id]
        statement = (
            update(broadcast_recipients)
            .where(
                broadcast_recipients.c.broadcast_id == broadcast_id,
                broadcast_recipients.c.user_id == bindparam("uid"),
                or_(
                    broadcast_recipients.c.status == RecipientStatus.PENDING,
                    broadcast_recipients.c.status == RecipientStatus.CANCELLED,
                ),
                *mine,
            )
            .values(
                status=bindparam("new_status"),
                attempts=bindparam("new_attempts"),
                reason=bindparam("new_reason"),
                done_at=bindparam("new_done_at"),
            )
        )
        rows = [
            {
                "uid": o.user_id,
                "new_status": o.status.value,
                "new_attempts": o.attempts,
                "new_reason": o.reason,
                "new_done_at": None if o.status == RecipientStatus.PENDING else now,
            }
            for o in batch
        ]
        blocked = [o.user_id for o in batch if o.status == RecipientStatus.BLOCKED]
        async with self.store.writing() as conn:
            await conn.execute(statement.execution_options(synchronize_session=False), rows)
            if blocked:
                # Not over a /stop: that one is theirs, and it does not lapse.
                await conn.execute(
                    delete(broadcast_optouts).where(
                        broadcast_optouts.c.user_id.in_(blocked), broadcast_optouts.c.reason == OptOut.UNREACHABLE
                    )
                )
                fresh = select(participants.c.user_id).where(
                    participants.c.user_id.in_(blocked),
                    ~exists().where(broadcast_optouts.c.user_id == participants.c.user_id),
                )
                ids = (await conn.execute(fresh)).scalars().all()
                if ids:
                    await conn.execute(
                        insert(broadcast_optouts),
                        [{"user_id": uid, "reason": OptOut.UNREACHABLE.value, "at": now} for uid in ids],
                    )

    async def counts(self, broadcast_id: int) -> Counts:
        async with self.store.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(broadcast_recipients.c.status, func.count())
                    .where(broadcast_recipients.c.broadcast_id == broadcast_id)
                    .group_by(broadcast_recipients.c.status)
                )
            ).all()
        return Counts({RecipientStatus(status): int(n) for status, n in rows})

    async def failure_reasons(self, broadcast_id: int, limit: int = 5) -> list[tuple[str, int]]:
        """The commonest reasons recipients failed, with how many each (for the report; no one is named)."""
        async with self.store.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(broadcast_recipients.c.reason, func.count().label("n"))
                    .where(
                        broadcast_recipients.c.broadcast_id == broadcast_id,
                        broadcast_recipients.c.status == RecipientStatus.FAILED,
                    )
                    .group_by(broadcast_recipients.c.reason)
                    .order_by(func.count().desc())
                    .limit(limit)
                )
            ).all()
        return [(str(reason), int(n)) for reason, n in rows]

    # ------------------------------------------------------------------ audiences

    async def audience_languages(self, audience: Audience) -> dict[str, int]:
        """How many people the audience holds now, by their language."""
        async with self.store.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(participants.c.language, func.count())
                    .where(participants.c.user_id.in_(self._audience_query(audience)))
                    .group_by(participants.c.language)
                )
            ).all()
        return {str(lang): int(n) for lang, n in rows}

    def _audience_query(self, audience: Audience) -> Any:
        """The user ids in the audience: subscribed, reachable, and matching every filter."""
        person = participants.c.user_id
        conditions: list[ColumnElement[bool]] = [
            ~exists().where(
                broadcast_optouts.c.user_id == person,
                or_(
                    broadcast_optouts.c.reason == OptOut.STOPPED,
                    # Unreachable lapses once they write again (they unblocked the bot).
                    broadcast_optouts.c.at >= participants.c.updated_at,
                ),
            )
        ]
        if audience.language is not None:
            conditions.append(participants.c.language == audience.language)
        if audience.outcome is not None:
            conditions.append(participants.c.outcome == audience.outcome)
        for dimension, question_id in self.answer_dimensions.items():
            option = getattr(audience, dimension)
            if option is not None:
                conditions.append(
                    exists().where(
                        answers.c.user_id == person, answers.c.question_id == question_id, answers.c.option_id == option
                    )
                )
        if audience.referral is not None:
            conditions.append(
                exists().where(referrals.c.user_id == person, referrals.c.status == ReferralStatus(audience.referral))
            )
        if audience.handoff:
            conditions.append(exists().where(tickets.c.user_id == person, tickets.c.status.in_(OPEN_TICKETS)))
        if audience.people is not None:
            conditions.append(person.in_(audience.people))
        return select(person).where(*conditions)

    @staticmethod
    def _version_column(broadcast: Broadcast) -> Any:
        """SQL for the version each participant gets (NULL: none, they are left out)."""
        own = list(broadcast.versions)
        fallback = broadcast.fallback if broadcast.fallback in broadcast.versions else None
        return case(
            (participants.c.language.in_(own), participants.c.language),
            else_=literal(fallback) if fallback else None,
        )

    # ------------------------------------------------------------------ subscriptions

    async def stop(self, user_id: int, now: dt.datetime) -> None:
        """/stop: no more broadcasts until /subscribe (counted, anonymously, when it changes something)."""
        async with self.store.writing() as conn:
            was = await conn.execute(
                delete(broadcast_optouts)
                .where(broadcast_optouts.c.user_id == user_id)
                .returning(broadcast_optouts.c.reason)
            )
            if was.scalar() != OptOut.STOPPED:
                await conn.run_sync(stats.record, now.date(), [Count("stopped")])
            await conn.execute(insert(broadcast_optouts).values(user_id=user_id, reason=OptOut.STOPPED, at=now))

    async def subscribe(self, user_id: int, now: dt.datetime) -> bool:
        """/subscribe: broadcasts again. False if they were subscribed already."""
        async with self.store.writing() as conn:
            result = await conn.execute(delete(broadcast_optouts).where(broadcast_optouts.c.user_id == user_id))
            if result.rowcount:
                await conn.run_sync(stats.record, now.date(), [Count("resubscribed")])
        return bool(result.rowcount)

    async def received(self, user_id: int) -> int:
        """How many broadcasts reached the person (for /mydata)."""
        async with self.store.engine.connect() as conn:
            found = await conn.execute(
                select(func.count()).where(
                    broadcast_recipients.c.user_id == user_id,
                    broadcast_recipients.c.status == RecipientStatus.SENT,
                )
            )
            return int(found.scalar_one())

    async def stopped(self, user_id: int) -> bool:
        async with self.store.engine.connect() as conn:
            found = await conn.execute(
                select(broadcast_optouts.c.user_id).where(
                    broadcast_optouts.c.user_id == user_id, broadcast_optouts.c.reason == OptOut.STOPPED
                )
            )
            return found.first() is not None


def _broadcast(row: Row[Any]) -> Broadcast:
    def when(value: dt.datetime | None) -> dt.datetime | None:
        return utc(value) if value is not None else None

    return Broadcast(
        id=row.id,
        created_by=row.created_by,
        language=row.language,
        status=BroadcastStatus(row.status),
        step=row.step,
        versions={lang: Version.from_json(v) for lang, v in (row.versions or {}).items()},
        fallback=row.fallback,
        audience=Audience.from_json(row.audience or {}),
        scheduled_for=when(row.scheduled_for),
        timezone=row.timezone,
        progress_message_id=row.progress_message_id,
        report=row.report,
        created_at=utc(row.created_at),
        started_at=when(row.started_at),
        finished_at=when(row.finished_at),
        reporter=row.claimed_by,
        reporter_until=when(row.lease_until),
    )
