"""Turns engine events into messages in the person's language. No Telegram here: transports deliver the result."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.i18n import Translator
from bot.intents import Answer, AskHuman, ChooseLanguage, Consent, GoBack, ShowOrganisations, ShowResult, StartOver
from bot.outgoing import READABLE, Button, Outgoing, split_text
from bot.programs import Programs
from bot.texts import T
from flows.engine import (
    AnswerRecorded,
    AtFirstQuestion,
    Event,
    InfoShown,
    NotCurrent,
    NotUnderstood,
    OptionView,
    OutcomeReached,
    QuestionAsked,
    Restarted,
    Session,
)
from flows.loader import Program
from flows.migrate import RulesChanged
from flows.verdict import Reason

#: Notices that lead into the message after them instead of arriving alone: fewer messages on a slow network.
_PREFACES: dict[type, T] = {
    NotUnderstood: T.NOT_UNDERSTOOD,
    NotCurrent: T.NOT_CURRENT,
    AtFirstQuestion: T.AT_FIRST,
    Restarted: T.RESTARTED,
}


class Renderer:
    def __init__(self, translator: Translator, programs: Programs) -> None:
        self.tr = translator
        self.programs = programs

    @property
    def program(self) -> Program:
        """The program screened for now (it can be switched while the bot runs)."""
        return self.programs.active

    def option_label(self, language: str, option: OptionView) -> str:
        if option.date is None:
            return self.tr.text(language, option.text)
        return self.tr.text(language, option.text, date=option.date)

    def events(
        self, language: str, events: Sequence[Event | RulesChanged], *, preface: str | None = None
    ) -> list[Outgoing]:
        """Messages for the events, in order; `preface` leads into the first one."""
        out: list[Outgoing] = []
        lead = [preface] if preface else []
        joining = False
        for event in events:
            if isinstance(event, RulesChanged):
                lead.append(self.rules_changed(language, event))
                continue
            if type(event) in _PREFACES:
                lead.append(self.tr.text(language, _PREFACES[type(event)]))
                continue
            message = self._event(language, event)
            if message is None:
                continue
            if lead:
                message = Outgoing("\n\n".join([*lead, message.text]), message.buttons)
                lead = []
            if isinstance(event, InfoShown) and joining and _joinable(out[-1], message):
                # Explanations after a result share a message while it stays short: fewer messages to wait
                # for on a slow network, and fewer to pace at Telegram's one a second.
                out[-1] = Outgoing(f"{out[-1].text}\n\n{message.text}")
                continue
            out.extend(_fit(message))
            joining = isinstance(event, InfoShown)  # explanations join each other, never the verdict
        if lead:
            out.append(Outgoing("\n\n".join(lead)))
        return out

    def answers(self, language: str, session: Session) -> list[str]:
        """A person's answers as they read them, one "• question answer" line per question on their path.

        Shared with an organisation (after Share) and with staff (if the person agreed).
        """
        lines = []
        program = self.programs.get(session.program_id) or self.program
        for question_id in session.history:
            question = program.questionnaire.question(question_id)
            option = question.option(session.answers[question_id])
            if option is not None:
                label = self.option_label(language, OptionView(option.id, option.text, option.date))
                lines.append(f"• {self.tr.text(language, question.text)} {label}")
        return lines

    def rules_changed(self, language: str, event: RulesChanged) -> str:
        """The notice a person reads when their answers were carried over to new rules."""
        return self.tr.text(
            language,
            T.RULES_CHANGED,
            program=self.tr.text(language, event.program),
            date=event.rules_as_of,
        )

    def chosen(self, language: str, event: AnswerRecorded) -> str:
        """The tapped question's message once answered: its question and the answer, without buttons."""
        question = self.program.questionnaire.question(event.question_id)
        answer = self.option_label(language, event.option)
        return f"{self.tr.text(language, question.text)}\n\n{self.tr.text(language, T.ANSWER_CHOSEN, answer=answer)}"

    def _event(self, language: str, event: Event) -> Outgoing | None:
        match event:
            case QuestionAsked():
                return self._question(language, event)
            case OutcomeReached():
                return Outgoing(self._outcome(language, event))
            case InfoShown(text=key, dates=dates):
                return Outgoing(self.tr.text(language, key, **dates))
            case AnswerRecorded():
                return None  # shown by editing the question's own message, see `chosen`
        raise TypeError(f"no rendering for {event!r}")

    def _question(self, language: str, event: QuestionAsked) -> Outgoing:
        key = T.QUESTION_PROGRESS if event.left else T.QUESTION_PROGRESS_LAST
        progress = self.tr.text(language, key, number=event.number, left=event.left)
        rows: list[tuple[Button, ...]] = [
            (Button(self.option_label(language, o), Answer(event.question_id, o.id)),) for o in event.options
        ]
        if event.can_go_back:
            rows.append((Button(self.tr.text(language, T.BUTTON_BACK), GoBack()),))
        return Outgoing(f"{progress}\n\n{self.tr.text(language, event.text)}", tuple(rows))

    def _outcome(self, language: str, event: OutcomeReached) -> str:
        verdict = event.verdict
        parts = [self.tr.text(language, event.text)]

        def bullets(reasons: Sequence[Reason]) -> str:
            return "\n".join(f"• {self.tr.text(language, r.text, date=r.date)}" for r in reasons)

        if verdict.outcome == "not_eligible":
            parts.append(bullets(verdict.failed))
            if verdict.uncertain:
                parts.append(f"{self.tr.text(language, T.RESULT_UNCERTAIN)}\n{bullets(verdict.uncertain)}")
        elif verdict.outcome == "needs_review":
            parts.append(bullets(verdict.uncertain))
        if verdict.pending:
            parts.append(f"{self.tr.text(language, T.RESULT_PENDING)}\n{bullets(verdict.pending)}")
        parts.append(self.tr.text(language, T.RULES_AS_OF, date=event.rules_as_of))
        return "\n\n".join(parts)

    def next_steps(self, language: str, situation: NextSteps, *, again: bool = False) -> Outgoing:
        """The last message of a result: what the person can do now, with a button for each choice.

        `again`: said to someone who already has their result (a stale tap, a typed word): where it is, and
        a button to see it again instead of the whole result resent.
        """
        text = self.tr.text(language, T.RESULT_ABOVE if again else _NEXT_TEXTS[situation.key])
        rows: list[tuple[Button, ...]] = []
        if again:
            rows.append((Button(self.tr.text(language, T.BUTTON_RESULT), ShowResult()),))
        if situation.human:
            rows.append((Button(self.tr.text(language, T.HANDOFF_BUTTON), AskHuman()),))
        if situation.organisations:
            rows.append((Button(self.tr.text(language, T.BUTTON_ORGANISATIONS), ShowOrganisations()),))
        rows.append((Button(self.tr.text(language, T.BUTTON_RESTART), StartOver()),))
        return Outgoing(text, tuple(rows))

    # ---- screens that come before the questionnaire (no stored state yet)

    def language_picker(self, hint: str | None) -> Outgoing:
        """All three languages at once, each in its own words; Telegram's language only puts one first."""
        order = sorted(self.tr.languages, key=lambda lang: lang != hint)
        prompt = " · ".join(self.tr.text(lang, T.LANG_PROMPT) for lang in order)
        rows = tuple((Button(self.tr.text(lang, T.LANG_NAME), ChooseLanguage(lang)),) for lang in order)
        return Outgoing(f"🌐 {prompt}", rows)

    def privacy_notice(self, language: str) -> Outgoing:
        count = self.program.longest_path[self.program.questionnaire.start]
        rules = self.tr.text(language, T.RULES_AS_OF, date=self.program.ruleset.as_of)
        return Outgoing(
            f"{self.tr.text(language, T.PRIVACY_NOTICE, count=count)}\n\n{rules}",
            (
                (Button(self.tr.text(language, T.PRIVACY_ACCEPT), Consent(language, accepted=True)),),
                (Button(self.tr.text(language, T.PRIVACY_DECLINE), Consent(language, accepted=False)),),
            ),
        )


@dataclass(frozen=True)
class NextSteps:
    """What decides a result's next steps: the outcome, and what this bot can offer."""

    outcome: str
    #: Likely eligible with a supporter already: the next step is theirs to take.
    has_supporter: bool = False
    #: A staff group answers /human.
    human: bool = False
    #: A directory of organisations exists.
    organisations: bool = False

    @property
    def key(self) -> str:
        if self.outcome == "likely_eligible":
            return "likely_eligible" if self.has_supporter else "find_supporter"
        return self.outcome


#: The text of each situation's next step.
_NEXT_TEXTS: dict[str, T] = {
    "likely_eligible": T.NEXT_ELIGIBLE,
    "find_supporter": T.NEXT_FIND_SUPPORTER,
    "needs_review": T.NEXT_REVIEW,
    "not_eligible": T.NEXT_NOT_ELIGIBLE,
    "another_route": T.NEXT_ANOTHER_ROUTE,
}


def _joinable(previous: Outgoing, message: Outgoing) -> bool:
    """Whether `message` can go at the end of `previous`: both plain text, neither with buttons, still short."""
    plain = not (previous.buttons or message.buttons or previous.attachment or previous.file or message.file)
    return plain and len(previous.text) + 2 + len(message.text) <= READABLE


def _fit(message: Outgoing) -> list[Outgoing]:
    """Long texts become several messages; the buttons stay on the last one."""
    pieces = split_text(message.text)
    return [Outgoing(p) for p in pieces[:-1]] + [Outgoing(pieces[-1], message.buttons)]
