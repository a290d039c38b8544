"""Staff roles, handoff tickets and relayed-message pairs, over the same SQL database as the sessions."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.storage import stats
from bot.storage.sql import SqlStore, utc
from bot.storage.stats import Count
from bot.storage.tables import relayed, staff, tickets


class Role(enum.StrEnum):
    VOLUNTEER = "volunteer"
    ADVISOR = "advisor"
    ADMIN = "admin"


class TicketStatus(enum.StrEnum):
    WAITING = "waiting"
    CLAIMED = "claimed"
    #: Sent to the advisors' queue, not yet taken by one.
    ESCALATED = "escalated"
    ASSIGNED = "assigned"
    CLOSED = "closed"


OPEN = (TicketStatus.WAITING, TicketStatus.CLAIMED, TicketStatus.ESCALATED, TicketStatus.ASSIGNED)


@dataclass(frozen=True)
class Ticket:
    id: int
    user_id: int
    status: TicketStatus
    thread_id: int | None
    card_message_id: int | None
    share_answers: bool
    claimed_by: int | None
    assigned_to: int | None
    opened_at: dt.datetime
    updated_at: dt.datetime
    reminded_at: dt.datetime | None

    @property
    def open(self) -> bool:
        return self.status in OPEN


@dataclass(frozen=True)
class StaffTraces:
    """What the staff group shows of one person: their forum topics, and the messages the bot posted or relayed
    outside topics (a group without them). Read before their rows are erased, to remove these too."""

    latest_ticket: int | None = None
    threads: tuple[int, ...] = ()
    messages: tuple[int, ...] = ()


class Tickets:
    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self.engine = store.engine

    # ------------------------------------------------------------------ roles

    async def role(self, user_id: int) -> Role | None:
        async with self.engine.connect() as conn:
            found = await conn.execute(select(staff.c.role).where(staff.c.user_id == user_id))
            value = found.scalar_one_or_none()
        return Role(value) if value else None

    async def grant(self, user_id: int, role: Role, by: int, now: dt.datetime) -> None:
        async with self.store.writing() as conn:
            await conn.execute(delete(staff).where(staff.c.user_id == user_id))
            await conn.execute(insert(staff).values(user_id=user_id, role=role, granted_by=by, granted_at=now))

    async def revoke(self, user_id: int) -> bool:
        async with self.store.writing() as conn:
            removed = await conn.execute(delete(staff).where(staff.c.user_id == user_id))
        return bool(removed.rowcount)

    # ------------------------------------------------------------------ tickets

    async def open_ticket_of(self, user_id: int) -> Ticket | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(tickets).where(tickets.c.user_id == user_id, tickets.c.status.in_(OPEN)).limit(1)
                )
            ).first()
        return _ticket(row) if row else None

    async def last_thread_of(self, user_id: int) -> int | None:
        """The person's forum topic from an earlier ticket, to reuse it."""
        async with self.engine.connect() as conn:
            found = await conn.execute(
                select(tickets.c.thread_id)
                .where(tickets.c.user_id == user_id, tickets.c.thread_id.is_not(None))
                .order_by(tickets.c.id.desc())
                .limit(1)
            )
            return found.scalar_one_or_none()

    async def traces_of(self, user_id: int) -> StaffTraces:
        """Every topic of the person's tickets, and the staff-side ids of cards and relayed messages outside one."""
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(tickets.c.id, tickets.c.thread_id, tickets.c.card_message_id)
                    .where(tickets.c.user_id == user_id)
                    .order_by(tickets.c.id)
                )
            ).all()
            plain = [row.id for row in rows if row.thread_id is None]
            copies = (
                await conn.execute(select(relayed.c.staff_message_id).where(relayed.c.ticket_id.in_(plain)))
            ).scalars()
            messages = sorted(
                {*copies, *(row.card_message_id for row in rows if row.id in plain and row.card_message_id)}
            )
        return StaffTraces(
            latest_ticket=rows[-1].id if rows else None,
            threads=tuple(dict.fromkeys(row.thread_id for row in rows if row.thread_id is not None)),
            messages=tuple(messages),
        )

    async def create(self, user_id: int, *, share_answers: bool, now: dt.datetime, language: str = "") -> Ticket:
        """A new ticket, counted (anonymously: the hour of the week and the person's language) as it opens."""
        async with self.store.writing() as conn:
            row = (
                await conn.execute(
                    insert(tickets)
                    .values(
                        user_id=user_id,
                        status=TicketStatus.WAITING,
                        share_answers=share_answers,
                        opened_at=now,
                        updated_at=now,
                    )
                    .returning(*tickets.c)
                )
            ).one()
            await _count(conn, now, Count("ticket_opened", key=stats.hour_of_week(now), language=language))
        return _ticket(row)

    async def first_answer(self, ticket_id: int, now: dt.datetime) -> None:
        """Staff wrote to the person: the first time, how long they waited is counted."""
        async with self.store.writing() as conn:
            opened = (
                await conn.execute(
                    update(tickets)
                    .where(tickets.c.id == ticket_id, tickets.c.answered_at.is_(None))
                    .values(answered_at=now)
                    .returning(tickets.c.opened_at)
                )
            ).scalar()
            if opened is not None:
                await _count(conn, now, Count("ticket_answered", key=stats.waited(utc(opened), now)))

    async def by_id(self, ticket_id: int) -> Ticket | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(tickets).where(tickets.c.id == ticket_id))).first()
        return _ticket(row) if row else None

    async def by_thread(self, thread_id: int) -> Ticket | None:
        """The open ticket whose person owns this forum topic."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(tickets)
                    .where(tickets.c.thread_id == thread_id, tickets.c.status.in_(OPEN))
                    .order_by(tickets.c.id.desc())
                    .limit(1)
                )
            ).first()
        return _ticket(row) if row else None

    async def update(self, ticket_id: int, now: dt.datetime, **fields: Any) -> Ticket | None:
        """Change a ticket. Closing one counts how long it was open, once: a ticket already closed is left as it
        is (None)."""
        closing = fields.get("status") is TicketStatus.CLOSED
        query = update(tickets).where(tickets.c.id == ticket_id)
        if closing:
            query = query.where(tickets.c.status != TicketStatus.CLOSED)
        async with self.store.writing() as conn:
            row = (await conn.execute(query.values(**fields, updated_at=now).returning(*tickets.c))).first()
            if closing and row is not None:
                await _count(conn, now, Count("ticket_closed", key=stats.waited(utc(row.opened_at), now)))
        return _ticket(row) if row else None

    async def queue(self) -> list[Ticket]:
        """Open tickets nobody has taken yet (waiting, or escalated to the advisors), oldest first."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(tickets)
                .where(tickets.c.status.in_((TicketStatus.WAITING, TicketStatus.ESCALATED)))
                .order_by(tickets.c.opened_at)
            )
            return [_ticket(row) for row in rows.all()]

    async def overdue(self, older_than: dt.datetime) -> list[Ticket]:
        """Waiting tickets opened before `older_than` and not yet reminded about."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(tickets).where(
                    tickets.c.status.in_((TicketStatus.WAITING, TicketStatus.ESCALATED)),
                    tickets.c.opened_at < older_than,
                    or_(tickets.c.reminded_at.is_(None), tickets.c.reminded_at < older_than),
                )
            )
            return [_ticket(row) for row in rows.all()]

    # ------------------------------------------------------------------ relayed pairs

    async def pair(
        self,
        ticket_id: int,
        user_message_id: int,
        staff_message_id: int,
        direction: str,
        *,
        conn: AsyncConnection | None = None,
    ) -> None:
        values = {
            "ticket_id": ticket_id,
            "user_message_id": user_message_id,
            "staff_message_id": staff_message_id,
            "direction": direction,
        }
        if conn is not None:
            await conn.execute(insert(relayed).values(**values))
            return
        async with self.store.writing() as own:
            await own.execute(insert(relayed).values(**values))

    async def staff_copy_of(self, ticket_id: int, user_message_id: int) -> int | None:
        async with self.engine.connect() as conn:
            found = await conn.execute(
                select(relayed.c.staff_message_id).where(
                    relayed.c.ticket_id == ticket_id, relayed.c.user_message_id == user_message_id
                )
            )
            return found.scalars().first()

    async def user_copy_of(self, ticket_id: int, staff_message_id: int) -> int | None:
        async with self.engine.connect() as conn:
            found = await conn.execute(
                select(relayed.c.user_message_id).where(
                    relayed.c.ticket_id == ticket_id, relayed.c.staff_message_id == staff_message_id
                )
            )
            return found.scalars().first()

    async def ticket_of_staff_message(self, staff_message_id: int) -> Ticket | None:
        """The open ticket a staff-group message belongs to (a reply, in a group without topics)."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(tickets)
                    .join(relayed, relayed.c.ticket_id == tickets.c.id)
                    .where(relayed.c.staff_message_id == staff_message_id, tickets.c.status.in_(OPEN))
                    .limit(1)
                )
            ).first()
            if row is None:
                row = (
                    await conn.execute(
                        select(tickets).where(tickets.c.card_message_id == staff_message_id, tickets.c.status.in_(OPEN))
                    )
                ).first()
        return _ticket(row) if row else None


def _ticket(row: Row[Any]) -> Ticket:
    m = row._mapping
    return Ticket(
        id=m["id"],
        user_id=m["user_id"],
        status=TicketStatus(m["status"]),
        thread_id=m["thread_id"],
        card_message_id=m["card_message_id"],
        share_answers=m["share_answers"],
        claimed_by=m["claimed_by"],
        assigned_to=m["assigned_to"],
        opened_at=utc(m["opened_at"]),
        updated_at=utc(m["updated_at"]),
        reminded_at=utc(m["reminded_at"]) if m["reminded_at"] else None,
    )


async def _count(conn: AsyncConnection, now: dt.datetime, count: Count) -> None:
    await conn.run_sync(stats.record, now.date(), [count])
