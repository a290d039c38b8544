"""Free text to an option id, per language, in one place (buttons carry ids and never need this).

Typed dates are read here too, with plain Python and the month names in words.yaml rather than Babel: flows/ stays
free of anything but pure modules, Babel's date parser reads digits only (not "15 octubre 2022"), and its CLDR
data has no Creole. A date question's options are date ranges, so a typed date picks the option whose range holds
it, exactly as a tap would ("19 October 2022" is "on or before 19 October 2022").
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from flows.model import Question

WORDS_FILE = Path(__file__).parent / "words.yaml"
BACK = "back"


def normalize(text: str) -> str:
    """Fold case, accents, punctuation and spacing: "¡Sí!" and "si" read the same."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    letters = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w\s]", " ", letters).split())


@dataclass(frozen=True)
class Vocabulary:
    """Per language, normalized typed word -> option id (or ``back``), and month name -> month number."""

    words: Mapping[str, Mapping[str, str]]
    months: Mapping[str, Mapping[str, int]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path = WORDS_FILE) -> Vocabulary:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(raw, dict) or raw.pop("schema", None) != 1:
            raise ValueError(f"{path}: expected `schema: 1` and a mapping of languages")
        month_names: Any = raw.pop("months", {})
        words: dict[str, dict[str, str]] = {}
        for language, meanings in raw.items():
            table: dict[str, str] = {}
            for meaning, spellings in meanings.items():
                for spelling in spellings:
                    key = normalize(str(spelling))
                    if table.get(key, meaning) != meaning:
                        raise ValueError(f"{path}: '{spelling}' means both {table[key]} and {meaning} in {language}")
                    table[key] = meaning
            words[language] = table
        months: dict[str, dict[str, int]] = {}
        for language, names in month_names.items():
            if sorted(names) != list(range(1, 13)):
                raise ValueError(f"{path}: months.{language} must name the months 1 to 12")
            by_name: dict[str, int] = {}
            for number, spellings in names.items():
                for spelling in spellings:
                    key = normalize(str(spelling))
                    if by_name.get(key, number) != number:
                        raise ValueError(f"{path}: '{spelling}' is two months in {language}")
                    by_name[key] = number
            months[language] = by_name
        return cls(words, months)

    def meaning(self, text: str, language: str) -> str | None:
        """What the text means in the person's language, else in the others when they all agree."""
        key = normalize(text)
        own = self.words.get(language, {}).get(key)
        if own is not None:
            return own
        others = {table[key] for lang, table in self.words.items() if lang != language and key in table}
        return others.pop() if len(others) == 1 else None

    def month(self, word: str, language: str) -> int | None:
        """The month a (normalized) word names in the person's language, else in the others when they agree."""
        own = self.months.get(language, {}).get(word)
        if own is not None:
            return own
        others = {table[word] for lang, table in self.months.items() if lang != language and word in table}
        return others.pop() if len(others) == 1 else None


def match_option(text: str, options: Sequence[tuple[str, str]], language: str, vocabulary: Vocabulary) -> str | None:
    """The option id a typed reply stands for, ``BACK``, or None. `options` are (id, label) as shown."""
    key = normalize(text)
    if not key:
        return None
    if key.isdigit():
        index = int(key) - 1
        return options[index][0] if 0 <= index < len(options) else None
    by_label = [oid for oid, label in options if normalize(label) == key]
    if len(by_label) == 1:
        return by_label[0]
    meaning = vocabulary.meaning(text, language)
    ids = {oid for oid, _ in options}
    if meaning == BACK or meaning in ids:
        return meaning
    if len(key) >= 3:
        prefixed = [oid for oid, label in options if normalize(label).startswith(key)]
        if len(prefixed) == 1:
            return prefixed[0]
    return None


# ------------------------------------------------------------------------------------------ typed dates


class DateProblem(StrEnum):
    """Why a typed date picks no option; the host re-asks with the buttons and says which."""

    #: It looks like a date but names no day that exists, or has no year ("31/02/2022", "15 octubre").
    UNREADABLE = "unreadable"
    #: A day still to come: nobody can have crossed then.
    FUTURE = "future"
    #: In English, "05/10/2022" is May 10 or 5 October, and the two fall in different options.
    AMBIGUOUS = "ambiguous"
    #: A month and year ("octubre 2022") with the cutoff inside that month: the day decides.
    DAY_NEEDED = "day_needed"


#: Languages that write the day first in numeric dates (15/10/2022). English is read both ways (see `_numeric`).
DAY_FIRST = frozenset({"es", "ht"})
#: Little words around a date that carry nothing: "15 de octubre de 2022", "the 15th of October", "nan 15 oktòb".
_FILLERS = frozenset({"de", "del", "el", "en", "of", "the", "on", "in", "nan", "le"})
_NUMBER = re.compile(r"^(\d{1,4})(?:st|nd|rd|th|ro|do|er|o|a)?$")
_OLDEST_YEAR = 1900


@dataclass(frozen=True)
class _Span:
    """The days a typed date may mean: one day, or a whole month when no day was given."""

    start: dt.date
    end: dt.date


def is_date_question(question: Question) -> bool:
    """Whether the question's options are date ranges, so a typed date can answer it."""
    return any(o.range is not None for o in question.options)


def match_date(
    text: str, question: Question, language: str, vocabulary: Vocabulary, today: dt.date
) -> str | DateProblem | None:
    """The option of a date question that a typed date falls in, why none, or None when the text is no date.

    Day-first in Spanish and Creole ("5/10/2022" is 5 October); where that reading cannot be a date, the other
    one is the only sense left ("10/15/2022"). English is read both ways, and when both are real days they must
    fall in the same option, else the person is asked again. Days after `today` are never answers.
    """
    if not is_date_question(question):
        return None
    tokens = [t for t in normalize(text).split() if t not in _FILLERS]
    kinds = [_kind(t, language, vocabulary) for t in tokens]
    if not any(k is not None or any(c.isdigit() for c in t) for t, k in zip(tokens, kinds, strict=True)):
        return None  # no digit and no month name: not an attempt at a date
    spans = _spans(kinds, language, today)
    if spans is None or not spans:
        return DateProblem.UNREADABLE
    past = [_Span(s.start, min(s.end, today)) for s in spans if s.start <= today]
    if not past:
        return DateProblem.FUTURE
    chosen = {_containing(question, span) for span in past}
    if len(chosen) > 1:
        return DateProblem.AMBIGUOUS
    (option,) = chosen
    if option is not None:
        return option
    return DateProblem.DAY_NEEDED if past[0].start != past[0].end else DateProblem.UNREADABLE


def _kind(token: str, language: str, vocabulary: Vocabulary) -> int | tuple[str, int] | None:
    """A number (as typed: its digit count matters for years), ("month", n) for a month name, else None."""
    number = _NUMBER.match(token)
    if number:
        return int(number.group(1)) if len(number.group(1)) != 3 else None
    month = vocabulary.month(token, language)
    return ("month", month) if month is not None else None


def _spans(kinds: list[int | tuple[str, int] | None], language: str, today: dt.date) -> list[_Span] | None:
    """Every reading of the tokens as a date; None when they are not a date's shape."""
    shape, values = "", []
    for k in kinds:
        if k is None:
            return None
        shape += "M" if isinstance(k, tuple) else "N"
        values.append(k[1] if isinstance(k, tuple) else k)
    match shape:
        case "NNN" if values[0] > 999:  # ISO: 2022-10-15
            return _days([(values[0], values[1], values[2])])
        case "NNN":
            year = _year(values[2], today)
            return None if year is None else _days(_numeric(values[0], values[1], year, language))
        case "NMN":  # 15 octubre 2022
            year = _year(values[2], today)
            return None if year is None else _days([(year, values[1], values[0])])
        case "MNN":  # October 15, 2022
            year = _year(values[2], today)
            return None if year is None else _days([(year, values[0], values[1])])
        case "MN" | "NM" | "NN":  # octubre 2022, 10/2022; a day and month without the year are not enough
            month, number = (values[1], values[0]) if shape == "NM" else (values[0], values[1])
            if number < 1000 or (shape == "NN" and month > 12):
                return None
            return _month(number, month)
    return None


def _numeric(first: int, second: int, year: int, language: str) -> list[tuple[int, int, int]]:
    """The (year, month, day) a numeric date can mean in this language."""
    day_first, month_first = (year, second, first), (year, first, second)
    if language in DAY_FIRST:
        return [day_first] if _real(*day_first) else [month_first]
    return list(dict.fromkeys(r for r in (month_first, day_first) if _real(*r)))


def _year(value: int, today: dt.date) -> int | None:
    """A four-digit year as written; two digits are this century unless that is still to come ("15/10/99")."""
    if value < 100:
        value += 2000 if 2000 + value <= today.year else 1900
    return value if value >= _OLDEST_YEAR else None


def _real(year: int, month: int, day: int) -> bool:
    return _OLDEST_YEAR <= year < dt.MAXYEAR and 1 <= month <= 12 and 1 <= day <= _month_length(year, month)


def _month_length(year: int, month: int) -> int:
    following = dt.date(year + month // 12, month % 12 + 1, 1)
    return (following - dt.timedelta(days=1)).day


def _days(readings: list[tuple[int, int, int]]) -> list[_Span]:
    days = [dt.date(*r) for r in readings if _real(*r)]
    return [_Span(d, d) for d in days]


def _month(year: int, month: int) -> list[_Span] | None:
    if not _real(year, month, 1):
        return None
    return [_Span(dt.date(year, month, 1), dt.date(year, month, _month_length(year, month)))]


def _containing(question: Question, span: _Span) -> str | None:
    """The option whose date range holds every day of the span (ranges are inclusive, open where unbounded)."""
    for option in question.options:
        r = option.range
        if r is not None and (r.start is None or r.start <= span.start) and (r.end is None or span.end <= r.end):
            return option.id
    return None
