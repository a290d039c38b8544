"""The engine's moves a person makes besides answering: back, restart, stale buttons, and the date passed in."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path

from bot.app import Core
from flows import engine
from flows.engine import (
    AtFirstQuestion,
    InfoShown,
    NotCurrent,
    NotUnderstood,
    OutcomeReached,
    QuestionAsked,
    Restarted,
)
from flows.loader import Program, load_program
from flows.verdict import evaluate
from tests.e2e.conftest import ELIGIBLE

TODAY = dt.date(2026, 11, 22)


def answer_all(core: Core, *pairs: tuple[str, str], today: dt.date = TODAY) -> tuple[engine.Session, list]:
    session = engine.new_session(core.program)
    events: list = []
    for question_id, option_id in pairs:
        session, events = engine.step(core.program, session, engine.Choose(question_id, option_id), today)
    return session, events


def asked(events: list) -> QuestionAsked:
    return next(e for e in events if isinstance(e, QuestionAsked))


def test_back_forgets_the_abandoned_branch(core: Core) -> None:
    """Going back from a family member's branch to say "Venezuelan" leaves no family answer to judge."""
    session, _ = answer_all(core, ("nationality", "family"), ("family_relation", "other_relative"))
    session, _ = engine.step(core.program, session, engine.Back(), TODAY)
    session, events = engine.step(core.program, session, engine.Back(), TODAY)
    assert asked(events).question_id == "nationality"
    assert dict(session.answers) == {}
    session, events = engine.step(core.program, session, engine.Choose("nationality", "venezuelan"), TODAY)
    assert asked(events).question_id == "location"
    assert dict(session.answers) == {"nationality": "venezuelan"}


def test_back_at_first_question_says_so(core: Core) -> None:
    """Back on the first question keeps the person there and tells them why."""
    session = engine.new_session(core.program)
    _, events = engine.step(core.program, session, engine.Back(), TODAY)
    assert isinstance(events[0], AtFirstQuestion)
    assert asked(events).question_id == "nationality"


def test_back_after_the_result_reopens_the_last_question(core: Core) -> None:
    """A finished person can go back to the last question and change it."""
    session, events = answer_all(core, ("nationality", "h2b_country"))
    assert session.finished
    assert any(isinstance(e, OutcomeReached) for e in events)
    session, events = engine.step(core.program, session, engine.Back(), TODAY)
    assert session.node == "nationality"
    assert asked(events).question_id == "nationality"


def test_a_stale_button_changes_nothing(core: Core) -> None:
    """A tap on an earlier question's button leaves the answers alone and shows the current question."""
    session, _ = answer_all(core, ("nationality", "venezuelan"))
    after, events = engine.step(core.program, session, engine.Choose("nationality", "other"), TODAY)
    assert after == session
    assert isinstance(events[0], NotCurrent)
    assert asked(events).question_id == "location"


def test_unknown_option_is_not_understood(core: Core) -> None:
    """An option id the question does not have (a forged button) re-asks."""
    session = engine.new_session(core.program)
    after, events = engine.step(core.program, session, engine.Choose("nationality", "martian"), TODAY)
    assert after == session
    assert isinstance(events[0], NotUnderstood)


def test_restart_forgets_everything(core: Core) -> None:
    """Restart starts from the first question with no answers."""
    session, _ = answer_all(core, ("nationality", "venezuelan"), ("location", "mexico"))
    session, events = engine.step(core.program, session, engine.Restart(), TODAY)
    assert isinstance(events[0], Restarted)
    assert session == engine.new_session(core.program)


def test_dates_that_cannot_have_happened_yet_are_not_offered(core: Core) -> None:
    """On 15 Oct 2022 nobody can have crossed "after 19 Oct 2022": that option is not shown or accepted."""
    early = dt.date(2022, 10, 15)
    session, events = answer_all(
        core, ("nationality", "venezuelan"), ("location", "elsewhere"), ("mx_pa_irregular", "yes"), today=early
    )
    assert [o.id for o in asked(events).options] == ["on_or_before", "dont_know"]
    _, events = engine.step(core.program, session, engine.Choose("mx_pa_irregular_when", "after"), early)
    assert isinstance(events[0], NotUnderstood)
    _, later = engine.step(core.program, session, engine.Show(), dt.date(2022, 10, 20))
    assert [o.id for o in asked(later).options] == ["on_or_before", "after", "dont_know"]


def test_progress_counts_up_and_never_promises_too_few(core: Core) -> None:
    """ "Question n · N more at most": n grows by one per answer; N only falls, and never below what is left."""
    for pick in (0, -2, -1):  # first options, second-to-last ones, last ones: paths of different lengths
        session = engine.new_session(core.program)
        session, events = engine.step(core.program, session, engine.Show(), TODAY)
        seen = []
        while not session.finished:
            question = asked(events)
            seen.append((question.number, question.left))
            option = question.options[pick].id
            session, events = engine.step(core.program, session, engine.Choose(question.question_id, option), TODAY)
        numbers = [n for n, _ in seen]
        lefts = [left for _, left in seen]
        assert numbers == list(range(1, len(seen) + 1))
        assert all(left >= len(seen) - n for n, left in seen)
        assert all(later < earlier for earlier, later in itertools.pairwise(lefts))


def test_steps_are_deterministic(core: Core) -> None:
    """The same session and input give the same result, every time."""
    session, _ = answer_all(core, ("nationality", "venezuelan"))
    first = engine.step(core.program, session, engine.Choose("location", "mexico"), TODAY)
    second = engine.step(core.program, session, engine.Choose("location", "mexico"), TODAY)
    assert first == second


# ------------------------------------------------------------- conditional follow-ups and unverified rules

TINY_QUESTIONNAIRE = """
schema: 1
id: tiny
start: nationality
questions:
  - id: nationality
    text: q.nationality
    next: end
    options:
      - {id: haitian, text: opt.nationality.haitian}
      - {id: cuban, text: opt.nationality.cuban}
      - {id: dont_know, text: opt.dont_know, unknown: true}
"""

TINY_RULES = """
schema: 1
id: tiny
program: program.chnv_2023
questionnaire: questionnaire.yaml
as_of: 2023-04-27
in_force_from: 2023-01-06
sources: [{id: s, title: t, url: https://example.gov, date: 2023-01-06, grade: primary}]
dates: {}
rules:
  - {id: UNSURE, text: reason.mx1_unverified, unknown_text: unknown.b1, source: s, date: 2022-10-12,
     severity: review, fails_when: {answer: nationality, is: cuban}}
outcomes:
  likely_eligible:
    text: outcome.likely_eligible_chnv
    then: [info.safety, {text: info.h2b_haiti, if: {answer: nationality, is: haitian}}]
  not_eligible: {text: outcome.not_eligible_chnv}
  needs_review:
    text: outcome.needs_review
    then: [{text: info.h2b_haiti, if: {answer: nationality, is: haitian}}, info.safety]
  another_route: {text: outcome.another_route}
"""


def tiny_program(tmp_path: Path) -> Program:
    (tmp_path / "questionnaire.yaml").write_text(TINY_QUESTIONNAIRE, encoding="utf-8")
    (tmp_path / "rules.yaml").write_text(TINY_RULES, encoding="utf-8")
    return load_program(tmp_path)


def result(program: Program, option_id: str) -> tuple[OutcomeReached, list[str]]:
    session = engine.new_session(program)
    _, events = engine.step(program, session, engine.Choose("nationality", option_id), TODAY)
    (outcome,) = [e for e in events if isinstance(e, OutcomeReached)]
    return outcome, [e.text for e in events if isinstance(e, InfoShown)]


def test_a_conditional_message_is_shown_only_to_those_it_holds_for(tmp_path: Path) -> None:
    """A `then` item with `if` follows the result only when the person's answers make the condition true."""
    program = tiny_program(tmp_path)
    assert result(program, "haitian")[1] == ["info.safety", "info.h2b_haiti"]
    assert result(program, "cuban")[1] == ["info.safety"]


def test_an_unknown_condition_shows_no_conditional_message(tmp_path: Path) -> None:
    """ "I don't know" never unlocks a conditional message: it is shown only when the condition surely holds."""
    outcome, info = result(tiny_program(tmp_path), "dont_know")
    assert outcome.verdict.outcome == "needs_review"
    assert info == ["info.safety"]


def test_an_unverified_rule_sends_to_review_and_never_rules_out(tmp_path: Path) -> None:
    """A `severity: review` rule that would apply puts the case before a person; it is never listed as a bar."""
    outcome, _ = result(tiny_program(tmp_path), "cuban")
    verdict = outcome.verdict
    assert verdict.outcome == "needs_review"
    assert [r.rule_id for r in verdict.uncertain] == ["UNSURE"]
    assert verdict.failed == ()


def test_an_i_dont_know_is_never_stated_as_a_fact(core: Core) -> None:
    """Someone who does not know about a removal order reads that they said so, not that the US ordered them
    removed; an expired passport reads as a doubt, a missing one as the need for a valid one."""
    base = dict(ELIGIBLE)
    unknown = evaluate(core.program, {**base, "removal_order": "dont_know"})
    assert [(r.rule_id, r.text) for r in unknown.uncertain] == [("B2", "unknown.removal")]
    expired = evaluate(core.program, {**base, "passport": "expired"})
    assert [(r.rule_id, r.text) for r in expired.uncertain] == [("E4", "doubt.passport")]
    missing = evaluate(core.program, {**base, "passport": "none"})
    assert [(r.rule_id, r.text) for r in missing.failed] == [("E4", "reason.e4")]
