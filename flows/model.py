"""The shapes of the data files: a questionnaire and the dated ruleset that judges its answers.

Pydantic checks each file's shape (unknown keys are errors, so a typo never passes silently); the graph and
cross-file checks live in ``flows.loader``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from flows.conditions import Condition, DateRange

SCHEMA_VERSION = 1
END = "end"

Outcome = Literal["likely_eligible", "not_eligible", "needs_review", "another_route"]
OUTCOMES: tuple[Outcome, ...] = ("likely_eligible", "not_eligible", "needs_review", "another_route")


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Branch(_Frozen):
    """One way out of a question: taken when `if` holds (or always, without `if`)."""

    if_: Condition | None = Field(default=None, alias="if")
    goto: str


Next = str | tuple[Branch, ...]


class Option(_Frozen):
    id: str = Field(pattern=r"^[a-z0-9_]{1,24}$")
    text: str
    unknown: bool = False
    range: DateRange | None = None
    date: dt.date | None = None
    next: Next | None = None


class Question(_Frozen):
    id: str = Field(pattern=r"^[a-z0-9_]{1,24}$")
    text: str
    options: tuple[Option, ...] = Field(min_length=2, max_length=8)
    next: Next | None = None

    def option(self, option_id: str) -> Option | None:
        return next((o for o in self.options if o.id == option_id), None)

    def next_for(self, option: Option) -> Next:
        """Where the option leads: its own `next`, else the question's (the loader ensures one exists)."""
        target = option.next if option.next is not None else self.next
        assert target is not None, f"{self.id}.{option.id} has no next (the loader should have refused it)"
        return target


class Questionnaire(_Frozen):
    schema_: int = Field(alias="schema")
    id: str
    start: str
    questions: tuple[Question, ...] = Field(min_length=1)

    def question(self, question_id: str) -> Question:
        return self.index[question_id]

    @cached_property
    def index(self) -> Mapping[str, Question]:
        return {q.id: q for q in self.questions}


class Source(_Frozen):
    id: str
    title: str
    url: str
    date: dt.date
    grade: Literal["primary", "secondary"]
    #: False where the domain brief only reports what the source says ("reportedly [S]") and nobody has checked it:
    #: a rule citing it may send a case to a person (`severity: review`), never rule anyone out (the loader checks).
    #: Strict, so a quoted "false" is refused rather than read as true.
    verified: bool = Field(default=True, strict=True)


class ScopeRule(_Frozen):
    """Ends the screening with another route: the program is not for this person."""

    id: str
    when: Condition
    route: str
    text: str
    source: str
    date: dt.date


class Rule(_Frozen):
    """A bar or a criterion; it fails when `fails_when` holds."""

    id: str
    #: What the person reads when the rule rules them out (or, `pending`, the step still to take).
    text: str
    source: str
    date: dt.date
    fails_when: Condition
    doubtful_when: Condition | None = None
    #: What they read when an "I don't know" leaves the rule open: that they said they do not know, and that a
    #: person should check. Never the `text`, which would state as a fact what they did not say. Required where
    #: the rule reads a question that offers "I don't know" (the loader checks).
    unknown_text: str | None = None
    #: What they read when `doubtful_when` holds (an expired passport): required with `doubtful_when`.
    doubt_text: str | None = None
    #: blocks: the person is ruled out. pending: a step still to take (the outcome stays likely eligible).
    #: review: the rule itself is not verified for this ruleset, so it is never stated as fact: where it would
    #: rule the person out, a person must look instead (needs review).
    severity: Literal["blocks", "pending", "review"] = "blocks"


class Explanation(_Frozen):
    """One message after a result; with `if`, only for people whose answers make it hold (unknown: not shown)."""

    text: str
    if_: Condition | None = Field(default=None, alias="if")


class FollowUp(_Frozen):
    """The text that announces a result and the explanations that follow it, one message each."""

    text: str
    #: A plain key is shown to everyone; `{text: key, if: condition}` only to those the condition holds for.
    then: tuple[Explanation, ...] = ()

    @field_validator("then", mode="before")
    @classmethod
    def _plain_keys(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return tuple({"text": item} if isinstance(item, str) else item for item in value)
        return value


class Ruleset(_Frozen):
    schema_: int = Field(alias="schema")
    id: str
    program: str
    questionnaire: str
    as_of: dt.date
    in_force_from: dt.date
    sources: tuple[Source, ...] = Field(min_length=1)
    dates: dict[str, dt.date]
    scope: tuple[ScopeRule, ...] = ()
    rules: tuple[Rule, ...] = Field(min_length=1)
    outcomes: dict[Outcome, FollowUp]
    routes: dict[str, FollowUp] = {}
