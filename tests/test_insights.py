"""The anonymous counts: each person once per milestone, small counts shown as "<5", and nothing changes when the
people counted are erased. On SQLite, the embedded default, and on PostgreSQL (a database of the test's own)."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

import pytest

from bot.app import Core
from bot.insights import Insights, figures_csv, summary, tally
from bot.storage import Participant, SqlStore, open_store
from bot.storage.referrals import Referrals, Status
from bot.storage.tickets import Tickets, TicketStatus
from bot.texts import T
from flows.engine import Session
from tests.directory import organisation
from tests.postgres import own_database

NOW = dt.datetime(2026, 12, 7, 10, 0, tzinfo=dt.UTC)


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlStore]:
    async with contextlib.AsyncExitStack() as stack:
        if request.param == "postgres":
            url = await stack.enter_async_context(own_database("insights"))
        else:
            url = f"sqlite+aiosqlite:///{tmp_path / 'puente.db'}"
        opened = await open_store(url)
        stack.push_async_callback(opened.close)
        yield opened


def person(user_id: int, program: str, language: str = "es") -> Participant:
    return Participant(user_id, user_id, language, NOW, Session(program, "nationality"))


def at(p: Participant, node: str | None, answers: dict[str, str], outcome: str | None = None) -> Participant:
    session = Session(p.session.program_id, node, MappingProxyType(answers), tuple(answers))
    return replace(p, session=session, outcome=outcome)


async def save(store: SqlStore, previous: Participant | None, changed: Participant, *reasons: str) -> Participant:
    changed, counts = tally(previous, changed, NOW, reasons)
    assert await store.save(changed, previous=previous, update_id=None, now=NOW, counts=counts)
    return changed


async def finish(store: SqlStore, user_id: int, program: str, outcome: str, language: str = "es") -> None:
    new = await save(store, None, person(user_id, program, language))
    asked = await save(store, new, at(new, "location", {"nationality": "venezuelan"}))
    answers = {"nationality": "venezuelan", "location": "mexico"}
    await save(store, asked, at(asked, None, answers, outcome), "rule_a")


async def test_counts_outlive_erasure_and_small_ones_are_hidden(store: SqlStore, core: Core) -> None:
    insights = Insights(store.engine, lambda: NOW, core.programs)
    program = core.program.id
    for user_id in range(1, 7):
        await finish(store, user_id, program, "likely_eligible")
    await finish(store, 7, program, "not_eligible", language="ht")

    figures = await insights.figures("7d", "")
    assert figures.funnel.consented == 7
    assert figures.funnel.finished == 7
    assert figures.results == {"likely_eligible": 6, "not_eligible": None}  # one person: "<5"
    assert figures.results_by_language == {"es": {"likely_eligible": 6}, "ht": {"not_eligible": None}}
    assert figures.results_by_nationality == {"venezuelan": {"likely_eligible": 6, "not_eligible": None}}
    assert figures.reasons == [("rule_a", 7)]
    [nationality, location] = [d for d in figures.dropoff if d.question_id in ("nationality", "location")]
    assert (nationality.reached, nationality.answered, nationality.stopped) == (7, 7, 0)
    assert (location.reached, location.answered, location.stopped) == (7, 7, 0)
    assert figures.people_by_day == {NOW.date(): 7}
    before = figures_csv(figures)
    assert "funnel,consented,,7" in before.replace("\r\n", "\n")
    assert "results,not_eligible,,<5" in before.replace("\r\n", "\n")

    for user_id in range(1, 8):
        assert await store.delete(user_id)
    assert figures_csv(await insights.figures("7d", "")) == before


async def test_each_person_counts_once_per_milestone(store: SqlStore, core: Core) -> None:
    program = core.program.id
    new = await save(store, None, person(1, program))
    asked = await save(store, new, at(new, "location", {"nationality": "venezuelan"}))
    back = await save(store, asked, at(asked, "nationality", {}))  # Back, then the same answer again
    again = await save(store, back, at(back, "location", {"nationality": "venezuelan"}))
    done = await save(store, again, at(again, None, {"nationality": "venezuelan"}, "likely_eligible"))
    redone = await save(store, done, at(done, "location", {"nationality": "venezuelan"}))
    await save(store, redone, at(redone, None, {"nationality": "venezuelan"}, "not_eligible"))

    for user_id in range(2, 6):  # four more, so the one above is shown among five
        await save(store, None, person(user_id, program))
    figures = await Insights(store.engine, lambda: NOW, core.programs).figures("all", program)
    nationality = next(d for d in figures.dropoff if d.question_id == "nationality")
    assert (nationality.reached, nationality.answered) == (5, None)  # answered by one person, once
    assert figures.funnel.consented == 5
    assert figures.results == {"likely_eligible": None}  # the first result, counted once


async def test_tickets_count_opening_first_answer_and_closing_once(store: SqlStore, core: Core) -> None:
    tickets = Tickets(store)
    program = core.program.id
    waits = [dt.timedelta(minutes=m) for m in (3, 4, 10, 12, 40)]
    for user_id, wait in enumerate(waits, start=1):
        await save(store, None, person(user_id, program))
        ticket = await tickets.create(user_id, share_answers=False, now=NOW, language="es")
        await tickets.first_answer(ticket.id, NOW + wait)
        await tickets.first_answer(ticket.id, NOW + wait * 2)  # later answers are not first answers
        await tickets.update(ticket.id, NOW + wait * 3, status=TicketStatus.CLOSED, closed_at=NOW + wait * 3)
        await tickets.update(ticket.id, NOW + wait * 4, status=TicketStatus.CLOSED, closed_at=NOW + wait * 4)

    handoff = (await Insights(store.engine, lambda: NOW, core.programs).figures("7d", "")).handoff
    assert handoff.opened == 5
    assert handoff.first_answer.measured == 5
    assert handoff.first_answer.median == dt.timedelta(minutes=15)  # 3, 4, 10 | 12, 40: the third is in <= 15 min
    assert handoff.first_answer.p90 == dt.timedelta(hours=1)
    assert handoff.to_close.measured == 5
    assert handoff.by_hour[NOW.weekday() * 24 + NOW.hour] == 5
    assert handoff.waiting_now == 0


async def test_a_few_people_are_shown_as_fewer_than_five_not_as_nothing(store: SqlStore, core: Core) -> None:
    for user_id in range(1, 4):
        await finish(store, user_id, core.program.id, "likely_eligible")
    figures = await Insights(store.engine, lambda: NOW, core.programs).figures("30d", "")
    text = summary(figures, core.translator, "en")
    assert core.translator.text("en", T.STATS_NOTHING) not in text
    assert "Accepted the notice: <5 people · got a result: <5" in text
    assert ": 3" not in text
    assert " 3 " not in text.replace("30 days", "")


async def test_referrals_per_organisation_with_answer_times_and_capacity(store: SqlStore, core: Core) -> None:
    """Seven people shared with one organisation: five accepted after 10 minutes, one declined after a day, one
    still pending. Per organisation and overall: counts, "<5" for the small ones, median and p90 of the answers."""
    referrals = Referrals(store)
    await referrals.save_organisation(organisation("alpha", weekly_capacity=20), NOW)
    await referrals.save_organisation(organisation("beta", weekly_capacity=3), NOW)
    made = []
    for user_id in range(1, 8):
        await save(store, None, person(user_id, "venezuela-2022"))
        result, referral = await referrals.refer(user_id, "alpha", NOW)
        assert referral is not None, result
        made.append(referral)
    for referral in made[:5]:
        await referrals.settle(referral.id, Status.ACCEPTED, NOW + dt.timedelta(minutes=10))
    await referrals.settle(made[5].id, Status.DECLINED, NOW + dt.timedelta(days=1))

    figures = await Insights(store.engine, lambda: NOW + dt.timedelta(days=1), core.programs).figures("7d", "")
    alpha, beta = figures.referrals
    assert (alpha.org_id, alpha.shared, alpha.accepted, alpha.declined, alpha.pending) == ("alpha", 7, 5, None, None)
    assert (alpha.used_this_week, alpha.weekly_capacity) == (6, 20)  # a declined referral gives its place back
    assert (alpha.answer_time.measured, alpha.answer_time.median, alpha.answer_time.p90) == (
        6,
        dt.timedelta(minutes=15),
        dt.timedelta(days=1),
    )
    assert (beta.shared, beta.used_this_week, beta.weekly_capacity) == (0, 0, 3)
    assert figures.referral_answer_time == alpha.answer_time
    cells = {tuple(row.split(",")[4:7]): row.split(",")[7] for row in figures_csv(figures).splitlines()[1:]}
    assert cells[("referrals", "alpha", "declined")] == "<5"
    assert cells[("referrals", "alpha", "answer_median_seconds")] == "900"
