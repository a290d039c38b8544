"""NGO insights: the anonymous counts (bot.storage.stats) taken as things happen, and the figures built from them.

Counting. `tally` says what one saved change of a person adds to the counts: each person once per milestone
(accepted the notice, saw a question, answered it, got a first result, active on a day and in a week), which is
what "unique people" means without keeping anyone: the milestones already counted are kept in the person's own
row and go with it. Before the privacy notice nothing is kept about anyone, so /start, a language picked and a
notice declined are counted as taps.

Figures. `Insights.figures` reads the counts of a period, and what outlives people by itself (referrals keep no
identity once a person is erased; a broadcast keeps its report), and suppresses every count of 1 to 4 people.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.figures import (
    BUCKETS,
    BroadcastFigures,
    Drop,
    Duration,
    Figures,
    Funnel,
    HandoffFigures,
    OrgReferrals,
    Period,
    Shown,
    bucket_of,
    suppressed,
)
from bot.i18n import Translator
from bot.programs import Programs
from bot.storage.base import Participant
from bot.storage.referrals import COUNTING, Status, iso_week
from bot.storage.sql import utc
from bot.storage.stats import Count, Row, rows
from bot.storage.tables import broadcast_recipients, broadcasts, organisations, referrals, tickets
from bot.texts import T
from flows.plaintext import guard_cell

#: The periods /stats knows, in days (None: everything counted).
PERIODS: dict[str, int | None] = {"7d": 7, "30d": 30, "all": None}
#: The answers results are broken down by, when a program asks them (their option ids are the breakdown).
NATIONALITY, LOCATION = "nationality", "location"
#: Rules shown behind the results, most frequent first.
TOP_REASONS = 8

# ---------------------------------------------------------------------------------------------- counting


def tally(
    previous: Participant | None, changed: Participant, now: dt.datetime, reasons: Iterable[str] = ()
) -> tuple[Participant, list[Count]]:
    """What saving `changed` (loaded as `previous`) adds to the counts, and `changed` with the milestones noted.

    `reasons`: the rule ids behind a result reached by this change, counted with a first result only.
    """
    session = changed.session
    program, lang = session.program_id, changed.language
    marks = set(changed.counted)
    counts: list[Count] = []
    if previous is None:
        counts.append(Count("consented", program_id=program, language=lang))
    if f"p:{program}" not in marks:  # a new program (switched since): its questions are counted afresh
        marks = {m for m in marks if m.startswith(("day:", "week:"))} | {f"p:{program}"}
    day, week = f"day:{now.date().isoformat()}", f"week:{iso_week(now.date())}"
    if day not in marks:
        counts.append(Count("people_day"))
        marks = {m for m in marks if not m.startswith("day:")} | {day}
    if week not in marks:
        counts.append(Count("people_week"))
        marks = {m for m in marks if not m.startswith("week:")} | {week}
    for question in session.history:
        if f"a:{question}" not in marks:
            counts.append(Count("answered", key=question, program_id=program, language=lang))
            marks.add(f"a:{question}")
    if session.node is not None and f"q:{session.node}" not in marks:
        counts.append(Count("reached", key=session.node, program_id=program, language=lang))
        marks.add(f"q:{session.node}")
    if changed.outcome is not None and "done" not in marks:
        where = {
            "nationality": session.answers.get(NATIONALITY, ""),
            "location": session.answers.get(LOCATION, ""),
        }
        counts.append(Count("finished", program_id=program, language=lang, outcome=changed.outcome, **where))
        counts += [
            Count("reason", key=rule, program_id=program, outcome=changed.outcome) for rule in dict.fromkeys(reasons)
        ]
        marks.add("done")
    return replace(changed, counted=frozenset(marks)), counts


# ---------------------------------------------------------------------------------------------- figures


def span_of(name: str, today: dt.date) -> Period:
    days = PERIODS[name]
    return Period(name, None if days is None else today - dt.timedelta(days=days - 1), today)


def duration(buckets: Mapping[int, int]) -> Duration:
    """Median and p90 of counts by bucket (each value: its bucket's upper bound)."""
    total = sum(buckets.values())
    shown = {bound: suppressed(buckets.get(bound, 0)) for bound in BUCKETS}

    def quantile(q: float) -> dt.timedelta | None:
        if total < 5:
            return None
        seen = 0
        for bound in BUCKETS:
            seen += buckets.get(bound, 0)
            if seen >= q * total:
                return dt.timedelta(seconds=bound)
        return None  # pragma: no cover - the last bucket holds everything left

    return Duration(quantile(0.5), quantile(0.9), suppressed(total), shown)


class Insights:
    """The figures of a period from the database; only admins are ever shown them (bot.admin)."""

    def __init__(self, engine: AsyncEngine, clock: Callable[[], dt.datetime], programs: Programs) -> None:
        self.engine = engine
        self.clock = clock
        self._programs = programs

    def programs(self) -> list[str]:
        return [p.id for p in self._programs.all()]

    def question_ids(self, program_id: str) -> list[str]:
        """The questions in the questionnaire's order (drop-off is shown in it); every program's for ""."""
        chosen = self._programs.get(program_id)
        shipped = [chosen] if chosen is not None else [self._programs.active, *self._programs.all()]
        return list(dict.fromkeys(q.id for p in shipped for q in p.questionnaire.questions))

    async def figures(self, name: str, program_id: str) -> Figures:
        now = self.clock()
        span = span_of(name, now.date())
        found = await rows(self.engine, since=span.since, program_id=program_id)
        orgs, answer_time = await self._referrals(span, now)
        return build(
            found,
            self.question_ids(program_id),
            period=span,
            program=program_id,
            referrals=orgs,
            referral_answer_time=answer_time,
            handoff=_handoff(found, await self._waiting()),
            broadcasts=await self._broadcasts(span),
        )

    async def _referrals(self, span: Period, now: dt.datetime) -> tuple[list[OrgReferrals], Duration]:
        since = _start_of(span)
        query = select(referrals.c.org_id, referrals.c.status, referrals.c.created_at, referrals.c.decided_at)
        if since is not None:
            query = query.where(referrals.c.created_at >= since)
        week = iso_week(now.date())
        async with self.engine.connect() as conn:
            found = (await conn.execute(query)).all()
            orgs = (await conn.execute(select(organisations.c.id, organisations.c.weekly_capacity))).all()
            this_week = (
                await conn.execute(
                    select(referrals.c.org_id).where(referrals.c.week == week, referrals.c.status.in_(COUNTING))
                )
            ).all()
        by_status: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        answered: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        for org_id, status, created, decided in found:
            by_status[org_id][status] += 1
            if decided is not None and status in (Status.ACCEPTED, Status.DECLINED):
                answered[org_id][bucket_of((utc(decided) - utc(created)).total_seconds())] += 1
        used: dict[str, int] = defaultdict(int)
        for (org_id,) in this_week:
            used[org_id] += 1
        everyone: dict[int, int] = defaultdict(int)
        for buckets in answered.values():
            for bound, n in buckets.items():
                everyone[bound] += n
        per_org = [
            OrgReferrals(
                org_id=org_id,
                shared=suppressed(sum(by_status[org_id].values())),
                accepted=suppressed(by_status[org_id][Status.ACCEPTED]),
                declined=suppressed(by_status[org_id][Status.DECLINED]),
                withdrawn=suppressed(by_status[org_id][Status.WITHDRAWN]),
                undelivered=suppressed(by_status[org_id][Status.UNDELIVERED]),
                pending=suppressed(by_status[org_id][Status.PENDING]),
                answer_time=duration(answered[org_id]),
                used_this_week=suppressed(used[org_id]),
                weekly_capacity=capacity,
            )
            for org_id, capacity in sorted(orgs)
        ]
        return per_org, duration(everyone)

    async def _waiting(self) -> int:
        async with self.engine.connect() as conn:
            found = await conn.execute(select(tickets.c.id).where(tickets.c.status.in_(("waiting", "escalated"))))
            return len(found.all())

    async def _broadcasts(self, span: Period) -> list[BroadcastFigures]:
        since = _start_of(span)
        query = select(broadcasts.c.id, broadcasts.c.started_at, broadcasts.c.report).where(
            broadcasts.c.started_at.is_not(None)
        )
        if since is not None:
            query = query.where(broadcasts.c.started_at >= since)
        async with self.engine.connect() as conn:
            found = (await conn.execute(query.order_by(broadcasts.c.id))).all()
            live = (
                await conn.execute(
                    select(broadcast_recipients.c.broadcast_id, broadcast_recipients.c.status).where(
                        broadcast_recipients.c.broadcast_id.in_([b.id for b in found if b.report is None])
                    )
                )
            ).all()
        running: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for broadcast_id, status in live:
            running[broadcast_id][status] += 1
        result = []
        for broadcast_id, started_at, report in found:
            counts: Mapping[str, int] = report if report is not None else running[broadcast_id]
            result.append(
                BroadcastFigures(
                    broadcast_id=broadcast_id,
                    started=utc(started_at).date(),
                    recipients=suppressed(sum(counts.values())),
                    delivered=suppressed(counts.get("sent", 0)),
                    blocked=suppressed(counts.get("blocked", 0)),
                    failed=suppressed(counts.get("failed", 0)),
                )
            )
        return result


def build(
    found: Sequence[Row],
    question_ids: Sequence[str],
    *,
    period: Period,
    program: str,
    referrals: list[OrgReferrals],
    referral_answer_time: Duration,
    handoff: HandoffFigures,
    broadcasts: list[BroadcastFigures],
) -> Figures:
    """The figures: those that come from the counts, with the ones read elsewhere."""
    total: dict[str, int] = defaultdict(int)
    keyed: dict[tuple[str, str], int] = defaultdict(int)
    results: dict[str, int] = defaultdict(int)
    by: dict[str, dict[str, dict[str, int]]] = {
        dim: defaultdict(lambda: defaultdict(int)) for dim in ("language", NATIONALITY, LOCATION)
    }
    per_day: dict[str, dict[dt.date, int]] = defaultdict(lambda: defaultdict(int))
    per_week: dict[str, int] = defaultdict(int)
    for row in found:
        c = row.count
        total[c.metric] += row.n
        keyed[(c.metric, c.key)] += row.n
        per_day[c.metric][row.day] += row.n
        if c.metric == "finished":
            results[c.outcome] += row.n
            for dim in by:
                if value := getattr(c, dim):
                    by[dim][value][c.outcome] += row.n
        if c.metric == "people_week":
            per_week[iso_week(row.day)] += row.n
    reasons = sorted(((k, n) for (m, k), n in keyed.items() if m == "reason"), key=lambda kn: (-kn[1], kn[0]))
    return Figures(
        period=period,
        program=program,
        referrals=referrals,
        referral_answer_time=referral_answer_time,
        handoff=handoff,
        broadcasts=broadcasts,
        funnel=Funnel(
            started=suppressed(total["started"]),
            picked_language=suppressed(total["picked"]),
            declined=suppressed(total["declined"]),
            consented=suppressed(total["consented"]),
            finished=suppressed(total["finished"]),
        ),
        results={outcome: suppressed(n) for outcome, n in sorted(results.items())},
        results_by_language=_shown(by["language"]),
        results_by_nationality=_shown(by[NATIONALITY]),
        results_by_location=_shown(by[LOCATION]),
        reasons=[(rule, suppressed(n)) for rule, n in reasons[:TOP_REASONS]],
        dropoff=[
            Drop(
                q,
                suppressed(keyed[("reached", q)]),
                suppressed(keyed[("answered", q)]),
                suppressed(max(keyed[("reached", q)] - keyed[("answered", q)], 0)),
            )
            for q in question_ids
            if keyed[("reached", q)]
        ],
        stopped=_days(per_day["stopped"]),
        resubscribed=_days(per_day["resubscribed"]),
        people_by_day=_days(per_day["people_day"]),
        people_by_week={week: suppressed(n) for week, n in sorted(per_week.items())},
    )


def _handoff(found: Sequence[Row], waiting_now: int) -> HandoffFigures:
    def buckets(metric: str) -> dict[int, int]:
        out: dict[int, int] = defaultdict(int)
        for row in found:
            if row.count.metric == metric:
                out[int(row.count.key)] += row.n
        return out

    opened = buckets("ticket_opened")  # keyed by hour of the week
    return HandoffFigures(
        opened=suppressed(sum(opened.values())),
        first_answer=duration(buckets("ticket_answered")),
        to_close=duration(buckets("ticket_closed")),
        waiting_now=suppressed(waiting_now),
        by_hour={hour: suppressed(opened.get(hour, 0)) for hour in range(7 * 24)},
    )


def _shown(table: Mapping[str, Mapping[str, int]]) -> dict[str, dict[str, Shown]]:
    return {k: {outcome: suppressed(n) for outcome, n in sorted(v.items())} for k, v in sorted(table.items())}


def _days(counts: Mapping[dt.date, int]) -> dict[dt.date, Shown]:
    return {day: suppressed(n) for day, n in sorted(counts.items())}


def _start_of(span: Period) -> dt.datetime | None:
    return None if span.since is None else dt.datetime.combine(span.since, dt.time(), tzinfo=dt.UTC)


# ---------------------------------------------------------------------------------------------- showing

SMALL = "<5"


def shown(count: Shown) -> str:
    return SMALL if count is None else str(count)


def spoken(tr: Translator, lang: str, value: dt.timedelta | None) -> str:
    """A duration in the admin's words ("15 min", "2 h", "3 d"); "—" when there is too little to tell."""
    if value is None:
        return "—"
    seconds = value.total_seconds()
    if seconds >= BUCKETS[-1]:
        return "—"
    if seconds < 3600:
        return tr.text(lang, T.STATS_UNIT_MINUTES, n=round(seconds / 60))
    if seconds < 86400:
        return tr.text(lang, T.STATS_UNIT_HOURS, n=round(seconds / 3600))
    return tr.text(lang, T.STATS_UNIT_DAYS, n=round(seconds / 86400))


def summary(figures: Figures, tr: Translator, lang: str) -> str:
    """/stats in a few short lines, small counts shown as "<5"."""
    f = figures.funnel
    lines = [tr.text(lang, T.STATS_TITLE, period=tr.text(lang, f"stats.period.{figures.period.name}"))]
    if all(n == 0 for n in vars(f).values()) and not figures.referrals and figures.handoff.opened == 0:
        return "\n".join([*lines, tr.text(lang, T.STATS_NOTHING)])
    lines.append(
        tr.text(
            lang,
            T.STATS_FUNNEL,
            started=shown(f.started),
            picked=shown(f.picked_language),
            declined=shown(f.declined),
            consented=shown(f.consented),
            finished=shown(f.finished),
        )
    )
    if figures.results:
        lines += ["", tr.text(lang, T.STATS_RESULTS)]
        lines += [f"• {tr.text(lang, f'result.label.{o}')}: {shown(n)}" for o, n in figures.results.items()]
    if figures.results_by_language:
        lines += ["", tr.text(lang, T.STATS_LANGUAGES)]
        for language, outcomes in figures.results_by_language.items():
            parts = ", ".join(f"{tr.text(lang, f'result.label.{o}')} {shown(n)}" for o, n in outcomes.items())
            lines.append(f"• {tr.text(language, T.LANG_NAME)}: {parts}")
    if figures.reasons:
        lines += ["", tr.text(lang, T.STATS_REASONS)]
        lines += [f"• {rule}: {shown(n)}" for rule, n in figures.reasons[:5]]
    stops = sorted((d for d in figures.dropoff if d.stopped), key=lambda d: -(d.stopped or 0))[:3]
    if stops:
        lines += ["", tr.text(lang, T.STATS_DROPOFF)]
        lines += [f"• {d.question_id}: {shown(d.stopped)} / {shown(d.reached)}" for d in stops]
    lines.append("")
    if figures.referrals:
        total = _sum_orgs(figures.referrals)
        answer = spoken(tr, lang, figures.referral_answer_time.median)
        lines.append(tr.text(lang, T.STATS_REFERRALS, **{k: shown(v) for k, v in total.items()}, median=answer))
    h = figures.handoff
    lines.append(
        tr.text(
            lang,
            T.STATS_HANDOFF,
            opened=shown(h.opened),
            median=spoken(tr, lang, h.first_answer.median),
            p90=spoken(tr, lang, h.first_answer.p90),
            close=spoken(tr, lang, h.to_close.median),
            waiting=shown(h.waiting_now),
        )
    )
    b = figures.broadcasts
    lines.append(
        tr.text(
            lang,
            T.STATS_BROADCASTS,
            count=len(b),
            delivered=shown(_total(x.delivered for x in b)),
            blocked=shown(_total(x.blocked for x in b)),
            failed=shown(_total(x.failed for x in b)),
            stopped=shown(_total(figures.stopped.values())),
            resubscribed=shown(_total(figures.resubscribed.values())),
        )
    )
    if figures.people_by_week:
        latest = list(figures.people_by_week.values())[-1]
        busiest = max(figures.people_by_day.values() or [0], key=lambda n: -1 if n is None else n)
        lines.append(tr.text(lang, T.STATS_PEOPLE, week=shown(latest), day=shown(busiest)))
    lines += ["", tr.text(lang, T.STATS_SMALL_NOTE)]
    return "\n".join(lines)


def _total(counts: Iterable[Shown]) -> Shown:
    """A total of suppressed cells: the known ones summed, and "<5" if all are small (never a made-up number)."""
    values = list(counts)
    known = sum(n for n in values if n is not None)
    return None if known == 0 and any(n is None for n in values) else known


def _sum_orgs(orgs: Sequence[OrgReferrals]) -> dict[str, Shown]:
    fields = ("shared", "accepted", "declined", "withdrawn", "undelivered")
    return {f: _total(getattr(o, f) for o in orgs) for f in fields}


# ---------------------------------------------------------------------------------------------- CSV

CSV_COLUMNS = ("period", "from", "to", "program", "section", "item", "breakdown", "value")


def figures_csv(figures: Figures) -> str:
    """Every figure as one row; no ids of anyone, small counts as "<5", durations in seconds."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    span = figures.period
    head = [span.name, span.since.isoformat() if span.since else "", span.until.isoformat(), figures.program]

    def row(section: str, item: object, breakdown: object, value: Shown | str) -> None:
        cells = [*head, section, str(item), str(breakdown), shown(value) if not isinstance(value, str) else value]
        writer.writerow([guard_cell(cell) for cell in cells])

    for stage, n in figures.funnel.__dict__.items():
        row("funnel", stage, "", n)
    for outcome, n in figures.results.items():
        row("results", outcome, "", n)
    for section, table in (
        ("results_by_language", figures.results_by_language),
        ("results_by_nationality", figures.results_by_nationality),
        ("results_by_location", figures.results_by_location),
    ):
        for value, outcomes in table.items():
            for outcome, n in outcomes.items():
                row(section, outcome, value, n)
    for rule, n in figures.reasons:
        row("reasons", rule, "", n)
    for d in figures.dropoff:
        row("dropoff", d.question_id, "reached", d.reached)
        row("dropoff", d.question_id, "answered", d.answered)
        row("dropoff", d.question_id, "stopped", d.stopped)
    for o in figures.referrals:
        for status in ("shared", "accepted", "declined", "withdrawn", "undelivered", "pending", "used_this_week"):
            row("referrals", o.org_id, status, getattr(o, status))
        row("referrals", o.org_id, "weekly_capacity", str(o.weekly_capacity))
        _durations(row, "referrals", o.org_id, "answer", o.answer_time)
    _durations(row, "referrals", "all", "answer", figures.referral_answer_time)
    h = figures.handoff
    row("handoff", "opened", "", h.opened)
    row("handoff", "waiting_now", "", h.waiting_now)
    _durations(row, "handoff", "first_answer", "", h.first_answer)
    _durations(row, "handoff", "to_close", "", h.to_close)
    for hour, n in h.by_hour.items():
        if n != 0:
            row("handoff_by_hour", hour, "", n)
    for b in figures.broadcasts:
        for field in ("recipients", "delivered", "blocked", "failed"):
            row("broadcasts", b.broadcast_id, field, getattr(b, field))
    for section, days in (
        ("stopped", figures.stopped),
        ("resubscribed", figures.resubscribed),
        ("people_by_day", figures.people_by_day),
    ):
        for day, n in days.items():
            row(section, day.isoformat(), "", n)
    for week, n in figures.people_by_week.items():
        row("people_by_week", week, "", n)
    return out.getvalue()


def _durations(row: Callable[..., None], section: str, item: str, prefix: str, value: Duration) -> None:
    name = f"{prefix}_" if prefix else ""
    row(section, item, f"{name}measured", value.measured)
    for which in ("median", "p90"):
        at = getattr(value, which)
        row(section, item, f"{name}{which}_seconds", "" if at is None else str(int(at.total_seconds())))
