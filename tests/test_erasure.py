"""Erasure and retention over the real schema: SQLite, and PostgreSQL when one answers on 127.0.0.1:5432.

Proof by search, not by listing: every column of every table in the database (reflected, so a table added
later is searched too) is read back after the deletion and must hold none of the person's ids or texts. A second
person built the same way, and kept, is found by the same search: the search would see what it looks for.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import pytest
from sqlalchemy import select, update

from bot.logs import JsonFormatter
from bot.outbox import Outbox
from bot.retention import Retention
from bot.storage import Erasure, Participant, SqlStore, open_store
from bot.storage.broadcasts import Audience, Broadcasts, Version
from bot.storage.referrals import Referrals, Status
from bot.storage.sql import UPDATE_MEMORY
from bot.storage.tables import broadcasts, outbox, participants, processed_updates, referrals, tickets
from bot.storage.tickets import StaffTraces, Tickets
from flows.engine import Session
from tests.directory import organisation
from tests.postgres import own_database
from tests.traces import Needles, database_traces

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
STAFF_CHAT, INTAKE_CHAT, ADMIN = -1001000000001, -1001000000002, 4242
KEEP = dt.timedelta(days=90)
UPDATE_IDS = itertools.count(1)


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlStore]:
    """A migrated store; on PostgreSQL a database of its own, dropped afterwards (others' tests share the server)."""
    if request.param == "sqlite":
        sqlite = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'puente.db'}")
        yield sqlite
        await sqlite.close()
        return
    async with own_database("erasure") as url:
        postgres = await open_store(url)
        try:
            yield postgres
        finally:
            await postgres.close()


@dataclass(frozen=True)
class Built:
    user_id: int
    chat_id: int
    ticket_id: int
    referral_id: int
    needles: Needles


async def never_sent(_: object) -> int:
    raise AssertionError("the outbox worker is not started in these tests")


async def build_person(store: SqlStore, user_id: int, chat_id: int, name: str, *, at: dt.datetime = NOW) -> Built:
    """Someone who did everything: answers, a referral with its card, a ticket with relayed messages both ways,
    outbox rows of every kind (pending and sent), a broadcast that reached them and one aimed at them by id,
    and an opt-out. `name` makes their texts unique."""
    answered = {"nationality": "venezuelan", "location": "mexico", "mexico_entry": "before"}
    person = Participant(
        user_id=user_id,
        chat_id=chat_id,
        language="es",
        consented_at=at,
        session=Session("venezuela-2022", "mx_pa_irregular", MappingProxyType(answered), tuple(answered)),
    )
    assert await store.save(person, previous=None, update_id=next(UPDATE_IDS), now=at)

    refs = Referrals(store)
    _, referral = await refs.refer(user_id, "alpha", at)
    assert referral is not None
    await refs.attach_card(referral.id, INTAKE_CHAT, 900 + user_id % 100)

    tickets_store = Tickets(store)
    ticket = await tickets_store.create(user_id, share_answers=True, now=at)
    thread = 500 + user_id % 100
    await tickets_store.update(ticket.id, at, thread_id=thread)
    await tickets_store.pair(ticket.id, 11, 2011, "in")
    await tickets_store.pair(ticket.id, 3012, 12, "out")

    box = Outbox(store, never_sent, now=lambda: at)
    card = (
        f"🎫 Ticket #{ticket.id}\n• ¿Cuál es tu nacionalidad? Venezolano de {name}\n• ¿Dónde estás? Tapachula de {name}"
    )
    ids = [
        await box.put(STAFF_CHAT, "text", {"text": card, "ticket_id": ticket.id, "card": True}, thread_id=thread),
        await box.put(
            STAFF_CHAT,
            "copy",
            {"from_chat_id": chat_id, "message_id": 11, "ticket_id": ticket.id, "direction": "in"},
            thread_id=thread,
        ),
        # A copy of theirs queued by something that does not name the ticket: found by its source chat.
        await box.put(STAFF_CHAT, "copy", {"from_chat_id": chat_id, "message_id": 13}),
        await box.put(chat_id, "copy", {"from_chat_id": STAFF_CHAT, "message_id": 12, "ticket_id": ticket.id}),
        await box.put(chat_id, "text", {"text": f"Nuestro equipo cerró la conversación con {name}"}),
        await box.put(STAFF_CHAT, "text", {"text": f"Cerrado por Vera (caso de {name})"}, thread_id=thread),
    ]
    async with store.writing() as conn:  # half of them delivered already
        await conn.execute(update(outbox).where(outbox.c.id.in_(ids[::2])).values(sent_at=at, sent_message_id=1))

    bcs = Broadcasts(store)
    draft = await bcs.new_draft(ADMIN, "es", "audience", at)
    await bcs.edit_draft(draft.id, versions={"es": Version("Noticias del programa")})
    assert await bcs.submit(draft.id)
    started = await bcs.get(draft.id)
    assert started is not None
    assert await bcs.begin(started, at)
    aimed = await bcs.new_draft(ADMIN + user_id, "es", "preview", at)  # a program switch's "those affected"
    await bcs.edit_draft(aimed.id, audience=Audience(people=(user_id, 1)))
    await bcs.stop(user_id, at)

    needles = Needles(
        ids=frozenset({user_id, chat_id}),
        texts=frozenset({f"Venezolano de {name}", f"Tapachula de {name}", f"con {name}", f"caso de {name}"}),
    )
    return Built(user_id, chat_id, ticket.id, referral.id, needles)


async def setup_directory(store: SqlStore) -> None:
    await Referrals(store).import_directory([organisation(intake_chat_id=INTAKE_CHAT, members=(77,))], NOW)


async def test_delete_leaves_nothing_of_the_person_in_any_table(store: SqlStore) -> None:
    """/delete's erasure: no column of any table holds their user id, chat id, or the text of their answers and
    messages; the other person is untouched; the organisation's referral count stays, pointing at nobody."""
    await setup_directory(store)
    gone = await build_person(store, 7_712_345_678, 7_712_345_679, "Wilmarys")
    kept = await build_person(store, 8_812_345_678, 8_812_345_679, "Yorbis")
    assert await database_traces(store.engine, gone.needles), "the search finds the person before the deletion"

    assert await store.delete(gone.user_id)

    assert await database_traces(store.engine, gone.needles) == []
    assert await database_traces(store.engine, kept.needles), "the other person is still all there"
    assert await store.load(kept.user_id) is not None
    referral = await Referrals(store).referral(gone.referral_id)
    assert referral is not None
    assert (referral.user_id, referral.card_chat_id, referral.card_message_id) == (None, None, None)
    assert referral.status is Status.PENDING  # still counted against the organisation's week
    assert await Tickets(store).by_id(gone.ticket_id) is None
    async with store.engine.connect() as conn:
        audiences = [a for (a,) in (await conn.execute(select(broadcasts.c.audience))).all()]
    assert {"people": [1]} in audiences  # still aimed at the others only: an empty list would mean nobody


async def test_what_the_staff_group_shows_of_a_person_is_read_before_erasure(store: SqlStore) -> None:
    """The traces erasure removes from the staff group: every topic of theirs (reused ones once), and outside
    topics the card and both sides of every relayed message; nothing of anyone else."""
    await setup_directory(store)
    person = await build_person(store, 7_712_345_678, 7_712_345_679, "Wilmarys")
    await build_person(store, 8_812_345_678, 8_812_345_679, "Yorbis")
    tickets_store = Tickets(store)
    await tickets_store.update(person.ticket_id, NOW, status="closed")
    reused = await tickets_store.create(person.user_id, share_answers=False, now=NOW)
    await tickets_store.update(reused.id, NOW, thread_id=578, status="closed")
    plain = await tickets_store.create(person.user_id, share_answers=False, now=NOW)  # the group had no topics then
    await tickets_store.update(plain.id, NOW, card_message_id=40)
    await tickets_store.pair(plain.id, 21, 41, "in")
    await tickets_store.pair(plain.id, 42, 22, "out")

    traces = await tickets_store.traces_of(person.user_id)

    assert traces.latest_ticket == plain.id
    assert traces.threads == (578,)
    assert traces.messages == (22, 40, 41)
    assert await tickets_store.traces_of(123) == StaffTraces()


async def test_delete_of_someone_unknown_changes_nothing(store: SqlStore) -> None:
    """Deleting an id with no profile says so and leaves everyone else's rows alone."""
    await setup_directory(store)
    kept = await build_person(store, 8_812_345_678, 8_812_345_679, "Yorbis")
    before = await database_traces(store.engine, kept.needles)
    assert not await store.delete(123)
    assert await database_traces(store.engine, kept.needles) == before


# ---------------------------------------------------------------------------------------------- retention


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def erasing(store: SqlStore, *, refuse: frozenset[int] = frozenset()) -> tuple[list[int], object]:
    """An erase function over the store (the bot passes Conversation.erase), recording whom it was asked about."""
    asked: list[int] = []

    async def erase(participant: Participant, why: Erasure) -> bool:
        assert why is Erasure.INACTIVE  # what the organisations and staff are told depends on it
        asked.append(participant.user_id)
        if participant.user_id in refuse:
            raise RuntimeError("Telegram unreachable")
        return await store.delete(participant.user_id)

    return asked, erase


async def test_retention_erases_only_people_inactive_longer_than_the_period(store: SqlStore) -> None:
    """With the clock frozen: someone last seen 91 days ago is erased completely; 89 days ago is kept; 200 days
    ago but talking to staff last week is kept (a conversation is activity)."""
    await setup_directory(store)
    old = await build_person(store, 1_000_001, 1_000_001, "Antigua", at=NOW - dt.timedelta(days=91))
    recent = await build_person(store, 1_000_002, 1_000_002, "Reciente", at=NOW - dt.timedelta(days=89))
    talking = await build_person(store, 1_000_003, 1_000_003, "Hablando", at=NOW - dt.timedelta(days=200))
    await Tickets(store).update(talking.ticket_id, NOW - dt.timedelta(days=7))
    asked, erase = erasing(store)

    purged = await Retention(store, erase, Clock(NOW), KEEP).purge()  # type: ignore[arg-type]

    assert asked == [old.user_id]
    assert purged.people == 1
    assert await database_traces(store.engine, old.needles) == []
    for person in (recent, talking):
        assert await store.load(person.user_id) is not None


async def test_retention_drops_old_outbox_rows_and_update_ids(store: SqlStore) -> None:
    """Sent or failed outbox rows older than the period go, pending ones stay whatever their age; applied update
    ids go after 24 hours."""
    box = Outbox(store, never_sent, now=Clock(NOW - dt.timedelta(days=91)))
    old_sent = await box.put(STAFF_CHAT, "text", {"text": "old, sent"})
    old_failed = await box.put(STAFF_CHAT, "text", {"text": "old, refused"})
    old_pending = await box.put(STAFF_CHAT, "text", {"text": "old, still waiting"})
    recent_box = Outbox(store, never_sent, now=Clock(NOW - dt.timedelta(days=10)))
    young = await recent_box.put(STAFF_CHAT, "text", {"text": "recent, sent"})
    async with store.writing() as conn:
        await conn.execute(update(outbox).where(outbox.c.id.in_([old_sent, young])).values(sent_at=NOW))
        await conn.execute(update(outbox).where(outbox.c.id == old_failed).values(failed="TelegramForbiddenError"))
        await conn.execute(
            processed_updates.insert(),
            [
                {"update_id": 1, "processed_at": NOW - UPDATE_MEMORY - dt.timedelta(minutes=1)},
                {"update_id": 2, "processed_at": NOW - UPDATE_MEMORY + dt.timedelta(minutes=1)},
            ],
        )

    purged = await Retention(store, erasing(store)[1], Clock(NOW), KEEP).purge()  # type: ignore[arg-type]

    assert (purged.outbox_rows, purged.update_ids) == (2, 1)
    async with store.engine.connect() as conn:
        left = set((await conn.execute(select(outbox.c.id))).scalars())
        updates = set((await conn.execute(select(processed_updates.c.update_id))).scalars())
    assert left == {old_pending, young}
    assert updates == {2}


async def test_one_failed_erasure_does_not_keep_the_others(store: SqlStore) -> None:
    """If erasing one person fails (Telegram down while telling their organisation), the others are still
    erased, and that one is tried again next round."""
    await setup_directory(store)
    stuck = await build_person(store, 2_000_001, 2_000_001, "Uno", at=NOW - dt.timedelta(days=100))
    other = await build_person(store, 2_000_002, 2_000_002, "Dos", at=NOW - dt.timedelta(days=95))
    _, erase = erasing(store, refuse=frozenset({stuck.user_id}))
    purged = await Retention(store, erase, Clock(NOW), KEEP).purge()  # type: ignore[arg-type]
    assert (purged.people, purged.failed) == (1, 1)
    assert await store.load(other.user_id) is None
    assert await store.load(stuck.user_id) is not None
    asked2, erase2 = erasing(store)
    await Retention(store, erase2, Clock(NOW), KEEP).purge()  # type: ignore[arg-type]
    assert asked2 == [stuck.user_id]


async def test_purge_is_logged_as_counts_only(store: SqlStore, caplog: pytest.LogCaptureFixture) -> None:
    """The purge's log lines say how many, never who: no id, raw or hashed."""
    await setup_directory(store)
    old = await build_person(store, 3_000_001, 3_000_001, "Tres", at=NOW - dt.timedelta(days=120))
    caplog.set_level(logging.INFO, logger="bot.retention")
    await Retention(store, erasing(store)[1], Clock(NOW), KEEP).purge()  # type: ignore[arg-type]
    (record,) = [r for r in caplog.records if r.name == "bot.retention"]
    line = json.loads(JsonFormatter().format(record))
    assert line["event"] == "retention purge"
    # Their outbox rows went with them; the id of the update that saved them is old bookkeeping.
    counts = {"people": 1, "outbox_rows": 0, "update_ids": 1, "failed": 0}
    assert {k: line[k] for k in counts} == counts
    fields = set(line) - {"time", "level", "logger", "event"}
    assert all(isinstance(line[f], (int, float)) for f in fields), line
    assert str(old.user_id) not in json.dumps(line)


async def test_purge_runs_at_startup_then_on_schedule(store: SqlStore) -> None:
    """`run` purges at once (a bot restarted after a long stop does not wait an hour), then every period."""
    rounds: list[dt.datetime] = []
    three = asyncio.Event()

    class Counting(Retention):
        async def purge(self) -> object:  # type: ignore[override]
            rounds.append(self.clock())
            if len(rounds) == 3:
                three.set()
            return None

    retention = Counting(store, erasing(store)[1], Clock(NOW), KEEP)  # type: ignore[arg-type]
    task = asyncio.create_task(retention.run(every=0.05))
    try:
        async with asyncio.timeout(5):
            await three.wait()
    finally:
        task.cancel()
    assert len(rounds) >= 3


async def test_inactive_is_measured_on_the_last_save(store: SqlStore) -> None:
    """A person who answered again yesterday is active, however long ago they consented."""
    await setup_directory(store)
    person = await build_person(store, 4_000_001, 4_000_001, "Cuatro", at=NOW - dt.timedelta(days=300))
    async with store.writing() as conn:
        await conn.execute(
            update(participants)
            .where(participants.c.user_id == person.user_id)
            .values(updated_at=NOW - dt.timedelta(days=1))
        )
        await conn.execute(
            update(tickets).where(tickets.c.user_id == person.user_id).values(updated_at=NOW - dt.timedelta(days=300))
        )
        await conn.execute(update(referrals).values(created_at=NOW - dt.timedelta(days=300)))
    assert await store.inactive(NOW - KEEP) == []
