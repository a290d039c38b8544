"""Property tests: any sequence of taps, typing, back and restart keeps the engine's promises."""

from __future__ import annotations

import datetime as dt
from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows import engine
from flows.engine import OutcomeReached, QuestionAsked
from flows.loader import PROGRAMS_DIR, Program, available_programs, load_program

TODAY = dt.date(2026, 11, 22)

actions = st.lists(
    st.one_of(
        st.tuples(st.just("choose"), st.integers(min_value=0, max_value=7)),
        st.tuples(st.just("stale"), st.sampled_from(["nationality", "location", "flight", "nowhere"])),
        st.just(("back", 0)),
        st.just(("restart", 0)),
        st.just(("unclear", 0)),
        st.just(("show", 0)),
    ),
    max_size=60,
)


@cache
def shipped(name: str) -> Program:
    return load_program(PROGRAMS_DIR / name)


@pytest.mark.parametrize("name", available_programs())
@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(script=actions)
def test_any_sequence_keeps_the_session_consistent(name: str, script: list[tuple[str, int | str]]) -> None:
    """In every shipped program: answers match the path taken, the screen shows a question or a result, never both."""
    program = shipped(name)
    session = engine.new_session(program)
    session, events = engine.step(program, session, engine.Show(), TODAY)
    for kind, value in script:
        asked = [e for e in events if isinstance(e, QuestionAsked)]
        if kind == "choose" and asked:
            options = asked[-1].options
            action: engine.Action = engine.Choose(asked[-1].question_id, options[hash(value) % len(options)].id)
        elif kind == "stale":
            action = engine.Choose(str(value), "yes")
        else:
            action = {"back": engine.Back(), "restart": engine.Restart(), "unclear": engine.Unclear()}.get(
                kind, engine.Show()
            )
        session, events = engine.step(program, session, action, TODAY)

        assert set(session.answers) == set(session.history)
        assert len(set(session.history)) == len(session.history)
        shown_question = any(isinstance(e, QuestionAsked) for e in events)
        shown_result = any(isinstance(e, OutcomeReached) for e in events)
        assert shown_question != shown_result
        assert shown_result == session.finished
        if not session.finished:
            assert session.node in program.questionnaire.index
            assert session.node not in session.history
