"""Texts from the gettext catalogs (read with Babel), and dates written the way each language writes them."""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import yaml
from babel.dates import format_date, format_time, get_day_names, get_timezone_location
from babel.messages.pofile import read_po

LANGUAGES = ("es", "ht", "en")
LOCALES_DIR = Path(__file__).resolve().parents[1] / "locales"
PLACEHOLDER = re.compile(r"\{([a-z][a-z0-9_]*)\}")

#: Babel's CLDR data has no Haitian Creole dates (it falls back to French, "octobre"); Creole is written from the
#: catalog's own month and day names instead, and its cities from `locales/ht/cities.yaml`.
_CATALOG_DATES = frozenset({"ht"})
#: Languages that write the time of day on a 24-hour clock ("17:00"); the others use their CLDR short format
#: ("5:00 PM").
_24_HOUR = frozenset({"es", "ht"})


class MissingTexts(RuntimeError):
    """A catalog lacks keys the bot needs; raised at startup, never mid-conversation."""


class Translator:
    """Looks up keyed texts per language and fills their placeholders, formatting dates per language."""

    def __init__(
        self, catalogs: Mapping[str, Mapping[str, str]], cities: Mapping[str, Mapping[str, str]] | None = None
    ) -> None:
        self._catalogs = {lang: dict(texts) for lang, texts in catalogs.items()}
        #: For languages without CLDR data: time zone id -> the name of its city in that language.
        self._cities = {lang: dict(names) for lang, names in (cities or {}).items()}

    @classmethod
    def load(cls, locales_dir: Path = LOCALES_DIR, languages: Iterable[str] = LANGUAGES) -> Translator:
        catalogs: dict[str, dict[str, str]] = {}
        for lang in languages:
            path = locales_dir / lang / "LC_MESSAGES" / "messages.po"
            with path.open("rb") as handle:
                catalog = read_po(handle, locale=lang)
            catalogs[lang] = {str(m.id): str(m.string) for m in catalog if m.id and m.string and not m.fuzzy}
        cities: dict[str, dict[str, str]] = {}
        for lang in _CATALOG_DATES & set(catalogs):
            path = locales_dir / lang / "cities.yaml"
            if path.exists():
                cities[lang] = {str(k): str(v) for k, v in (yaml.safe_load(path.read_text("utf-8")) or {}).items()}
        return cls(catalogs, cities)

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(self._catalogs)

    def keys(self, language: str) -> frozenset[str]:
        return frozenset(self._catalogs[language])

    def require(self, keys: Iterable[str]) -> None:
        """Fail loudly at startup if any language lacks any of these keys."""
        wanted = set(keys)
        gaps = {lang: sorted(wanted - texts.keys()) for lang, texts in self._catalogs.items()}
        gaps = {lang: missing for lang, missing in gaps.items() if missing}
        if gaps:
            raise MissingTexts(f"untranslated keys: {gaps}")

    def text(self, language: str, key: str, /, **params: object) -> str:
        template = self._catalogs[language][key]
        if not params:
            return template
        values = {
            name: self.date(language, value) if isinstance(value, dt.date) else str(value)
            for name, value in params.items()
        }
        return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)

    def date(self, language: str, day: dt.date) -> str:
        """A long date: "19 de octubre de 2022", "19 oktòb 2022", "October 19, 2022"."""
        if language in _CATALOG_DATES:
            month = self.text(language, f"date.month.{day.month}")
            return self.text(language, "date.long", day=day.day, month=month, year=day.year)
        return _babel_long_date(day, language)

    def weekday(self, language: str, day: int) -> str:
        """A day of the week (0 = Monday) as it reads mid-sentence: "lunes", "Monday", "lendi"."""
        if language in _CATALOG_DATES:
            return self.text(language, f"date.day.{day + 1}")
        return str(get_day_names("wide", context="format", locale=language)[day])

    def clock(self, language: str, time: dt.time) -> str:
        """A time of day: "17:00" in Spanish and Creole, "5:00 PM" in English."""
        if language in _CATALOG_DATES:  # no CLDR data, and nothing language-specific in "17:00" either
            return f"{time.hour}:{time.minute:02d}"
        if language in _24_HOUR:
            return format_time(time, "H:mm", locale=language)
        return format_time(time, "short", locale=language)

    def city(self, language: str, zone: str) -> str:
        """The city a time zone is named after, in `language`: "Ciudad de México", "Mexico City", "Vil Meksik".

        Without CLDR data, a city the data file does not name is written as the zone id names it ("Bogota")."""
        if language in _CATALOG_DATES:
            plain = zone.rsplit("/", 1)[-1].replace("_", " ")
            return self._cities.get(language, {}).get(zone, plain)
        return str(get_timezone_location(zone, locale=language, return_city=True))


@functools.lru_cache(maxsize=1024)
def _babel_long_date(day: dt.date, language: str) -> str:
    """Babel's long date, once per (date, language): the rules' and the cutoffs' dates are read on every result."""
    return format_date(day, format="long", locale=language)
