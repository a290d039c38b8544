"""What the insights show, as plain values: built by bot.insights from the anonymous counts, read by the /stats
text, the CSV export and the charts (bot.charts).

Every count of people here is already suppressed: a count from 1 to 4 is `None` ("fewer than 5"), so nothing
downstream can show a small group by mistake. Zero stays zero (nobody is not somebody).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

#: Below this, a count of people is shown as "<5".
SMALLEST_SHOWN = 5

#: A count of people: a number of at least SMALLEST_SHOWN, 0, or None for 1 to 4.
Shown = int | None


#: Times to an answer are counted in buckets, by the bucket's upper bound in seconds (the last: anything longer).
BUCKETS: tuple[int, ...] = (60, 300, 900, 1800, 3600, 2 * 3600, 4 * 3600, 8 * 3600, 86400, 2 * 86400, 7 * 86400, 10**9)


def bucket_of(seconds: float) -> int:
    """The bucket a duration falls in (its upper bound)."""
    return next(bound for bound in BUCKETS if seconds <= bound)


def suppressed(count: int) -> Shown:
    """`count` as it may be shown: None for 1 to 4 people."""
    return None if 0 < count < SMALLEST_SHOWN else count


@dataclass(frozen=True)
class Period:
    """The days counted, in UTC: `since` (None: from the first) up to and including `until`."""

    name: str  # "7d", "30d" or "all"
    since: dt.date | None
    until: dt.date


@dataclass(frozen=True)
class Funnel:
    """Taps before the privacy notice (nothing is kept about anyone then, so these count taps, not people), then
    people: each counted once, at the first time they got there."""

    started: Shown
    picked_language: Shown
    declined: Shown
    consented: Shown
    finished: Shown


@dataclass(frozen=True)
class Drop:
    """One question: how many people saw it, answered it, and stopped there (saw it, never answered)."""

    question_id: str
    reached: Shown
    answered: Shown
    stopped: Shown


@dataclass(frozen=True)
class Duration:
    """A time to an answer, from the counts in BUCKETS (so to within a bucket: the bucket's upper bound is
    given); the median and p90 are None when fewer than SMALLEST_SHOWN were measured."""

    median: dt.timedelta | None
    p90: dt.timedelta | None
    measured: Shown
    #: How many in each bucket (its upper bound in seconds), every bucket present, in order.
    buckets: dict[int, Shown] = field(default_factory=dict)


@dataclass(frozen=True)
class OrgReferrals:
    org_id: str
    shared: Shown
    accepted: Shown
    declined: Shown
    withdrawn: Shown
    undelivered: Shown
    pending: Shown
    answer_time: Duration
    #: This ISO week: referrals counted against the organisation's weekly capacity, and that capacity.
    used_this_week: Shown
    weekly_capacity: int


@dataclass(frozen=True)
class HandoffFigures:
    opened: Shown
    first_answer: Duration
    to_close: Duration
    waiting_now: Shown
    #: Tickets opened by hour of the week, UTC: key 0 is Monday 00:00-00:59, 167 Sunday 23:00-23:59.
    by_hour: dict[int, Shown] = field(default_factory=dict)


@dataclass(frozen=True)
class BroadcastFigures:
    broadcast_id: int
    started: dt.date
    recipients: Shown
    delivered: Shown
    blocked: Shown
    failed: Shown


@dataclass(frozen=True)
class Figures:
    period: Period
    #: The program counted ("" for every program).
    program: str
    funnel: Funnel
    #: People by first result (outcome id, as in flows.model.OUTCOMES).
    results: dict[str, Shown]
    #: By language, by nationality and by location (the answer's option id): outcome -> people.
    results_by_language: dict[str, dict[str, Shown]]
    results_by_nationality: dict[str, dict[str, Shown]]
    results_by_location: dict[str, dict[str, Shown]]
    #: The rules most often behind a result (rule id, people), most first.
    reasons: list[tuple[str, Shown]]
    #: Per question, in the questionnaire's order.
    dropoff: list[Drop]
    referrals: list[OrgReferrals]
    handoff: HandoffFigures
    broadcasts: list[BroadcastFigures]
    #: Opt-outs (/stop) and re-subscriptions by day.
    stopped: dict[dt.date, Shown]
    resubscribed: dict[dt.date, Shown]
    #: Unique people who moved in the questionnaire, by day and by ISO week ("2026-W49"), oldest first.
    people_by_day: dict[dt.date, Shown]
    people_by_week: dict[str, Shown]
    #: How long organisations took to accept or decline, all of them together.
    referral_answer_time: Duration = field(default_factory=lambda: Duration(None, None, 0))
