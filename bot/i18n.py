"""Texts from the gettext catalogs (read with Babel), and dates written the way each language writes them."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from babel.dates import format_date
from babel.messages.pofile import read_po

LANGUAGES = ("es", "ht", "en")
LOCALES_DIR = Path(__file__).resolve().parents[1] / "locales"
PLACEHOLDER = re.compile(r"\{([a-z][a-z0-9_]*)\}")

#: Babel's CLDR data has no Haitian Creole dates (it falls back to French, "octobre"); Creole is written from the
#: catalog's own month names instead.
_CATALOG_DATES = frozenset({"ht"})


class MissingTexts(RuntimeError):
    """A catalog lacks keys the bot needs; raised at startup, never mid-conversation."""


class Translator:
    """Looks up keyed texts per language and fills their placeholders, formatting dates per language."""

    def __init__(self, catalogs: Mapping[str, Mapping[str, str]]) -> None:
        self._catalogs = {lang: dict(texts) for lang, texts in catalogs.items()}

    @classmethod
    def load(cls, locales_dir: Path = LOCALES_DIR, languages: Iterable[str] = LANGUAGES) -> Translator:
        catalogs: dict[str, dict[str, str]] = {}
        for lang in languages:
            path = locales_dir / lang / "LC_MESSAGES" / "messages.po"
            with path.open("rb") as handle:
                catalog = read_po(handle, locale=lang)
            catalogs[lang] = {str(m.id): str(m.string) for m in catalog if m.id and m.string and not m.fuzzy}
        return cls(catalogs)

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
        return format_date(day, format="long", locale=language)
