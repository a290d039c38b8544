"""Office hours decide whether a person is told someone answers now or when the office opens, and people read them
in their language, written from OFFICE_HOURS and OFFICE_TIMEZONE (never from fixed text)."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from bot.config import Settings
from bot.hours import BadOfficeHours, OfficeHours
from bot.i18n import LANGUAGES, Translator

HOURS = OfficeHours.parse("mon-fri 09:00-17:00", "America/Mexico_City")
NNBSP = "\u202f"  # CLDR puts a narrow no-break space between an English time and its AM/PM


@pytest.fixture(scope="module")
def tr() -> Translator:
    return Translator.load()


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


def test_single_day_whole_week_and_a_range_over_the_weekend() -> None:
    """A single day ("sat"), the whole week, and "fri-mon" (Friday, Saturday, Sunday, Monday) parse as meant."""
    assert OfficeHours.parse("sat 10:00-12:00", "UTC").days == frozenset({5})
    assert OfficeHours.parse("mon-sun 00:00-23:59", "UTC").days == frozenset(range(7))
    assert OfficeHours.parse("fri-mon 08:00-20:00", "UTC").days == frozenset({4, 5, 6, 0})
    assert OfficeHours.parse("  Mon-Fri   09:00-17:00 ", "UTC").days == frozenset(range(5))


#: Two different settings, and what each language reads for them: changing the setting changes the words.
SETTINGS = {
    ("mon-fri 09:00-17:00", "America/Mexico_City"): {
        "es": "de lunes a viernes, de 9:00 a 17:00 (hora de Ciudad de México)",
        "ht": "lendi rive vandredi, soti 9:00 rive 17:00 (lè Vil Meksik)",
        "en": f"Monday to Friday, from 9:00{NNBSP}AM to 5:00{NNBSP}PM (Mexico City time)",
    },
    ("tue-sat 08:30-14:00", "America/Bogota"): {
        "es": "de martes a sábado, de 8:30 a 14:00 (hora de Bogotá)",
        "ht": "madi rive samdi, soti 8:30 rive 14:00 (lè Bogota)",
        "en": f"Tuesday to Saturday, from 8:30{NNBSP}AM to 2:00{NNBSP}PM (Bogota time)",
    },
}


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("setting", list(SETTINGS))
def test_hours_are_written_from_the_settings(tr: Translator, setting: tuple[str, str], lang: str) -> None:
    """Days from Babel (Creole from the catalog), 24-hour times in Spanish and Creole, the zone's city by name."""
    assert OfficeHours.parse(*setting).describe(tr, lang) == SETTINGS[setting][lang]


@pytest.mark.parametrize(
    ("setting", "days", "zone"),
    [
        (("sat 10:00-12:00", "America/Port-au-Prince"), ("cada sábado", "chak samdi", "every Saturday"), "Pòtoprens"),
        (("mon-sun 07:00-19:00", "UTC"), ("todos los días", "chak jou", "every day"), None),
    ],
)
def test_one_day_and_every_day(
    tr: Translator, setting: tuple[str, str], days: tuple[str, ...], zone: str | None
) -> None:
    """One day reads "every Saturday", the whole week "every day"; a zone named after no city is named as it is."""
    hours = OfficeHours.parse(*setting)
    for lang, expected in zip(("es", "ht", "en"), days, strict=True):
        assert hours.describe(tr, lang).startswith(expected + ", ")
    assert hours.describe(tr, "ht").endswith(f"(lè {zone})" if zone else "(UTC)")


def test_creole_days_are_creole_not_french(tr: Translator) -> None:
    """All seven Creole day names come from the catalog: Babel has no Creole and would fall back to French."""
    assert [tr.weekday("ht", day) for day in range(7)] == [
        "lendi", "madi", "mèkredi", "jedi", "vandredi", "samdi", "dimanch",
    ]  # fmt: skip
    assert [tr.weekday("es", day) for day in (0, 6)] == ["lunes", "domingo"]


@pytest.mark.parametrize(
    ("hours", "zone"),
    [
        ("monday-friday 09:00-17:00", "UTC"),
        ("mon-fri 9-17", "UTC"),
        ("mon-fri 17:00-09:00", "UTC"),
        ("mon-fri 09:00-25:00", "UTC"),
        ("mon-fri 09:00-17:00", "Mexico City"),
    ],
)
def test_a_setting_that_cannot_be_read_stops_the_start(hours: str, zone: str) -> None:
    """A typo in OFFICE_HOURS or OFFICE_TIMEZONE is refused when the settings load, saying what is expected."""
    with pytest.raises(BadOfficeHours, match="OFFICE_"):
        OfficeHours.parse(hours, zone)
    with pytest.raises(ValidationError, match="OFFICE_"):
        Settings(_env_file=None, office_hours=hours, office_timezone=zone)  # type: ignore[call-arg]
