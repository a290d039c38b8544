"""Broadcasts in SQL (SQLite, and PostgreSQL when reachable): audiences, opt-outs, recipients, outcomes, jobs, drafts.

The people are made the way the bot makes them: a session walked through the questionnaire by the engine, saved
with `SqlStore.save`; referrals and handoff tickets through their own stores.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select

from bot.app import Core
from bot.storage import Participant, SqlStore, open_store
from bot.storage.broadcasts import (
    Audience,
    Broadcast,
    Broadcasts,
    BroadcastStatus,
    Counts,
    Outcome,
    RecipientStatus,
    Version,
)
from bot.storage.referrals import Referrals, Status
from bot.storage.tables import (
    answers,
    broadcast_optouts,
    broadcast_recipients,
    broadcasts,
    organisations,
    participants,
    processed_updates,
    referrals,
    relayed,
    tickets,
)
from bot.storage.tickets import Tickets, TicketStatus
from flows.engine import Choose, OutcomeReached, new_session, step
from tests.directory import organisation
from tests.test_storage_contract import POSTGRES_URL, postgres_reachable

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
ADMIN = 900
OTHER_ADMIN = 901
#: Every language's version, for broadcasts that should reach whoever is in the audience.
ALL_VERSIONS = {"es": Version("Hola"), "ht": Version("Bonjou"), "en": Version("Hello")}
BLOCKED_REASON = "Forbidden: bot was blocked by the user"
NOT_FOUND = "Bad Request: chat not found"
#: After Panama: no irregular crossing, a removal order, then the rest of the questionnaire.
PANAMA_TO_THE_END = [
    ("location", "panama"),
    ("mx_pa_irregular", "no"),
    ("us_irregular", "no"),
    ("removal_order", "yes"),
    ("other_citizenship", "no"),
    ("other_residence", "no"),
    ("refugee_status", "no"),
    ("passport", "valid"),
    ("supporter", "yes"),
    ("age", "adult"),
    ("vaccines", "yes"),
    ("flight", "yes"),
]


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlStore]:
    if request.param == "sqlite":
        backend = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'b.db'}")
    else:
        if not postgres_reachable():
            pytest.skip("no PostgreSQL on 127.0.0.1:5432")
        backend = await open_store(POSTGRES_URL)
        async with backend.engine.begin() as conn:
            for table in (
                broadcast_recipients,
                broadcast_optouts,
                broadcasts,
                relayed,
                tickets,
                referrals,
                organisations,
                answers,
                participants,
                processed_updates,
            ):
                await conn.execute(delete(table))
    yield backend
    await backend.close()


@pytest.fixture
def bcs(store: SqlStore) -> Broadcasts:
    return Broadcasts(store)


def chat_of(user_id: int) -> int:
    return 10_000 + user_id


async def join(
    store: SqlStore, core: Core, user_id: int, language: str, *choices: tuple[str, str], now: dt.datetime = NOW
) -> Participant:
    """Someone consents and answers `choices` through the engine; saved as the bot saves them."""
    session, outcome = new_session(core.program), None
    for question_id, option_id in choices:
        session, events = step(core.program, session, Choose(question_id, option_id), now.date())
        outcome = next((e.verdict.outcome for e in events if isinstance(e, OutcomeReached)), outcome)
    person = Participant(user_id, chat_of(user_id), language, now, session, outcome if session.finished else None)
    assert await store.save(person, previous=None, update_id=None, now=now)
    return person


async def writes_again(store: SqlStore, user_id: int, now: dt.datetime) -> None:
    """They write to the bot again (after unblocking it, say): their record is saved anew."""
    person = await store.load(user_id)
    assert person is not None
    assert await store.save(person, previous=person, update_id=None, now=now)


@dataclass(frozen=True)
class Town:
    languages: dict[int, str]


@pytest.fixture
async def town(store: SqlStore, core: Core) -> Town:
    """Six people with different languages, answers, outcomes, referrals and handoffs.

    1 es  venezuelan, in Mexico (still answering)  referral pending
    2 es  other nationality: another route
    3 ht  family member, in Mexico (still answering)  referral declined, waiting for staff
    4 en  venezuelan, in the US: another route  handoff closed
    5 ht  venezuelan, Panama, answered to the end: not eligible  referral accepted
    6 es  nothing answered yet  talking to staff (claimed)
    """
    made = [
        await join(store, core, 1, "es", ("nationality", "venezuelan"), ("location", "mexico")),
        await join(store, core, 2, "es", ("nationality", "other")),
        await join(
            store,
            core,
            3,
            "ht",
            ("nationality", "family"),
            ("family_relation", "spouse"),
            ("travels_with", "yes"),
            ("location", "mexico"),
        ),
        await join(store, core, 4, "en", ("nationality", "venezuelan"), ("location", "usa")),
        await join(store, core, 5, "ht", ("nationality", "venezuelan"), *PANAMA_TO_THE_END),
        await join(store, core, 6, "es"),
    ]
    assert [p.outcome for p in made] == [None, "another_route", None, "another_route", "not_eligible", None]

    directory = Referrals(store)
    await directory.import_directory([organisation("casa", nationalities=("any",))], NOW)
    for user_id, status in ((1, Status.PENDING), (3, Status.DECLINED), (5, Status.ACCEPTED)):
        _, referral = await directory.refer(user_id, "casa", NOW)
        assert referral is not None
        if status is not Status.PENDING:
            assert await directory.settle(referral.id, status, NOW)

    desk = Tickets(store)
    await desk.create(3, share_answers=True, now=NOW)
    closed = await desk.create(4, share_answers=False, now=NOW)
    await desk.update(closed.id, NOW, status=TicketStatus.CLOSED, closed_at=NOW)
    claimed = await desk.create(6, share_answers=False, now=NOW)
    await desk.update(claimed.id, NOW, status=TicketStatus.CLAIMED, claimed_by=ADMIN)
    return Town({p.user_id: p.language for p in made})


async def submitted(
    bcs: Broadcasts,
    audience: Audience | None = None,
    versions: dict[str, Version] | None = None,
    fallback: str | None = None,
    *,
    scheduled_for: dt.datetime | None = None,
) -> Broadcast:
    """A broadcast composed and submitted (queued, or scheduled)."""
    draft = await bcs.new_draft(ADMIN, "es", "versions", NOW)
    await bcs.edit_draft(draft.id, versions=versions or ALL_VERSIONS, fallback=fallback, audience=audience)
    assert await bcs.submit(draft.id, scheduled_for=scheduled_for, timezone="UTC" if scheduled_for else None)
    found = await bcs.get(draft.id)
    assert found is not None
    return found


async def started(bcs: Broadcasts, audience: Audience | None = None) -> Broadcast:
    """A broadcast to `audience` (everyone) in every language, submitted and begun: its recipients are fixed."""
    broadcast = await submitted(bcs, audience)
    assert await bcs.begin(broadcast, NOW) is not None
    running = await bcs.get(broadcast.id)
    assert running is not None
    return running


async def recipients(bcs: Broadcasts, broadcast_id: int) -> dict[int, str]:
    """Everyone still pending in a broadcast: user id -> the version they get."""
    return {r.user_id: r.language for r in await bcs.pending(broadcast_id, after=None, limit=1000)}


async def audience_now(bcs: Broadcasts, audience: Audience | None = None) -> set[int]:
    """Who a broadcast to `audience` started now would reach."""
    return set(await recipients(bcs, (await started(bcs, audience)).id))


# --------------------------------------------------------------------------------------------- audiences


@pytest.mark.parametrize(
    ("audience", "expected"),
    [
        (Audience(), {1, 2, 3, 4, 5, 6}),
        (Audience(language="ht"), {3, 5}),
        (Audience(language="fr"), set()),
        (Audience(outcome="another_route"), {2, 4}),
        (Audience(outcome="not_eligible"), {5}),
        (Audience(nationality="venezuelan"), {1, 4, 5}),
        (Audience(nationality="family"), {3}),
        (Audience(country="mexico"), {1, 3}),
        (Audience(country="usa"), {4}),
        (Audience(nationality="mexico"), set()),  # an answer to another question is not a nationality
        (Audience(referral="pending"), {1}),
        (Audience(referral="accepted"), {5}),
        (Audience(referral="declined"), {3}),
        (Audience(handoff=True), {3, 6}),
        (Audience(language="es", nationality="venezuelan"), {1}),
        (Audience(country="mexico", handoff=True), {3}),
        (Audience(language="ht", nationality="venezuelan", referral="accepted"), {5}),
        (Audience(language="ht", outcome="another_route"), set()),
    ],
    ids=lambda value: str(value.to_json()) if isinstance(value, Audience) else None,
)
async def test_audience_filters_select_exactly_their_people(
    bcs: Broadcasts, town: Town, audience: Audience, expected: set[int]
) -> None:
    """Every filter set must hold; the composer's counts by language are those of the people it selects."""
    assert await audience_now(bcs, audience) == expected
    assert await bcs.audience_languages(audience) == dict(Counter(town.languages[u] for u in expected))


async def test_stop_leaves_someone_out_until_they_subscribe(bcs: Broadcasts, town: Town) -> None:
    await bcs.stop(2, NOW)
    await bcs.stop(2, NOW)  # twice changes nothing
    assert await bcs.stopped(2)
    assert not await bcs.stopped(1)
    assert await audience_now(bcs) == {1, 3, 4, 5, 6}
    assert await audience_now(bcs, Audience(outcome="another_route")) == {4}
    assert await bcs.audience_languages(Audience(language="es")) == {"es": 2}

    assert await bcs.subscribe(2, NOW)
    assert not await bcs.subscribe(2, NOW), "already subscribed"
    assert not await bcs.stopped(2)
    assert await audience_now(bcs) == {1, 2, 3, 4, 5, 6}


async def test_someone_who_blocked_the_bot_is_left_out_until_they_write_again(
    bcs: Broadcasts, store: SqlStore, town: Town
) -> None:
    """A 403 makes them "unreachable"; writing to the bot later (they unblocked it) brings them back."""
    first = await started(bcs)
    await bcs.record(first.id, [Outcome(4, RecipientStatus.BLOCKED, 1, BLOCKED_REASON)], NOW + dt.timedelta(hours=1))
    assert not await bcs.stopped(4), "unreachable is not a /stop"
    assert await audience_now(bcs) == {1, 2, 3, 5, 6}
    assert await bcs.audience_languages(Audience()) == {"es": 3, "ht": 2}

    await writes_again(store, 4, NOW + dt.timedelta(hours=2))
    second = await started(bcs)
    assert 4 in await recipients(bcs, second.id)

    # Blocked again: a fresh opt-out, from this later moment.
    await bcs.record(second.id, [Outcome(4, RecipientStatus.BLOCKED, 1, BLOCKED_REASON)], NOW + dt.timedelta(hours=3))
    assert 4 not in await audience_now(bcs)
    await writes_again(store, 4, NOW + dt.timedelta(hours=4))
    assert 4 in await audience_now(bcs)


async def test_a_stop_never_lapses(bcs: Broadcasts, store: SqlStore, town: Town) -> None:
    """Writing to the bot again does not undo a /stop, nor does a later 403 turn it into "unreachable"."""
    running = await started(bcs)
    await bcs.stop(2, NOW + dt.timedelta(hours=1))
    await writes_again(store, 2, NOW + dt.timedelta(hours=2))
    assert 2 not in await audience_now(bcs)
    await bcs.record(running.id, [Outcome(2, RecipientStatus.BLOCKED, 1, BLOCKED_REASON)], NOW + dt.timedelta(hours=3))
    await writes_again(store, 2, NOW + dt.timedelta(hours=4))
    assert await bcs.stopped(2)
    assert 2 not in await audience_now(bcs)


# --------------------------------------------------------------------------------------------- recipients


async def test_begin_gives_each_person_their_language_or_the_fallback(bcs: Broadcasts, town: Town) -> None:
    two = {"es": Version("Hola"), "ht": Version("Bonjou")}
    with_fallback = await submitted(bcs, versions=two, fallback="es")
    assert await bcs.begin(with_fallback, NOW) == 6
    assert await recipients(bcs, with_fallback.id) == {1: "es", 2: "es", 3: "ht", 4: "es", 5: "ht", 6: "es"}
    pending = await bcs.pending(with_fallback.id, after=None, limit=10)
    assert [(r.chat_id, r.attempts) for r in pending] == [(chat_of(r.user_id), 0) for r in pending]

    no_fallback = await submitted(bcs, versions=two)
    assert await bcs.begin(no_fallback, NOW) == 5
    assert await recipients(bcs, no_fallback.id) == {1: "es", 2: "es", 3: "ht", 5: "ht", 6: "es"}

    # A fallback with no version of its own is no fallback: only Creole speakers get this one.
    missing_fallback = await submitted(bcs, versions={"ht": Version("Bonjou")}, fallback="es")
    assert await bcs.begin(missing_fallback, NOW) == 2
    assert await recipients(bcs, missing_fallback.id) == {3: "ht", 5: "ht"}


async def test_begin_happens_once_with_the_audience_as_it_is_then(
    bcs: Broadcasts, store: SqlStore, core: Core, town: Town
) -> None:
    queued = await submitted(bcs, Audience(language="es"))
    assert await bcs.begin(queued, NOW) == 3
    running = await bcs.get(queued.id)
    assert running is not None
    assert running.status is BroadcastStatus.RUNNING
    assert running.started_at == NOW

    await join(store, core, 7, "es", now=NOW + dt.timedelta(minutes=1))
    assert await bcs.begin(queued, NOW + dt.timedelta(minutes=2)) is None, "already begun"
    assert await recipients(bcs, queued.id) == {1: "es", 2: "es", 6: "es"}, "no newcomer, nobody twice"
    assert (await bcs.counts(queued.id)).total == 3

    cancelled = await submitted(bcs)
    assert await bcs.transition(
        cancelled.id, BroadcastStatus.CANCELLED, allowed_from=(BroadcastStatus.QUEUED,), now=NOW
    )
    assert await bcs.begin(cancelled, NOW) is None
    assert (await bcs.counts(cancelled.id)).total == 0

    draft = await bcs.new_draft(ADMIN, "es", "versions", NOW)
    assert await bcs.begin(draft, NOW) is None


async def test_pending_pages_in_user_id_order(bcs: Broadcasts, store: SqlStore, core: Core, town: Town) -> None:
    for user_id in (40, 7, 23):  # joined out of order
        await join(store, core, user_id, "es")
    running = await started(bcs)

    pages, after = [], None
    for _ in range(4):
        page = await bcs.pending(running.id, after=after, limit=3)
        pages.append([r.user_id for r in page])
        after = page[-1].user_id if page else after
    assert pages == [[1, 2, 3], [4, 5, 6], [7, 23, 40], []]

    await bcs.record(running.id, [Outcome(u, RecipientStatus.SENT, 1) for u in (1, 3, 23)], NOW)
    assert [r.user_id for r in await bcs.pending(running.id, after=None, limit=4)] == [2, 4, 5, 6]
    assert [r.user_id for r in await bcs.pending(running.id, after=6, limit=4)] == [7, 40]


async def test_record_writes_a_batch_of_outcomes(bcs: Broadcasts, town: Town) -> None:
    running = await started(bcs)
    await bcs.record(running.id, [], NOW)
    await bcs.record(
        running.id,
        [
            Outcome(1, RecipientStatus.SENT, 1),
            Outcome(2, RecipientStatus.FAILED, 1, NOT_FOUND),
            Outcome(3, RecipientStatus.BLOCKED, 1, BLOCKED_REASON),
            Outcome(4, RecipientStatus.SKIPPED, 0),
            Outcome(5, RecipientStatus.FAILED, 5, "gave up: Internal Server Error"),
            Outcome(6, RecipientStatus.PENDING, 2),  # to be tried again
            Outcome(99, RecipientStatus.SENT, 1),  # not a recipient: nothing to write
        ],
        NOW,
    )
    counts = await bcs.counts(running.id)
    assert counts == Counts(
        {
            RecipientStatus.SENT: 1,
            RecipientStatus.FAILED: 2,
            RecipientStatus.BLOCKED: 1,
            RecipientStatus.SKIPPED: 1,
            RecipientStatus.PENDING: 1,
        }
    )
    assert (counts.total, counts.done) == (6, 5)
    assert sorted(await bcs.failure_reasons(running.id)) == [(NOT_FOUND, 1), ("gave up: Internal Server Error", 1)]
    [retry] = await bcs.pending(running.id, after=None, limit=10)
    assert (retry.user_id, retry.attempts) == (6, 2)

    # A late duplicate does not rewrite an outcome already recorded.
    await bcs.record(running.id, [Outcome(1, RecipientStatus.FAILED, 2, NOT_FOUND)], NOW)
    assert (await bcs.counts(running.id))[RecipientStatus.SENT] == 1
    # What /mydata tells each of them: how many broadcasts reached them.
    assert [await bcs.received(user_id) for user_id in (1, 2, 3, 6, 99)] == [1, 0, 0, 0, 0]


async def test_an_outcome_for_a_cancelled_recipient_still_records_what_happened(bcs: Broadcasts, town: Town) -> None:
    """Cancelling marks everyone pending cancelled; messages already on their way are recorded as they ended."""
    running = await started(bcs)
    await bcs.record(running.id, [Outcome(1, RecipientStatus.SENT, 1)], NOW)
    cancelled = await bcs.transition(
        running.id, BroadcastStatus.CANCELLED, allowed_from=(BroadcastStatus.RUNNING,), now=NOW
    )
    assert cancelled is not None
    assert await bcs.counts(running.id) == Counts({RecipientStatus.SENT: 1, RecipientStatus.CANCELLED: 5})
    assert await bcs.pending(running.id, after=None, limit=10) == []

    await bcs.record(
        running.id, [Outcome(2, RecipientStatus.SENT, 1), Outcome(3, RecipientStatus.BLOCKED, 1, BLOCKED_REASON)], NOW
    )
    assert await bcs.counts(running.id) == Counts(
        {RecipientStatus.SENT: 2, RecipientStatus.BLOCKED: 1, RecipientStatus.CANCELLED: 3}
    )
    assert 3 not in await audience_now(bcs), "a block learnt that way still counts"


# --------------------------------------------------------------------------------------------- the job


async def test_pause_resume_and_cancel(bcs: Broadcasts, town: Town) -> None:
    running, paused = (BroadcastStatus.RUNNING,), (BroadcastStatus.PAUSED,)
    cancellable = (BroadcastStatus.RUNNING, BroadcastStatus.PAUSED, BroadcastStatus.QUEUED, BroadcastStatus.SCHEDULED)
    queued = await submitted(bcs)
    assert await bcs.transition(queued.id, BroadcastStatus.PAUSED, allowed_from=running, now=NOW) is None
    assert await bcs.begin(queued, NOW) == 6

    held = await bcs.transition(queued.id, BroadcastStatus.PAUSED, allowed_from=running, now=NOW)
    assert held is not None
    assert held.status is BroadcastStatus.PAUSED
    assert held.finished_at is None
    assert await bcs.transition(queued.id, BroadcastStatus.PAUSED, allowed_from=running, now=NOW) is None
    assert (await bcs.counts(queued.id))[RecipientStatus.PENDING] == 6, "pausing keeps everyone pending"
    assert await bcs.next_job(NOW) is None, "the sender leaves a paused broadcast alone"

    resumed = await bcs.transition(queued.id, BroadcastStatus.RUNNING, allowed_from=paused, now=NOW)
    assert resumed is not None
    assert resumed.status is BroadcastStatus.RUNNING
    await bcs.record(queued.id, [Outcome(1, RecipientStatus.SENT, 1), Outcome(2, RecipientStatus.SENT, 1)], NOW)
    await bcs.transition(queued.id, BroadcastStatus.PAUSED, allowed_from=running, now=NOW)

    later = NOW + dt.timedelta(minutes=5)
    cancelled = await bcs.transition(queued.id, BroadcastStatus.CANCELLED, allowed_from=cancellable, now=later)
    assert cancelled is not None
    assert cancelled.status is BroadcastStatus.CANCELLED
    assert cancelled.finished_at == later
    assert await bcs.counts(queued.id) == Counts({RecipientStatus.SENT: 2, RecipientStatus.CANCELLED: 4})
    assert await bcs.transition(queued.id, BroadcastStatus.CANCELLED, allowed_from=cancellable, now=later) is None
    assert await bcs.transition(queued.id, BroadcastStatus.RUNNING, allowed_from=paused, now=later) is None

    await bcs.finish(queued.id, later)
    after = await bcs.get(queued.id)
    assert after is not None
    assert after.status is BroadcastStatus.CANCELLED, "finish only ends a running broadcast"
    assert after.report is None


async def test_finish_keeps_the_counts_in_the_report(bcs: Broadcasts, store: SqlStore, town: Town) -> None:
    """The report is what the admin sees later; it stays right after recipients delete themselves."""
    running = await started(bcs)
    await bcs.stop(2, NOW)
    await bcs.record(
        running.id,
        [
            Outcome(1, RecipientStatus.SENT, 1),
            Outcome(2, RecipientStatus.SKIPPED, 0),
            Outcome(3, RecipientStatus.BLOCKED, 1, BLOCKED_REASON),
            Outcome(5, RecipientStatus.SENT, 2),
            Outcome(6, RecipientStatus.FAILED, 1, NOT_FOUND),
        ],
        NOW,
    )
    assert await store.delete(4), "deleting someone still pending takes their row away"
    assert await bcs.pending(running.id, after=None, limit=10) == []

    finished_at = NOW + dt.timedelta(hours=1)
    counts = await bcs.finish(running.id, finished_at)
    expected = {"sent": 2, "skipped": 1, "blocked": 1, "failed": 1}
    assert {status.value: n for status, n in counts.by_status.items()} == expected
    done = await bcs.get(running.id)
    assert done is not None
    assert done.status is BroadcastStatus.DONE
    assert done.finished_at == finished_at
    assert done.report == expected

    for user_id in (1, 2, 3):
        assert await store.delete(user_id)
    assert await bcs.counts(running.id) == Counts({RecipientStatus.SENT: 1, RecipientStatus.FAILED: 1})
    kept = await bcs.get(running.id)
    assert kept is not None
    assert kept.report == expected
    assert [b.id for b in await bcs.recent()] == [running.id]


async def test_deleting_someone_takes_their_opt_out_with_them(
    bcs: Broadcasts, store: SqlStore, core: Core, town: Town
) -> None:
    """/delete erases the /stop and the "unreachable" mark too: someone who comes back is a new subscriber."""
    running = await started(bcs)
    await bcs.stop(2, NOW)
    await bcs.record(running.id, [Outcome(3, RecipientStatus.BLOCKED, 1, BLOCKED_REASON)], NOW)
    for user_id in (2, 3):
        assert await store.delete(user_id)
    async with store.engine.connect() as conn:
        left = (
            await conn.execute(
                select(func.count()).select_from(broadcast_optouts).where(broadcast_optouts.c.user_id.in_((2, 3)))
            )
        ).scalar_one()
        rows = (
            await conn.execute(
                select(func.count()).select_from(broadcast_recipients).where(broadcast_recipients.c.user_id.in_((2, 3)))
            )
        ).scalar_one()
    assert (left, rows) == (0, 0)

    for user_id in (2, 3):  # they come back, before their record could be newer than an opt-out
        await join(store, core, user_id, "es", now=NOW - dt.timedelta(days=1))
    assert not await bcs.stopped(2)
    assert {2, 3} <= await audience_now(bcs)


async def test_next_job_running_first_then_queued_then_due_scheduled(bcs: Broadcasts, town: Town) -> None:
    assert await bcs.next_job(NOW) is None
    await bcs.new_draft(ADMIN, "es", "versions", NOW)
    assert await bcs.next_job(NOW) is None, "a draft is not a job"

    queued = await submitted(bcs)
    due = await submitted(bcs, scheduled_for=NOW - dt.timedelta(minutes=1))
    future = await submitted(bcs, scheduled_for=NOW + dt.timedelta(hours=1))
    assert await bcs.next_scheduled() == NOW - dt.timedelta(minutes=1)

    newest = await submitted(bcs)
    assert await bcs.begin(newest, NOW) == 6
    job = await bcs.next_job(NOW)
    assert job is not None
    assert (job.id, job.status) == (newest.id, BroadcastStatus.RUNNING), "a running one first, though newer"

    await bcs.transition(newest.id, BroadcastStatus.PAUSED, allowed_from=(BroadcastStatus.RUNNING,), now=NOW)
    job = await bcs.next_job(NOW)
    assert job is not None
    assert job.id != newest.id, "a paused broadcast is not worked on"
    await bcs.transition(newest.id, BroadcastStatus.CANCELLED, allowed_from=(BroadcastStatus.PAUSED,), now=NOW)

    for expected in (queued, due):
        job = await bcs.next_job(NOW)
        assert job is not None
        assert job.id == expected.id
        assert await bcs.begin(job, NOW) == 6
        await bcs.finish(job.id, NOW)

    assert await bcs.next_job(NOW) is None, "the other scheduled one is not due yet"
    assert await bcs.next_scheduled() == NOW + dt.timedelta(hours=1)
    job = await bcs.next_job(NOW + dt.timedelta(hours=1))
    assert job is not None
    assert job.id == future.id


# --------------------------------------------------------------------------------------------- drafts


async def test_a_new_draft_replaces_the_same_admins_old_one(bcs: Broadcasts) -> None:
    first = await bcs.new_draft(ADMIN, "es", "versions", NOW)
    assert first.status is BroadcastStatus.DRAFT
    assert (first.created_by, first.language, first.step, first.created_at) == (ADMIN, "es", "versions", NOW)
    assert (first.versions, first.fallback, first.audience.everyone) == ({}, None, True)
    assert await bcs.draft_of(ADMIN) == first
    assert await bcs.draft_of(OTHER_ADMIN) is None

    others = await bcs.new_draft(OTHER_ADMIN, "ht", "versions", NOW)
    second = await bcs.new_draft(ADMIN, "en", "versions", NOW + dt.timedelta(minutes=1))
    assert second.id != first.id
    assert await bcs.get(first.id) is None
    assert await bcs.draft_of(ADMIN) == second
    assert await bcs.draft_of(OTHER_ADMIN) == others
    assert await bcs.recent() == [], "drafts are not listed"


async def test_edit_and_discard_a_draft(bcs: Broadcasts) -> None:
    draft = await bcs.new_draft(ADMIN, "es", "versions", NOW)
    versions = {"es": Version("Hola", photo="AgAC-photo"), "ht": Version("Bonjou", document="BQAC-doc")}
    audience = Audience(language="es", country="mexico", handoff=True)
    edited = await bcs.edit_draft(draft.id, step="audience", versions=versions, fallback="es", audience=audience)
    assert edited is not None
    assert (edited.step, edited.versions, edited.fallback, edited.audience) == ("audience", versions, "es", audience)
    assert edited.version_for("ht") == "ht"
    assert edited.version_for("en") == "es"

    moved = await bcs.edit_draft(draft.id, step="schedule")
    assert moved is not None
    assert (moved.step, moved.versions, moved.fallback, moved.audience) == ("schedule", versions, "es", audience)

    await bcs.discard(draft.id)
    assert await bcs.get(draft.id) is None
    assert await bcs.draft_of(ADMIN) is None


async def test_submit_takes_a_draft_out_of_the_composer(bcs: Broadcasts) -> None:
    now_draft = await bcs.new_draft(ADMIN, "es", "versions", NOW)
    await bcs.edit_draft(now_draft.id, versions={"es": Version("Hola")})
    assert await bcs.submit(now_draft.id)
    assert not await bcs.submit(now_draft.id), "only once"
    queued = await bcs.get(now_draft.id)
    assert queued is not None
    assert (queued.status, queued.step, queued.scheduled_for) == (BroadcastStatus.QUEUED, None, None)
    assert await bcs.draft_of(ADMIN) is None

    # Once submitted it is no draft: it cannot be edited or discarded, and a new draft does not replace it.
    await bcs.edit_draft(now_draft.id, versions={"es": Version("Changed")})
    await bcs.discard(now_draft.id)
    await bcs.new_draft(ADMIN, "es", "versions", NOW)
    kept = await bcs.get(now_draft.id)
    assert kept is not None
    assert kept.versions == {"es": Version("Hola")}

    later = await bcs.new_draft(ADMIN, "es", "versions", NOW)
    when = NOW + dt.timedelta(days=1, hours=1)
    assert await bcs.submit(later.id, scheduled_for=when, timezone="America/Caracas")
    scheduled = await bcs.get(later.id)
    assert scheduled is not None
    assert (scheduled.status, scheduled.scheduled_for, scheduled.timezone) == (
        BroadcastStatus.SCHEDULED,
        when,
        "America/Caracas",
    )
    assert [b.id for b in await bcs.recent()] == [later.id, now_draft.id]
