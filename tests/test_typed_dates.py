"""Typed dates answer date questions: the option whose range holds the day, or a reason to ask again."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flows.loader import PROGRAMS_DIR, Program, load_program
from flows.model import Question
from flows.replies import DateProblem, Vocabulary, is_date_question, match_date

TODAY = dt.date(2026, 5, 1)


@pytest.fixture(scope="module")
def vocabulary() -> Vocabulary:
    return Vocabulary.load()


@pytest.fixture(scope="module")
def program() -> Program:
    return load_program(PROGRAMS_DIR / "venezuela-2022")


@pytest.fixture(scope="module")
def irregular_when(program: Program) -> Question:
    """Cutoff 19 October 2022: on_or_before (to 19 Oct), after (from 20 Oct)."""
    return program.questionnaire.question("mx_pa_irregular_when")


@pytest.fixture(scope="module")
def mexico_entry(program: Program) -> Question:
    """Cutoff 12 October 2022: before (to 11 Oct), on_or_after (from 12 Oct)."""
    return program.questionnaire.question("mexico_entry")


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("15/10/2022", "es"),
        ("15-10-2022", "es"),
        ("15.10.22", "es"),
        ("15 octubre 2022", "es"),
        ("15 de octubre de 2022", "es"),
        ("15 de Octubre del 2022", "es"),
        ("octubre 15, 2022", "es"),
        ("15 oct 2022", "es"),
        ("15/10/2022", "ht"),
        ("15 oktòb 2022", "ht"),
        ("15 oktob 2022", "ht"),
        ("15 octobre 2022", "ht"),  # French, as many Haitians write it
        ("October 15, 2022", "en"),
        ("15 October 2022", "en"),
        ("the 15th of October 2022", "en"),
        ("Oct 15 2022", "en"),
        ("15/10/2022", "en"),  # 15 cannot be a month: only one reading
        ("10/15/2022", "en"),
        ("10/15/2022", "es"),  # day-first is impossible, so the only sense left
        ("2022-10-15", "es"),
        ("15 octubre 2022", "ht"),  # another language's month names, where they name one month only
    ],
)
def test_the_same_day_written_many_ways(
    vocabulary: Vocabulary, irregular_when: Question, mexico_entry: Question, text: str, language: str
) -> None:
    """15 October 2022 is on or before the 19 October cutoff, and on or after the 12 October one."""
    assert match_date(text, irregular_when, language, vocabulary, TODAY) == "on_or_before"
    assert match_date(text, mexico_entry, language, vocabulary, TODAY) == "on_or_after"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("19/10/2022", "on_or_before"),  # the cutoff day itself: "on or before", as the Federal Register words it
        ("20/10/2022", "after"),
        ("11/10/2022", "on_or_before"),
        ("1/1/2015", "on_or_before"),
        ("noviembre 2022", "after"),  # a whole month on one side of the cutoff is enough
        ("septiembre 2022", "on_or_before"),
        ("10/2022", DateProblem.DAY_NEEDED),  # October 2022 holds the cutoff: the day decides
        ("octubre 2022", DateProblem.DAY_NEEDED),
    ],
)
def test_boundaries_and_months(vocabulary: Vocabulary, irregular_when: Question, text: str, expected: object) -> None:
    """Bounds are inclusive and come from the option ranges; a month answers only when it is all on one side."""
    assert match_date(text, irregular_when, "es", vocabulary, TODAY) == expected


def test_the_mexico_cutoff_day_is_on_or_after(vocabulary: Vocabulary, mexico_entry: Question) -> None:
    """Arriving on 12 October 2022 is "on or after" that day (MX1), the 11th is "before"."""
    assert match_date("12 octubre 2022", mexico_entry, "es", vocabulary, TODAY) == "on_or_after"
    assert match_date("11 octubre 2022", mexico_entry, "es", vocabulary, TODAY) == "before"


@pytest.mark.parametrize(
    ("text", "language", "expected"),
    [
        ("11/10/2022", "en", DateProblem.AMBIGUOUS),  # November 10 (on or after) or 11 October (before)
        ("05/10/2022", "en", "before"),  # May 10 or 5 October: both before the 12 October cutoff
        ("11/10/2022", "es", "before"),  # day-first: 11 October
        ("11/10/2022", "ht", "before"),
    ],
)
def test_english_numeric_dates_both_ways(
    vocabulary: Vocabulary, mexico_entry: Question, text: str, language: str, expected: object
) -> None:
    """English reads a numeric date both ways; when the readings fall in different options, it asks again."""
    assert match_date(text, mexico_entry, language, vocabulary, TODAY) == expected


def test_a_reading_in_the_future_is_no_reading(vocabulary: Vocabulary, mexico_entry: Question) -> None:
    """In English on 20 May 2026, "05/10/2026" can only be May 10: 5 October has not come yet."""
    today = dt.date(2026, 5, 20)
    assert match_date("05/10/2026", mexico_entry, "en", vocabulary, today) == "on_or_after"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("15/10/2030", DateProblem.FUTURE),
        ("2 mayo 2026", DateProblem.FUTURE),  # tomorrow
        ("junio 2026", DateProblem.FUTURE),
        ("31/02/2022", DateProblem.UNREADABLE),
        ("32/10/2022", DateProblem.UNREADABLE),
        ("15/13/2022", DateProblem.UNREADABLE),  # neither reading is a day
        ("15 octubre", DateProblem.UNREADABLE),  # no year
        ("15/10", DateProblem.UNREADABLE),
        ("15/10/1850", DateProblem.UNREADABLE),
        ("15102022", DateProblem.UNREADABLE),
        ("15 octubre 2022 creo", DateProblem.UNREADABLE),
        ("99999999999999999999/1/2022", DateProblem.UNREADABLE),
        ("hace dos años", None),  # not an attempt at a date: the usual "did not understand"
        ("banana", None),
        ("", None),
    ],
)
def test_what_is_asked_again(vocabulary: Vocabulary, irregular_when: Question, text: str, expected: object) -> None:
    """Future days, days that do not exist and dates without a year are refused, each with its reason."""
    assert match_date(text, irregular_when, "es", vocabulary, TODAY) == expected


def test_today_is_not_the_future(vocabulary: Vocabulary, mexico_entry: Question) -> None:
    """A date question can be answered with today's date."""
    assert match_date("1/5/2026", mexico_entry, "es", vocabulary, TODAY) == "on_or_after"


def test_only_date_questions_read_dates(vocabulary: Vocabulary, program: Program) -> None:
    """A question without date ranges never takes a typed date."""
    location = program.questionnaire.question("location")
    assert not is_date_question(location)
    assert match_date("15/10/2022", location, "es", vocabulary, TODAY) is None
    assert is_date_question(program.questionnaire.question("us_irregular_when"))


def test_every_language_names_twelve_months(vocabulary: Vocabulary) -> None:
    """Each language's month table covers 1 to 12, and Creole's has the glossary's names."""
    for language in ("es", "ht", "en"):
        assert set(vocabulary.months[language].values()) == set(range(1, 13))
    creole = ["janvye", "fevriye", "mas", "avril", "me", "jen", "jiye", "out", "septanm", "oktob", "novanm", "desanm"]
    assert [vocabulary.months["ht"][name] for name in creole] == list(range(1, 13))


@given(text=st.text(alphabet=st.sampled_from("0123456789/-. ,aeiouoctubrjnvyèò"), max_size=30) | st.text(max_size=30))
def test_any_text_gives_an_option_a_reason_or_nothing(text: str) -> None:
    """Whatever is typed, reading it as a date never fails: an option of the question, a DateProblem, or None."""
    question = MEXICO_ENTRY
    for language in ("es", "ht", "en"):
        result = match_date(text, question, language, VOCABULARY, TODAY)
        assert result is None or isinstance(result, DateProblem) or question.option(result) is not None


VOCABULARY = Vocabulary.load()
MEXICO_ENTRY = load_program(PROGRAMS_DIR / "venezuela-2022").questionnaire.question("mexico_entry")
