"""The organisation directory and the referrals made to it, in the same SQL database as the sessions.

Capacity is enforced inside the transaction that creates a referral: the organisation's row is locked (FOR UPDATE
on PostgreSQL; SQLite has one writer at a time), the week's referrals are counted, and the new one is inserted
only if there is room. Two people racing for the last slot: one gets it, the other is told the organisation is full.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError

from bot.storage.sql import SqlStore, utc
from bot.storage.tables import organisations, referrals
from flows.directory import Organisation

#: Referrals that use up an organisation's weekly capacity.
COUNTING = ("pending", "accepted")


class Status(enum.StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    WITHDRAWN = "withdrawn"
    #: The card could not reach the organisation's intake chat (the bot was removed from it, say).
    UNDELIVERED = "undelivered"


@dataclass(frozen=True)
class Referral:
    id: int
    #: None once the person deleted their data: the referral stays only as a count.
    user_id: int | None
    org_id: str
    status: Status
    week: str
    created_at: dt.datetime
    decided_at: dt.datetime | None
    card_chat_id: int | None
    card_message_id: int | None
    #: The person's "request sent" message, in their private chat (which is their user id).
    notice_message_id: int | None = None


class ReferResult(enum.Enum):
    CREATED = "created"
    FULL = "full"
    ALREADY = "already"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class ImportReport:
    added: int
    updated: int
    deactivated: int


def iso_week(day: dt.date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


class Referrals:
    """Directory and referral queries over a SqlStore's engine (and its single-writer lock on SQLite)."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self.engine = store.engine

    # ------------------------------------------------------------------ the directory

    async def organisations(self) -> list[Organisation]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(organisations).order_by(organisations.c.id))).all()
        return [_organisation(row) for row in rows]

    async def organisation(self, org_id: str) -> Organisation | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(organisations).where(organisations.c.id == org_id))).first()
        return _organisation(row) if row else None

    async def import_directory(self, orgs: Sequence[Organisation], now: dt.datetime) -> ImportReport:
        """Make the stored directory match the file: add and update its organisations, deactivate the others.

        One transaction: a failure leaves the directory as it was. Organisations are never deleted, since
        referrals point at them.
        """
        added = updated = 0
        async with self.store.writing() as conn:
            known = set((await conn.execute(select(organisations.c.id))).scalars())
            for org in orgs:
                values = {**_columns(org), "updated_at": now}
                if org.id in known:
                    await conn.execute(update(organisations).where(organisations.c.id == org.id).values(**values))
                    updated += 1
                else:
                    await conn.execute(insert(organisations).values(**values))
                    added += 1
            missing = known - {org.id for org in orgs}
            if missing:
                await conn.execute(
                    update(organisations)
                    .where(organisations.c.id.in_(missing), organisations.c.active.is_(True))
                    .values(active=False, updated_at=now)
                )
        return ImportReport(added=added, updated=updated, deactivated=len(missing))

    async def save_organisation(self, org: Organisation, now: dt.datetime) -> bool:
        """Add or replace one organisation (an admin's edit). True when it was new."""
        async with self.store.writing() as conn:
            exists = (await conn.execute(select(organisations.c.id).where(organisations.c.id == org.id))).first()
            values = {**_columns(org), "updated_at": now}
            if exists:
                await conn.execute(update(organisations).where(organisations.c.id == org.id).values(**values))
            else:
                await conn.execute(insert(organisations).values(**values))
        return exists is None

    async def change(self, org_id: str, now: dt.datetime, **fields: Any) -> bool:
        """Pause, resume or resize an organisation. False when there is no such organisation."""
        async with self.store.writing() as conn:
            changed = await conn.execute(
                update(organisations).where(organisations.c.id == org_id).values(**fields, updated_at=now)
            )
        return bool(changed.rowcount)

    # ------------------------------------------------------------------ referrals

    async def loads(self, week: str) -> dict[str, int]:
        """Referrals per organisation that count against this week's capacity."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(referrals.c.org_id, func.count())
                .where(referrals.c.week == week, referrals.c.status.in_(COUNTING))
                .group_by(referrals.c.org_id)
            )
            return dict(rows.all())

    async def referred_to(self, user_id: int) -> set[str]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(referrals.c.org_id).where(referrals.c.user_id == user_id))
            return set(rows.scalars())

    async def of_person(self, user_id: int) -> list[Referral]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(referrals).where(referrals.c.user_id == user_id).order_by(referrals.c.id))
            return [_referral(row) for row in rows.all()]

    async def refer(self, user_id: int, org_id: str, now: dt.datetime) -> tuple[ReferResult, Referral | None]:
        """Record that the person agreed to be shared with the organisation, if it has room this week."""
        week = iso_week(now.date())
        try:
            async with self.store.writing() as conn:
                org = (
                    await conn.execute(
                        select(organisations.c.active, organisations.c.weekly_capacity)
                        .where(organisations.c.id == org_id)
                        .with_for_update()
                    )
                ).first()
                if org is None or not org.active:
                    return ReferResult.UNAVAILABLE, None
                used = (
                    await conn.execute(
                        select(func.count()).where(
                            referrals.c.org_id == org_id, referrals.c.week == week, referrals.c.status.in_(COUNTING)
                        )
                    )
                ).scalar_one()
                if used >= org.weekly_capacity:
                    return ReferResult.FULL, None
                created = await conn.execute(
                    insert(referrals)
                    .values(user_id=user_id, org_id=org_id, status=Status.PENDING, week=week, created_at=now)
                    .returning(*referrals.c)
                )
                return ReferResult.CREATED, _referral(created.one())
        except IntegrityError:
            return ReferResult.ALREADY, None

    async def referral(self, referral_id: int) -> Referral | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(referrals).where(referrals.c.id == referral_id))).first()
        return _referral(row) if row else None

    async def attach_card(self, referral_id: int, chat_id: int, message_id: int) -> None:
        async with self.store.writing() as conn:
            await conn.execute(
                update(referrals)
                .where(referrals.c.id == referral_id)
                .values(card_chat_id=chat_id, card_message_id=message_id)
            )

    async def attach_notice(self, referral_id: int, message_id: int) -> None:
        async with self.store.writing() as conn:
            await conn.execute(
                update(referrals).where(referrals.c.id == referral_id).values(notice_message_id=message_id)
            )

    async def settle(
        self, referral_id: int, to: Status, now: dt.datetime, *, user_id: int | None = None
    ) -> Referral | None:
        """Move a pending referral to accepted, declined or withdrawn, once. None if it was not pending
        (or, with `user_id`, not that person's)."""
        condition = [referrals.c.id == referral_id, referrals.c.status == Status.PENDING]
        if user_id is not None:
            condition.append(referrals.c.user_id == user_id)
        async with self.store.writing() as conn:
            row = (
                await conn.execute(
                    update(referrals).where(*condition).values(status=to, decided_at=now).returning(*referrals.c)
                )
            ).first()
        return _referral(row) if row else None

    async def listing(self, statuses: Iterable[str] = ()) -> list[Referral]:
        query = select(referrals).order_by(referrals.c.id)
        wanted = list(statuses)
        if wanted:
            query = query.where(referrals.c.status.in_(wanted))
        async with self.engine.connect() as conn:
            return [_referral(row) for row in (await conn.execute(query)).all()]


def _columns(org: Organisation) -> dict[str, Any]:
    return org.model_dump(mode="json")


def _organisation(row: Row[Any]) -> Organisation:
    values = dict(row._mapping)
    values.pop("updated_at", None)
    return Organisation.model_validate(values)


def _referral(row: Row[Any]) -> Referral:
    m = row._mapping
    return Referral(
        id=m["id"],
        user_id=m["user_id"],
        org_id=m["org_id"],
        status=Status(m["status"]),
        week=m["week"],
        created_at=utc(m["created_at"]),
        decided_at=utc(m["decided_at"]) if m["decided_at"] else None,
        card_chat_id=m["card_chat_id"],
        card_message_id=m["card_message_id"],
        notice_message_id=m["notice_message_id"],
    )
