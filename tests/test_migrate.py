"""Carrying answers from one ruleset to the next (flows.migrate): keep what means the same, ask only what is new."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.app import Core
from flows import engine
from flows.engine import OutcomeReached, QuestionAsked
from flows.loader import PROGRAMS_DIR, Program, load_program
from flows.migrate import RulesChanged, carry_over
from tests.e2e.conftest import ELIGIBLE

TODAY = dt.date(2026, 11, 22)


@pytest.fixture(scope="module")
def programs() -> dict[str, Program]:
    return {name: load_program(PROGRAMS_DIR / name) for name in ("venezuela-2022", "chnv-2023", "chnv-terminated-2025")}


def answered(program: Program, pairs: list[tuple[str, str]]) -> engine.Session:
    session = engine.new_session(program)
    for question_id, option_id in pairs:
        session, _ = engine.step(program, session, engine.Choose(question_id, option_id), TODAY)
    return session


def test_an_eligible_venezuelan_keeps_what_still_means_the_same(programs: dict[str, Program]) -> None:
    """Under the 2023 rules the answers up to the first question worded differently count; that one is asked."""
    old, new = programs["venezuela-2022"], programs["chnv-2023"]
    moved, events = carry_over(new, answered(old, ELIGIBLE), TODAY, old=old)
    notice, asked = events
    assert isinstance(notice, RulesChanged)
    assert (notice.program, notice.rules_as_of) == (new.ruleset.program, new.ruleset.as_of)
    assert moved.program_id == new.id
    assert moved.history == (
        "nationality",
        "location",
        "mexico_entry",
        "mx_pa_irregular",
        "us_irregular",
        "removal_order",
        "removal_order_older",
    )
    assert all(moved.answers[q] == dict(ELIGIBLE)[q] for q in moved.history)
    assert isinstance(asked, QuestionAsked)
    assert asked.question_id == moved.node == "other_citizenship"
    assert notice.kept == 7


def test_an_answer_whose_meaning_changed_is_asked_again(programs: dict[str, Program]) -> None:
    """2022's "Guatemala, El Salvador, Honduras or Haiti" is not 2023's option of the same id: asked again."""
    old, new = programs["venezuela-2022"], programs["chnv-2023"]
    session = answered(old, [("nationality", "h2b_country")])
    assert session.finished  # another route in 2022
    moved, events = carry_over(new, session, TODAY, old=old)
    assert moved.node == "nationality"
    assert moved.answers == {}
    assert next(e for e in events if isinstance(e, QuestionAsked)).question_id == "nationality"


def test_half_way_people_are_asked_only_what_is_left(programs: dict[str, Program]) -> None:
    old, new = programs["venezuela-2022"], programs["chnv-2023"]
    session = answered(old, [("nationality", "venezuelan"), ("location", "mexico")])
    moved, _ = carry_over(new, session, TODAY, old=old)
    assert moved.history == ("nationality", "location")
    assert moved.node == "mexico_entry"  # the Venezuelans' Mexico question, as in 2022


def test_the_termination_closes_everyone(programs: dict[str, Program]) -> None:
    old, new = programs["venezuela-2022"], programs["chnv-terminated-2025"]
    moved, events = carry_over(new, answered(old, ELIGIBLE), TODAY, old=old)
    assert moved.finished
    outcome = next(e for e in events if isinstance(e, OutcomeReached))
    assert outcome.verdict.outcome == "not_eligible"
    assert outcome.rules_as_of == new.ruleset.as_of


def test_without_the_old_program_only_undated_answers_are_trusted(programs: dict[str, Program]) -> None:
    new = programs["chnv-2023"]
    session = engine.Session(
        program_id="gone-2021",
        node=None,
        answers={"nationality": "venezuelan", "location": "mexico", "mexico_entry": "before"},
        history=("nationality", "location", "mexico_entry"),
    )
    moved, _ = carry_over(new, session, TODAY, old=None)
    assert "mexico_entry" not in moved.answers  # a dated answer: its date may have meant something else
    assert moved.answers["nationality"] == "venezuelan"


def test_same_program_edited_keeps_the_answers(core: Core) -> None:
    """A session of the active program pointing at a removed question resumes on the answers it has."""
    program = core.program
    session = answered(program, [("nationality", "venezuelan")])
    broken = engine.Session(program.id, "a_question_removed_since", session.answers, session.history)
    moved, _ = carry_over(program, broken, TODAY, old=program)
    assert moved.history == ("nationality",)
    assert moved.node == session.node


@pytest.mark.parametrize("place", ["colombia", "venezuela"])
def test_being_in_colombia_or_venezuela_carries_to_every_later_ruleset(
    programs: dict[str, Program], place: str
) -> None:
    """The places added to "Where are you now?" mean the same in every ruleset, as do the "last time" questions."""
    old = programs["venezuela-2022"]
    pairs = [("nationality", "venezuelan"), ("location", place), ("mx_pa_irregular", "yes")]
    session = answered(old, [*pairs, ("mx_pa_irregular_when", "on_or_before")])
    moved, _ = carry_over(programs["chnv-2023"], session, TODAY, old=old)
    assert dict(moved.answers) == {**dict(pairs), "mx_pa_irregular_when": "on_or_before"}
    assert moved.node == "us_irregular"
    closed, _ = carry_over(programs["chnv-terminated-2025"], moved, TODAY, old=programs["chnv-2023"])
    assert closed.finished
    assert dict(closed.answers) == {"nationality": "venezuelan", "location": place}
