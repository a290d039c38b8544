"""Office hours: when someone is on duty (OFFICE_HOURS in OFFICE_TIMEZONE), and how people read it in their language.

The setting is the only source: "mon-fri 09:00-17:00" in America/Mexico_City reads "de lunes a viernes, de 9:00 a
17:00 (hora de Ciudad de México)", "Monday to Friday, from 9:00 AM to 5:00 PM (Mexico City time)" and "lendi rive
vandredi, soti 9:00 rive 17:00 (lè Vil Meksik)", so changing it changes what people are told.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.texts import T

if TYPE_CHECKING:
    from bot.i18n import Translator

DAY_CODES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DIGEST_SHAPE = re.compile(r"(?P<day>[a-z]{3}) (?P<time>\d{2}:\d{2})")
_SHAPE = re.compile(r"(?P<first>[a-z]{3})(?:-(?P<last>[a-z]{3}))? (?P<start>\d{2}:\d{2})-(?P<end>\d{2}:\d{2})")


class BadOfficeHours(ValueError):
    """OFFICE_HOURS or OFFICE_TIMEZONE cannot be read; the message says what is expected."""


@dataclass(frozen=True)
class OfficeHours:
    """When someone is on duty: from day `first` to day `last` (0 = Monday; "fri-mon" wraps over the weekend),
    from `start` (inclusive) to `end` (exclusive) on each of those days, in `zone`."""

    first: int
    last: int
    start: dt.time
    end: dt.time
    zone: ZoneInfo

    @classmethod
    def parse(cls, text: str, zone: str) -> OfficeHours:
        """Read "mon-fri 09:00-17:00" (or one day, "sat 10:00-12:00") and an IANA zone such as "America/Bogota"."""
        shape = _SHAPE.fullmatch(" ".join(text.lower().split()))
        if shape is None or shape["first"] not in DAY_CODES or (shape["last"] or "mon") not in DAY_CODES:
            raise BadOfficeHours(f"OFFICE_HOURS {text!r}: write days and hours like 'mon-fri 09:00-17:00'")
        try:
            start, end = dt.time.fromisoformat(shape["start"]), dt.time.fromisoformat(shape["end"])
        except ValueError:
            raise BadOfficeHours(f"OFFICE_HOURS {text!r}: hours are 00:00 to 23:59") from None
        if start >= end:
            raise BadOfficeHours(f"OFFICE_HOURS {text!r}: the office must open before it closes")
        try:
            where = ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise BadOfficeHours(f"OFFICE_TIMEZONE {zone!r}: use a time zone name like 'America/Mexico_City'") from None
        first = DAY_CODES.index(shape["first"])
        last = DAY_CODES.index(shape["last"] or shape["first"])
        return cls(first, last, start, end, where)

    @property
    def days(self) -> frozenset[int]:
        """The weekdays on duty (0 = Monday)."""
        return frozenset((self.first + n) % 7 for n in range((self.last - self.first) % 7 + 1))

    def on_duty(self, moment: dt.datetime) -> bool:
        local = moment.astimezone(self.zone)
        return local.weekday() in self.days and self.start <= local.time() < self.end

    def describe(self, tr: Translator, language: str) -> str:
        """The hours in words, as `handoff.hours` puts them: days, times and the zone's city, all in `language`."""
        if len(self.days) == 7:
            days = tr.text(language, T.HOURS_EVERY_DAY)
        elif self.first == self.last:
            days = tr.text(language, T.HOURS_ONE_DAY, day=tr.weekday(language, self.first))
        else:
            days = tr.text(
                language, T.HOURS_DAYS, first=tr.weekday(language, self.first), last=tr.weekday(language, self.last)
            )
        return tr.text(
            language,
            T.HANDOFF_HOURS,
            days=days,
            start=tr.clock(language, self.start),
            end=tr.clock(language, self.end),
            zone=self._zone_words(tr, language),
        )

    def _zone_words(self, tr: Translator, language: str) -> str:
        """ "hora de Bogotá", "Bogota time", "lè Bogota"; a zone named after no city ("UTC", "Etc/GMT+5") as it is."""
        key = self.zone.key
        if "/" not in key or key.startswith("Etc/"):
            return key.removeprefix("Etc/")
        return tr.text(language, T.HOURS_ZONE, city=tr.city(language, key))


class BadDigestTime(ValueError):
    """STATS_DIGEST cannot be read; the message says what is expected."""


@dataclass(frozen=True)
class DigestTime:
    """When the digest is due each week: `weekday` (0 = Monday) at `at`, in `zone`."""

    weekday: int
    at: dt.time
    zone: ZoneInfo

    @classmethod
    def parse(cls, text: str, zone: ZoneInfo) -> DigestTime:
        """Read "mon 09:00" (a day and a time of day)."""
        shape = _DIGEST_SHAPE.fullmatch(" ".join(text.lower().split()))
        if shape is None or shape["day"] not in DAY_CODES:
            raise BadDigestTime(f"STATS_DIGEST {text!r}: write a day and a time like 'mon 09:00', or leave it empty")
        try:
            at = dt.time.fromisoformat(shape["time"])
        except ValueError:
            raise BadDigestTime(f"STATS_DIGEST {text!r}: the time is 00:00 to 23:59") from None
        return cls(DAY_CODES.index(shape["day"]), at, zone)

    def due(self, now: dt.datetime) -> str | None:
        """The ISO week ("2026-W49") whose digest is due at `now`, or None before this week's hour."""
        local = now.astimezone(self.zone)
        monday = local.date() - dt.timedelta(days=local.weekday())
        slot = dt.datetime.combine(monday + dt.timedelta(days=self.weekday), self.at, tzinfo=self.zone)
        if local < slot:
            return None
        year, week, _ = local.date().isocalendar()
        return f"{year}-W{week:02d}"
