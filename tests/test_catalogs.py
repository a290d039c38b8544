"""Every user-facing text exists in es, ht and en, complete, unfuzzy, with the same placeholders; dates read right."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from bot.app import Core
from bot.i18n import LANGUAGES, LOCALES_DIR, PLACEHOLDER, Translator
from bot.intents import Answer
from bot.outgoing import MAX_TEXT, READABLE
from bot.telegram.callbacks import pack
from bot.texts import COMMANDS, transport_keys
from flows.loader import PROGRAMS_DIR, Program, available_programs, load_program

#: Every shipped program, not only the active one: a deployment may switch to any of them.
PROGRAMS: list[Program] = [load_program(PROGRAMS_DIR / name) for name in available_programs()]


def catalog(lang: str):  # type: ignore[no-untyped-def]
    with (LOCALES_DIR / lang / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return read_po(handle, locale=lang)


def needed_keys(core: Core) -> set[str]:
    return transport_keys() | core.program.text_keys() | {k for p in PROGRAMS for k in p.text_keys()}


@pytest.mark.parametrize("lang", LANGUAGES)
def test_catalog_complete_and_not_fuzzy(core: Core, lang: str) -> None:
    """Each catalog translates every key the bot and the program use, none fuzzy or empty."""
    messages = {m.id: m for m in catalog(lang) if m.id}
    missing = sorted(needed_keys(core) - messages.keys())
    fuzzy = sorted(k for k, m in messages.items() if m.fuzzy)
    empty = sorted(k for k, m in messages.items() if not m.string)
    assert (missing, fuzzy, empty) == ([], [], [])


@pytest.mark.parametrize("lang", ["es", "ht"])
def test_placeholders_match_english(lang: str) -> None:
    """A translation uses exactly the English placeholders, each as often."""
    english = {m.id: m.string for m in catalog("en") if m.id}
    mismatched = [
        key
        for key, text in ((m.id, m.string) for m in catalog(lang) if m.id)
        if Counter(PLACEHOLDER.findall(text)) != Counter(PLACEHOLDER.findall(english.get(key, "")))
    ]
    assert mismatched == []


def test_no_orphan_keys(core: Core) -> None:
    """Catalogs hold no key that nothing uses (a renamed key would leave a stale one behind)."""
    assert {m.id for m in catalog("en") if m.id} - needed_keys(core) == set()


@pytest.mark.parametrize(
    ("lang", "expected"),
    [("ht", "19 oktòb 2022"), ("es", "19 de octubre de 2022"), ("en", "October 19, 2022")],
)
def test_long_dates(core: Core, lang: str, expected: str) -> None:
    """Dates read as each language writes them; Creole uses Creole month names, never French ones."""
    assert core.translator.date(lang, dt.date(2022, 10, 19)) == expected


def test_creole_months_are_creole(core: Core) -> None:
    """All twelve Creole months come from the glossary, not from Babel's French fallback."""
    months = [core.translator.date("ht", dt.date(2022, m, 1)).split()[1] for m in range(1, 13)]
    assert months == [
        "janvye",
        "fevriye",
        "mas",
        "avril",
        "me",
        "jen",
        "jiyè",
        "out",
        "septanm",
        "oktòb",
        "novanm",
        "desanm",
    ]


def test_every_text_fits_a_message_and_every_button_its_limits(core: Core) -> None:
    """Every text fills all its placeholders and fits Telegram's 4096 characters; callback data fits 64 bytes."""
    names = {name for m in catalog("en") if m.id for name in PLACEHOLDER.findall(str(m.string))}
    dated = {*core.program.ruleset.dates, *(d for p in PROGRAMS for d in p.ruleset.dates), "date", "since"}
    # Dates where texts take dates; elsewhere a value as long as it gets (an organisation's name is up to 80).
    params: dict[str, object] = {name: dt.date(2022, 12, 31) if name in dated else "X" * 80 for name in names}
    params["problem"] = "p" * 300
    for lang in LANGUAGES:
        for key in needed_keys(core):
            text = core.translator.text(lang, key, **params)
            assert len(text) <= MAX_TEXT, (lang, key)
            assert not PLACEHOLDER.search(text), (lang, key, text)  # every placeholder filled

    for program in PROGRAMS:
        for question in program.questionnaire.questions:
            for option in question.options:
                assert len(pack(Answer(question.id, option.id)).encode()) <= 64


def test_translator_refuses_gaps(tmp_path: Path) -> None:
    """A catalog missing a required key fails at startup, naming the language and key."""
    translator = Translator({"es": {"a": "A"}, "en": {"a": "A", "b": "B"}})
    with pytest.raises(RuntimeError, match=r"es.*'b'"):
        translator.require({"a", "b"})


@pytest.mark.parametrize("lang", LANGUAGES)
def test_no_text_is_longer_than_a_phone_screen(lang: str) -> None:
    """No catalog text is over READABLE (700) characters: about what a small phone shows without scrolling far."""
    long = {m.id: len(m.string) for m in catalog(lang) if m.id and len(m.string) > READABLE}
    assert long == {}


#: Texts only staff and admins read: they name staff and admin commands, which are not in people's menu.
STAFF_KEYS = ("admin.", "staff.", "bc.", "stats.")


@pytest.mark.parametrize("lang", LANGUAGES)
def test_commands_named_to_people_are_in_their_menu(lang: str) -> None:
    """Every /command a person reads in their language is one registered in the command menu (COMMANDS)."""
    named = {
        (m.id, command)
        for m in catalog(lang)
        if m.id and not m.id.startswith(STAFF_KEYS)
        for command in re.findall(r"(?<![\w/])/([a-z_]+)", m.string)
    }
    assert sorted((key, command) for key, command in named if command not in COMMANDS) == []
