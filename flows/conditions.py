"""Three-valued conditions over a person's answers (Kleene logic: True, False, or None for unknown).

A condition is data, written in the questionnaire and ruleset files:

    {answer: location, is: mexico}               the answer is this option
    {answer: location, in: [mexico, panama]}     the answer is one of these options
    {answer: mexico_entry, before: 2022-10-12}   the answer's date range lies entirely before the date
    ... after / on_or_before / on_or_after       likewise, matching the legal wording exactly
    {all: [...]}, {any: [...]}, {not: {...}}     combinations

An answer the person gave as "I don't know" makes a leaf unknown; a question never asked (it did not apply
to them) makes a leaf false. A date leaf whose range straddles the date is unknown too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

Truth = bool | None


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class DateRange(_Frozen):
    """A span of days, both bounds inclusive; a missing bound is open."""

    start: dt.date | None = Field(default=None, alias="from")
    end: dt.date | None = Field(default=None, alias="to")

    @model_validator(mode="after")
    def _ordered(self) -> DateRange:
        if self.start is None and self.end is None:
            raise ValueError("a range needs `from`, `to` or both")
        if self.start and self.end and self.start > self.end:
            raise ValueError(f"range starts {self.start} after it ends {self.end}")
        return self


class AnswerFacts:
    """What a condition may know about one answer: its option id, whether it is unknown, its date range."""

    __slots__ = ("date_range", "option_id", "unknown")

    def __init__(self, option_id: str, *, unknown: bool, date_range: DateRange | None) -> None:
        self.option_id = option_id
        self.unknown = unknown
        self.date_range = date_range


#: Resolves a question id to the facts of the person's answer, or None when the question was not asked.
Lookup = Callable[[str], AnswerFacts | None]


class AnswerIs(_Frozen):
    answer: str
    is_: str = Field(alias="is")

    def evaluate(self, lookup: Lookup) -> Truth:
        facts = lookup(self.answer)
        if facts is None:
            return False
        if facts.unknown:
            return None
        return facts.option_id == self.is_

    def references(self) -> list[tuple[str, str | None]]:
        return [(self.answer, self.is_)]


class AnswerIn(_Frozen):
    answer: str
    in_: tuple[str, ...] = Field(alias="in", min_length=1)

    def evaluate(self, lookup: Lookup) -> Truth:
        facts = lookup(self.answer)
        if facts is None:
            return False
        if facts.unknown:
            return None
        return facts.option_id in self.in_

    def references(self) -> list[tuple[str, str | None]]:
        return [(self.answer, option) for option in self.in_]


DateOp = Literal["before", "after", "on_or_before", "on_or_after"]


class AnswerDate(_Frozen):
    """Compares the date range of an answer with a date, as the texts word it ("before", "after")."""

    answer: str
    before: dt.date | None = None
    after: dt.date | None = None
    on_or_before: dt.date | None = None
    on_or_after: dt.date | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> AnswerDate:
        given = [op for op in ("before", "after", "on_or_before", "on_or_after") if getattr(self, op)]
        if len(given) != 1:
            raise ValueError("a date condition takes exactly one of before, after, on_or_before, on_or_after")
        return self

    @property
    def op(self) -> tuple[DateOp, dt.date]:
        for name in ("before", "after", "on_or_before", "on_or_after"):
            value = getattr(self, name)
            if value is not None:
                return name, value
        raise AssertionError("validated to hold exactly one date")

    def evaluate(self, lookup: Lookup) -> Truth:
        facts = lookup(self.answer)
        if facts is None:
            return False
        if facts.unknown or facts.date_range is None:
            return None
        op, day = self.op
        start, end = facts.date_range.start, facts.date_range.end
        if op in ("on_or_before", "on_or_after"):
            # "on or before D" is "not after D"; "on or after D" is "not before D".
            flipped = _compare("after" if op == "on_or_before" else "before", day, start, end)
            return None if flipped is None else not flipped
        return _compare(op, day, start, end)

    def references(self) -> list[tuple[str, str | None]]:
        return [(self.answer, None)]


def _compare(op: str, day: dt.date, start: dt.date | None, end: dt.date | None) -> Truth:
    if op == "before":
        if end is not None and end < day:
            return True
        if start is not None and start >= day:
            return False
        return None
    if end is not None and end <= day:  # "after"
        return False
    if start is not None and start > day:
        return True
    return None


class All(_Frozen):
    all: tuple[Condition, ...] = Field(min_length=1)

    def evaluate(self, lookup: Lookup) -> Truth:
        results = [c.evaluate(lookup) for c in self.all]
        if any(r is False for r in results):
            return False
        return True if all(r is True for r in results) else None

    def references(self) -> list[tuple[str, str | None]]:
        return [ref for c in self.all for ref in c.references()]


class Any_(_Frozen):
    any: tuple[Condition, ...] = Field(min_length=1)

    def evaluate(self, lookup: Lookup) -> Truth:
        results = [c.evaluate(lookup) for c in self.any]
        if any(r is True for r in results):
            return True
        return False if all(r is False for r in results) else None

    def references(self) -> list[tuple[str, str | None]]:
        return [ref for c in self.any for ref in c.references()]


class Not(_Frozen):
    not_: Condition = Field(alias="not")

    def evaluate(self, lookup: Lookup) -> Truth:
        result = self.not_.evaluate(lookup)
        return None if result is None else not result

    def references(self) -> list[tuple[str, str | None]]:
        return self.not_.references()


def _condition_kind(value: Any) -> str:
    if isinstance(value, BaseModel):
        return type(value).__name__
    if isinstance(value, Mapping):
        for key, kind in (
            ("all", "All"),
            ("any", "Any_"),
            ("not", "Not"),
            ("is", "AnswerIs"),
            ("in", "AnswerIn"),
        ):
            if key in value:
                return kind
        return "AnswerDate"
    return "invalid"


Condition = Annotated[
    Annotated[AnswerIs, Tag("AnswerIs")]
    | Annotated[AnswerIn, Tag("AnswerIn")]
    | Annotated[AnswerDate, Tag("AnswerDate")]
    | Annotated[All, Tag("All")]
    | Annotated[Any_, Tag("Any_")]
    | Annotated[Not, Tag("Not")],
    Discriminator(_condition_kind),
]

for _model in (All, Any_, Not):
    _model.model_rebuild()
