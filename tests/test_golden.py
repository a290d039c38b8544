"""Golden vectors: a person's answers in, the outcome and every reason out, one YAML file per path.

Each file was written by hand from ../shared/domain/program-rules.md, and runs under the program its directory is
named after (tests/golden/<program>/). `pytest --update-golden` rewrites the `expect` blocks from the engine, for a
deliberate rule change; review that diff line by line.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.app import Core
from flows import engine
from flows.engine import InfoShown, OutcomeReached, QuestionAsked
from flows.loader import PROGRAMS_DIR, Program, available_programs, load_program
from flows.model import OUTCOMES, Outcome
from flows.verdict import Verdict, evaluate

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(GOLDEN.glob("*/*.yaml"))
PROGRAMS = available_programs()

#: The outcomes each shipped program can reach; its vectors must show every one. After the termination nobody can
#: apply, so every path through chnv-terminated-2025 ends "not eligible".
REACHABLE: dict[str, set[Outcome]] = {
    "venezuela-2022": set(OUTCOMES),
    "chnv-2023": set(OUTCOMES),
    "chnv-terminated-2025": {"not_eligible"},
}

Programs = Callable[[str], Program]


@pytest.fixture(scope="session")
def programs(core: Core) -> Programs:
    """Loads a shipped program by name, checked against the catalogs as the bot checks it at startup."""
    known = {lang: core.translator.keys(lang) for lang in core.translator.languages}
    return cache(lambda name: load_program(PROGRAMS_DIR / name, known_texts=known))


def run_case(program: Program, case: dict[str, Any]) -> dict[str, Any]:
    """Answer question by question, checking each answer goes to the question actually asked."""
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
        "rules_as_of": outcome.rules_as_of,
        "info": [e.text for e in events if isinstance(e, InfoShown)],
    }


@pytest.mark.parametrize("path", CASES, ids=[f"{p.parent.name}/{p.stem}" for p in CASES])
def test_golden_vector(programs: Programs, path: Path, request: pytest.FixtureRequest) -> None:
    """Under the program its directory names, the engine reaches exactly the stated outcome, reasons, "rules as of"
    date and messages."""
    assert path.parent.name in PROGRAMS, f"{path.parent.name} is not a program under flows/programs"
    program = programs(path.parent.name)
    case = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert case["today"] >= program.ruleset.in_force_from, "`today` must be a day the ruleset is in force"
    actual = run_case(program, case)
    if request.config.getoption("--update-golden"):
        case["expect"] = actual
        path.write_text(yaml.safe_dump(case, sort_keys=False, allow_unicode=True), encoding="utf-8")
    assert actual == case["expect"], case["name"]


def test_every_program_has_its_reachable_outcomes_declared() -> None:
    """Each shipped program says which outcomes it can reach, so its coverage can be checked."""
    assert set(REACHABLE) == set(PROGRAMS)


@pytest.mark.parametrize("name", PROGRAMS)
def test_every_outcome_and_rule_has_a_vector(programs: Programs, name: str) -> None:
    """A program's vectors cover each outcome it can reach, each route and each of its rules at least once."""
    ruleset = programs(name).ruleset
    cases = [yaml.safe_load(p.read_text(encoding="utf-8")) for p in sorted((GOLDEN / name).glob("*.yaml"))]
    outcomes = {c["expect"]["outcome"] for c in cases}
    routes = {c["expect"]["route"] for c in cases} - {None}
    rules = {r for c in cases for key in ("failed", "uncertain", "pending") for r in c["expect"][key]}
    assert outcomes == REACHABLE[name]
    assert routes == {s.route for s in ruleset.scope}
    assert rules == {r.id for r in (*ruleset.scope, *ruleset.rules)}


def every_result(program: Program, today: dt.date) -> Iterator[tuple[dict[str, str], Verdict]]:
    """Every complete set of answers the questionnaire can be given, with its verdict (small questionnaires only)."""

    def walk(session: engine.Session) -> Iterator[tuple[dict[str, str], Verdict]]:
        if session.finished:
            yield dict(session.answers), evaluate(program, session.answers)
            return
        assert session.node is not None
        for option in program.questionnaire.question(session.node).options:
            moved, _ = engine.step(program, session, engine.Choose(session.node, option.id), today)
            yield from walk(moved)

    return walk(engine.new_session(program))


def test_the_terminated_processes_are_closed_whatever_the_answers(programs: Programs) -> None:
    """Every path through chnv-terminated-2025 ends "not eligible" because of the termination, and only that."""
    results = list(itertools.islice(every_result(programs("chnv-terminated-2025"), dt.date(2025, 10, 1)), 1000))
    assert len(results) == 7 * 6  # seven nationalities, six places
    for answers, verdict in results:
        assert (verdict.outcome, [r.rule_id for r in verdict.failed]) == ("not_eligible", ["TERMINATED"]), answers
