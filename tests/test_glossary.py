"""The catalogs speak the project's glossary: a word `locales/glossary.yaml` marks as wrong for a language appears
in none of that language's texts (see ../shared/domain/glossary.md for the words to use)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from babel.messages.pofile import read_po

from bot.i18n import LANGUAGES, LOCALES_DIR

GLOSSARY = LOCALES_DIR / "glossary.yaml"


@dataclass(frozen=True)
class Wrong:
    pattern: re.Pattern[str]
    use: str
    why: str


def glossary() -> dict[str, list[Wrong]]:
    data = yaml.safe_load(GLOSSARY.read_text(encoding="utf-8"))
    return {
        lang: [
            Wrong(re.compile(rf"(?<![\w/])(?:{entry['wrong']})(?!\w)", re.IGNORECASE), entry["use"], entry["why"])
            for entry in entries
        ]
        for lang, entries in data.items()
    }


def texts(lang: str, locales: Path = LOCALES_DIR) -> dict[str, str]:
    with (locales / lang / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return {str(m.id): str(m.string) for m in read_po(handle) if m.id}


def misused(lang: str, catalog: dict[str, str], words: list[Wrong]) -> list[str]:
    return [
        f"{key}: “{found.group(0)}” ({wrong.why}) → {wrong.use}"
        for key, text in catalog.items()
        for wrong in words
        for found in wrong.pattern.finditer(text)
    ]


def test_the_glossary_covers_only_languages_we_speak() -> None:
    assert set(glossary()) <= set(LANGUAGES)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_no_catalog_text_uses_a_word_the_glossary_marks_wrong(lang: str) -> None:
    problems = misused(lang, texts(lang), glossary().get(lang, []))
    assert not problems, f"{lang}: {len(problems)} text(s) use a word the glossary marks wrong:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    ("lang", "text", "found"),
    [
        ("ht", "Yo ka ba w yon pèmi pou 2 an.", True),
        ("ht", "Apre sa, ou ka mande yon pèmi travay.", False),  # the work permit is right
        ("ht", "Ou bezwen yon sipòtè.", False),
        ("ht", "Ou bezwen yon sipò.", True),
        ("ht", "Difizyon an pwograme.", False),  # "scheduled" is not "program"
        ("es", "Puedes aplicar desde tu país.", True),
        ("es", "La aplicación CBP One es gratis.", False),  # the app is not the verb
        ("es", "un permiso de permanencia temporal (“parole”)", False),
        ("es", "tu permiso puede haber terminado", True),
        ("es", "Familiar de un venezolano", True),
        ("es", "usa /program para cambiar", False),  # a command name is no word
    ],
)
def test_the_check_tells_right_from_wrong(lang: str, text: str, found: bool) -> None:
    """The patterns catch the mistakes and spare the right words next to them (so the check can fail, and
    only for cause)."""
    assert bool(misused(lang, {"key": text}, glossary()[lang])) is found
