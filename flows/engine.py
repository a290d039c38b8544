"""The questionnaire engine: ``step(program, session, action)`` returns the new session and what happened.

The host (the Telegram bot, the terminal chat, the tests) persists the session, renders the events and sends
them; the engine never does either. Sessions keep only answers on the path actually taken, so a person who
goes back and changes an answer is never judged on a branch they left.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from flows.loader import Program
from flows.model import END, Next, Option
from flows.verdict import Verdict, answer_lookup, evaluate, explanations

# --------------------------------------------------------------------------------------------------- state


@dataclass(frozen=True)
class Session:
    """Where one person is in one program: the question on screen and the answers on the path to it."""

    program_id: str
    #: The question waiting for an answer; None once the questionnaire is over.
    node: str | None
    #: Question id -> option id, only for questions in `history`.
    answers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    #: Questions answered, in order: what Back walks through.
    history: tuple[str, ...] = ()

    @property
    def finished(self) -> bool:
        return self.node is None


def new_session(program: Program) -> Session:
    return Session(program_id=program.id, node=program.questionnaire.start)


def fits(program: Program, session: Session) -> bool:
    """Whether a stored session can go on under this program: same program, every question it names still there.

    A deployment may switch programs or edit a questionnaire while people are mid-way; a session that no longer
    fits must start over rather than point at a question that is gone.
    """
    questions = program.questionnaire.index
    return (
        session.program_id == program.id
        and (session.node is None or session.node in questions)
        and all(q in questions for q in session.history)
    )


# --------------------------------------------------------------------------------------------------- input


@dataclass(frozen=True)
class Show:
    """Show the person where they are: the current question, or the result when finished (resume, /start)."""


@dataclass(frozen=True)
class Choose:
    """An option picked for a question, from a button (the id travels in the callback data) or typed text."""

    question_id: str
    option_id: str


@dataclass(frozen=True)
class Back:
    """Go to the previous question and answer it again."""


@dataclass(frozen=True)
class Restart:
    """Forget the answers and start from the first question."""


@dataclass(frozen=True)
class Unclear:
    """Something the host could not map to an option (text, a sticker, a photo): re-ask."""


Action = Show | Choose | Back | Restart | Unclear


# -------------------------------------------------------------------------------------------------- events


@dataclass(frozen=True)
class OptionView:
    id: str
    text: str
    #: Fills {date} in the option's text.
    date: dt.date | None = None


@dataclass(frozen=True)
class QuestionAsked:
    question_id: str
    text: str
    options: tuple[OptionView, ...]
    #: 1-based position on the path taken, and the most questions that can still follow this one: "Question 3 ·
    #: 9 more at most". A total ("3 of 15") would jump whenever an answer skips questions; this only counts down.
    number: int
    left: int
    can_go_back: bool


@dataclass(frozen=True)
class AnswerRecorded:
    question_id: str
    option: OptionView


@dataclass(frozen=True)
class NotUnderstood:
    """The input did not answer the question; the question follows again."""

    question_id: str


@dataclass(frozen=True)
class NotCurrent:
    """A button from a question that is no longer on screen (an old message); where they are follows."""

    question_id: str


@dataclass(frozen=True)
class AtFirstQuestion:
    """Back was asked at the first question; it follows again."""


@dataclass(frozen=True)
class Restarted:
    """The answers were forgotten; the first question follows."""


@dataclass(frozen=True)
class OutcomeReached:
    verdict: Verdict
    #: Gettext key of the announcement (the outcome's, or the route's for another_route).
    text: str
    program: str
    #: The ruleset's date: the person always reads "rules as of <date>".
    rules_as_of: dt.date


@dataclass(frozen=True)
class InfoShown:
    """One explanation after a result (air-only route, cutoff dates, safety), one message each."""

    text: str
    dates: Mapping[str, dt.date]


Event = (
    QuestionAsked
    | AnswerRecorded
    | NotUnderstood
    | NotCurrent
    | AtFirstQuestion
    | Restarted
    | OutcomeReached
    | InfoShown
)


# ---------------------------------------------------------------------------------------------------- step


def step(program: Program, session: Session, action: Action, today: dt.date) -> tuple[Session, list[Event]]:
    """Apply one action on the given day. Pure and deterministic: the host passes the date; no I/O here.

    The date matters where time does: a date option that cannot have happened yet ("after 19 October 2022",
    asked on 15 October 2022) is not offered.
    """
    if session.program_id != program.id:
        raise ValueError(f"session belongs to program {session.program_id!r}, not {program.id!r}")

    match action:
        case Show():
            return session, shown(program, today, session)
        case Restart():
            fresh = new_session(program)
            return fresh, [Restarted(), *shown(program, today, fresh)]
        case Back():
            if not session.history:
                return session, [AtFirstQuestion(), *shown(program, today, session)]
            previous = session.history[-1]
            answers = {q: o for q, o in session.answers.items() if q != previous}
            moved = Session(program.id, previous, MappingProxyType(answers), session.history[:-1])
            return moved, shown(program, today, moved)
        case Unclear():
            if session.finished:
                return session, shown(program, today, session)
            assert session.node is not None
            return session, [NotUnderstood(session.node), *shown(program, today, session)]
        case Choose(question_id=question_id, option_id=option_id):
            return _choose(program, today, session, question_id, option_id)
    raise TypeError(f"unknown action {action!r}")


def _choose(
    program: Program, today: dt.date, session: Session, question_id: str, option_id: str
) -> tuple[Session, list[Event]]:
    if session.node != question_id:
        return session, [NotCurrent(question_id), *shown(program, today, session)]
    question = program.questionnaire.question(question_id)
    option = question.option(option_id)
    if option is None or not offered(option, today):
        return session, [NotUnderstood(question_id), *shown(program, today, session)]

    answers = {**session.answers, question_id: option_id}
    following = next_node(program, question.next_for(option), answers)
    moved = Session(
        program.id,
        None if following == END else following,
        MappingProxyType(answers),
        (*session.history, question_id),
    )
    recorded = AnswerRecorded(question_id, OptionView(option.id, option.text, option.date))
    return moved, [recorded, *shown(program, today, moved)]


def next_node(program: Program, nxt: Next, answers: Mapping[str, str]) -> str:
    """Where a question's `next` leads with these answers: the first branch whose condition holds."""
    if isinstance(nxt, str):
        return nxt
    lookup = answer_lookup(program, answers)
    for branch in nxt:
        # An unknown branch condition is not taken: branches route, they do not judge.
        if branch.if_ is None or branch.if_.evaluate(lookup) is True:
            return branch.goto
    raise AssertionError("the loader guarantees a last branch without `if`")


def shown(program: Program, today: dt.date, session: Session) -> list[Event]:
    """What the person sees at this point of the session: the question it waits on, or the result."""
    if session.node is None:
        return _conclude(program, session)
    question = program.questionnaire.question(session.node)
    number = len(session.history) + 1
    return [
        QuestionAsked(
            question_id=question.id,
            text=question.text,
            options=tuple(OptionView(o.id, o.text, o.date) for o in question.options if offered(o, today)),
            number=number,
            left=program.longest_path[question.id] - 1,
            can_go_back=bool(session.history),
        )
    ]


def offered(option: Option, today: dt.date) -> bool:
    """Whether an option can be chosen today: one about a date still to come is not offered yet."""
    return option.range is None or option.range.start is None or option.range.start <= today


def _conclude(program: Program, session: Session) -> list[Event]:
    ruleset = program.ruleset
    verdict = evaluate(program, session.answers)
    follow_up = ruleset.routes[verdict.route] if verdict.route is not None else ruleset.outcomes[verdict.outcome]
    dates = MappingProxyType(dict(ruleset.dates))
    return [
        OutcomeReached(verdict, follow_up.text, ruleset.program, ruleset.as_of),
        *(InfoShown(key, dates) for key in explanations(program, follow_up, session.answers)),
    ]
