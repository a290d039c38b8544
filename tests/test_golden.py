"""Golden vectors: a person's answers in, the outcome and every reason out, one YAML file per path.

Each file was written by hand from ../shared/domain/program-rules.md. `pytest --update-golden` rewrites the
`expect` blocks from the engine, for a deliberate rule change; review that diff line by line.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.app import Core
from flows import engine
from flows.engine import InfoShown, OutcomeReached, QuestionAsked

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(GOLDEN.glob("*/*.yaml"))


def run_case(core: Core, case: dict[str, Any]) -> dict[str, Any]:
    """Answer question by question, checking each answer goes to the question actually asked."""
    program = core.program
    today: dt.date = case["today"]
    session = engine.new_session(program)
    session, events = engine.step(program, session, engine.Show(), today)
    for answer in case["answers"]:
        ((question_id, option_id),) = answer.items()
        asked = [e for e in events if isinstance(e, QuestionAsked)]
        assert asked, f"the questionnaire ended before {question_id!r} was asked"
        assert asked[-1].question_id == question_id, f"asked {asked[-1].question_id!r}, vector answers {question_id!r}"
        session, events = engine.step(program, session, engine.Choose(question_id, str(option_id)), today)
    assert session.finished, f"still waiting on {session.node!r} after the last answer"
    (outcome,) = [e for e in events if isinstance(e, OutcomeReached)]
    verdict = outcome.verdict
    return {
        "outcome": verdict.outcome,
        "failed": [r.rule_id for r in verdict.failed],
        "uncertain": [r.rule_id for r in verdict.uncertain],
        "pending": [r.rule_id for r in verdict.pending],
        "route": verdict.route,
        "info": [e.text for e in events if isinstance(e, InfoShown)],
    }


@pytest.mark.parametrize("path", CASES, ids=[f"{p.parent.name}/{p.stem}" for p in CASES])
def test_golden_vector(core: Core, path: Path, request: pytest.FixtureRequest) -> None:
    """The engine reaches exactly the outcome, reasons and explanations the vector states."""
    case = yaml.safe_load(path.read_text(encoding="utf-8"))
    actual = run_case(core, case)
    if request.config.getoption("--update-golden"):
        case["expect"] = actual
        path.write_text(yaml.safe_dump(case, sort_keys=False, allow_unicode=True), encoding="utf-8")
    assert actual == case["expect"], case["name"]


def test_every_outcome_and_rule_has_a_vector() -> None:
    """The vectors cover each outcome, each route and each rule of the ruleset at least once."""
    cases = [yaml.safe_load(p.read_text(encoding="utf-8")) for p in CASES]
    outcomes = {c["expect"]["outcome"] for c in cases}
    routes = {c["expect"]["route"] for c in cases} - {None}
    rules = {r for c in cases for key in ("failed", "uncertain", "pending") for r in c["expect"][key]}
    assert outcomes == {"likely_eligible", "not_eligible", "needs_review", "another_route"}
    assert routes == {"inside_us", "h2b", "not_covered"}
    assert {"E1", "E2", "E3", "E4", "E5", "E6", "B1", "B2", "B3", "B4", "MX1", "H2B"} <= rules
