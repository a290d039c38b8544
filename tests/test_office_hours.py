"""Office hours decide whether a person is told someone answers now or when the office opens."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.handoff import OfficeHours

HOURS = OfficeHours.parse("mon-fri 09:00-17:00", "America/Mexico_City")


@pytest.mark.parametrize(
    ("moment", "on_duty"),
    [
        (dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC), True),  # Monday 09:00 in Mexico City
        (dt.datetime(2026, 11, 23, 14, 59, tzinfo=dt.UTC), False),  # Monday 08:59 there
        (dt.datetime(2026, 11, 23, 23, 0, tzinfo=dt.UTC), False),  # Monday 17:00 there: closed
        (dt.datetime(2026, 11, 22, 18, 0, tzinfo=dt.UTC), False),  # Sunday noon there
        (dt.datetime(2026, 11, 27, 22, 59, tzinfo=dt.UTC), True),  # Friday 16:59 there
        (dt.datetime(2026, 11, 28, 2, 0, tzinfo=dt.UTC), False),  # Saturday 02:00 UTC is Friday 20:00 there
    ],
)
def test_on_duty_in_the_office_time_zone(moment: dt.datetime, on_duty: bool) -> None:
    """Hours are read in the office's time zone, start inclusive and end exclusive, weekdays only."""
    assert HOURS.on_duty(moment) is on_duty


def test_single_day_and_whole_week() -> None:
    """A single day ("sat") and the whole week parse as expected."""
    saturday = OfficeHours.parse("sat 10:00-12:00", "UTC")
    assert saturday.days == frozenset({5})
    assert OfficeHours.parse("mon-sun 00:00-23:59", "UTC").days == frozenset(range(7))
