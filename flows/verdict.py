"""Applies a ruleset to a person's answers: which outcome, and every reason for it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from flows.conditions import AnswerFacts, Lookup
from flows.loader import Program
from flows.model import FollowUp, Outcome, Rule, ScopeRule


@dataclass(frozen=True)
class Reason:
    """One rule that decided the result, with the date the person reads beside it."""

    rule_id: str
    text: str
    date: dt.date


@dataclass(frozen=True)
class Verdict:
    """The result of a screening. Every rule that applies is kept, never only the first."""

    outcome: Outcome
    #: Rules that rule the person out (on another_route: the scope rule that sent them elsewhere).
    failed: tuple[Reason, ...] = ()
    #: Rules the answers cannot settle ("I don't know", a doubtful document): a person must look.
    uncertain: tuple[Reason, ...] = ()
    #: Steps the person can still take without being ruled out (finding a supporter).
    pending: tuple[Reason, ...] = ()
    route: str | None = None


def _reason(rule: Rule | ScopeRule, text: str | None = None) -> Reason:
    return Reason(rule_id=rule.id, text=text or rule.text, date=rule.date)


def answer_lookup(program: Program, answers: Mapping[str, str]) -> Lookup:
    """The facts conditions read: the option chosen for a question, if it was asked."""
    questionnaire = program.questionnaire

    def lookup(question_id: str) -> AnswerFacts | None:
        option_id = answers.get(question_id)
        if option_id is None:
            return None
        option = questionnaire.question(question_id).option(option_id)
        if option is None:  # an answer stored under an older questionnaire: treat as not known
            return AnswerFacts(option_id, unknown=True, date_range=None)
        return AnswerFacts(option.id, unknown=option.unknown, date_range=option.range)

    return lookup


def evaluate(program: Program, answers: Mapping[str, str]) -> Verdict:
    """Judge the answers under the program's ruleset. Pure: same answers, same verdict."""
    lookup = answer_lookup(program, answers)
    ruleset = program.ruleset

    for scope in ruleset.scope:
        if scope.when.evaluate(lookup) is True:
            return Verdict("another_route", failed=(_reason(scope),), route=scope.route)

    failed: list[Reason] = []
    pending: list[Reason] = []
    uncertain: list[Reason] = []

    def add(reasons: list[Reason], reason: Reason) -> None:
        # Two rules one "I don't know" leaves open (a bar and its exception) read the same: the person reads it once.
        if not any((r.text, r.date) == (reason.text, reason.date) for r in reasons):
            reasons.append(reason)

    for rule in ruleset.rules:
        result = rule.fails_when.evaluate(lookup)
        if result is True:
            add({"blocks": failed, "pending": pending, "review": uncertain}[rule.severity], _reason(rule))
        elif result is None:
            add(uncertain, _reason(rule, rule.unknown_text))
        elif rule.doubtful_when is not None and rule.doubtful_when.evaluate(lookup) is not False:
            add(uncertain, _reason(rule, rule.doubt_text))

    outcome: Outcome = "not_eligible" if failed else "needs_review" if uncertain else "likely_eligible"
    return Verdict(outcome, failed=tuple(failed), uncertain=tuple(uncertain), pending=tuple(pending))


def explanations(program: Program, follow_up: FollowUp, answers: Mapping[str, str]) -> tuple[str, ...]:
    """The follow-up's messages this person reads: every plain one, and each conditional one whose `if` holds."""
    lookup = answer_lookup(program, answers)
    return tuple(e.text for e in follow_up.then if e.if_ is None or e.if_.evaluate(lookup) is True)
