"""Every catalog string with its three translations side by side, and what a translator should look at: a missing
or fuzzy translation, or one longer than a person reads comfortably on a phone (bot.outgoing.READABLE)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from babel.messages.pofile import read_po

from bot.i18n import LANGUAGES, LOCALES_DIR
from bot.outgoing import READABLE


@dataclass(frozen=True)
class Cell:
    text: str
    missing: bool
    fuzzy: bool
    too_long: bool

    @property
    def flagged(self) -> bool:
        return self.missing or self.fuzzy or self.too_long


@dataclass(frozen=True)
class Row:
    key: str
    cells: dict[str, Cell]

    @property
    def flagged(self) -> bool:
        return any(cell.flagged for cell in self.cells.values())


def review(locales_dir: Path = LOCALES_DIR, languages: tuple[str, ...] = LANGUAGES) -> list[Row]:
    """One row per key of any catalog, in key order."""
    found: dict[str, dict[str, tuple[str, bool]]] = {}
    for lang in languages:
        with (locales_dir / lang / "LC_MESSAGES" / "messages.po").open("rb") as handle:
            catalog = read_po(handle, locale=lang)
        for message in catalog:
            if message.id:
                found.setdefault(str(message.id), {})[lang] = (str(message.string or ""), bool(message.fuzzy))
    rows = []
    for key in sorted(found):
        cells = {}
        for lang in languages:
            text, fuzzy = found[key].get(lang, ("", False))
            cells[lang] = Cell(text, missing=not text.strip(), fuzzy=fuzzy, too_long=len(text) > READABLE)
        rows.append(Row(key, cells))
    return rows
