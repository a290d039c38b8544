"""Carrying a person's answers from one program (ruleset) to another, when the deployment switches programs.

Someone half-way through the 2022 questionnaire when the NGO switches to the 2023 rules should not start over,
nor be judged on answers that no longer mean the same. Their answers are replayed through the new questionnaire
from its first question: an answer is kept where the new question has an option with the same id, the same text
and the same dates as the one they picked (the same meaning), and the replay stops at the first question that has
no such answer, which is the next one they are asked. Only what the new rules add is asked; if nothing is, they
get their result under the new rules at once.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from types import MappingProxyType

from flows.engine import Event, Session, next_node, offered, shown
from flows.loader import Program
from flows.model import END, Option, Question


@dataclass(frozen=True)
class RulesChanged:
    """The person's session was carried over to another program: say so before what follows."""

    program: str
    rules_as_of: dt.date
    #: How many of their answers still count.
    kept: int


def carry_over(
    new: Program, session: Session, today: dt.date, *, old: Program | None
) -> tuple[Session, list[Event | RulesChanged]]:
    """`session` (kept under `old`, or under a program no longer shipped when None) continued under `new`."""
    kept: dict[str, str] = {}
    history: list[str] = []
    node = new.questionnaire.start
    while node != END:
        question = new.questionnaire.question(node)
        chosen = session.answers.get(node)
        option = question.option(chosen) if chosen is not None else None
        if option is None or not offered(option, today) or not _same_meaning(old, question, option):
            break
        kept[node] = option.id
        history.append(node)
        node = next_node(new, question.next_for(option), kept)
    moved = Session(new.id, None if node == END else node, MappingProxyType(kept), tuple(history))
    notice = RulesChanged(new.ruleset.program, new.ruleset.as_of, kept=len(kept))
    return moved, [notice, *shown(new, today, moved)]


def _same_meaning(old: Program | None, question: Question, option: Option) -> bool:
    """Whether an answer means the same under both programs: the same question text, the same option text and dates.

    Without the old program (it is no longer shipped) only answers without dates are trusted.
    """
    if old is None:
        return option.range is None and option.date is None
    if question.id not in old.questionnaire.index:
        return False
    before = old.questionnaire.question(question.id)
    was = before.option(option.id)
    return (
        was is not None
        and before.text == question.text
        and was.text == option.text
        and was.range == option.range
        and was.date == option.date
    )
