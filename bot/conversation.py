"""The conversation service: one person's input in, the reply out, with state saved before anything is sent.

Transport-agnostic: the Telegram handlers and the terminal chat both call `Conversation.handle`. Order per
person is the caller's job (the Telegram layer holds a per-person lock around handle-and-send).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from bot.access import Access
from bot.broadcast import Subscriptions
from bot.connect import Connector, Contact
from bot.handoff import Handoff
from bot.i18n import Translator
from bot.insights import tally
from bot.intents import (
    Answer,
    AskDelete,
    AskHuman,
    AskLanguage,
    ChooseLanguage,
    Compose,
    ConfirmDelete,
    Consent,
    ControlBroadcast,
    Decide,
    GoBack,
    Help,
    Intent,
    LeaveHandoff,
    Media,
    PickOrganisation,
    ShareWith,
    ShareWithHuman,
    ShowMyData,
    ShowOrganisations,
    ShowPrivacy,
    ShowResult,
    Start,
    StartOver,
    StopUpdates,
    Subscribe,
    SwitchProgram,
    Typed,
    Withdraw,
)
from bot.logs import hashed
from bot.outgoing import Button, Outgoing, Reply
from bot.programs import Programs
from bot.render import NextSteps, Renderer
from bot.storage import Erasure, Participant, Store
from bot.storage.stats import Count
from bot.texts import T
from flows import engine
from flows.engine import AnswerRecorded, NotCurrent, OutcomeReached, QuestionAsked
from flows.loader import Program
from flows.migrate import RulesChanged, carry_over
from flows.replies import BACK, DateProblem, Vocabulary, match_date, match_option

log = logging.getLogger(__name__)
Clock = Callable[[], dt.datetime]

#: What a person is told when the date they typed answers nothing; the question and its buttons follow.
DATE_PROBLEMS: dict[DateProblem, T] = {
    DateProblem.UNREADABLE: T.DATE_UNREADABLE,
    DateProblem.FUTURE: T.DATE_FUTURE,
    DateProblem.AMBIGUOUS: T.DATE_AMBIGUOUS,
    DateProblem.DAY_NEEDED: T.DATE_DAY_NEEDED,
}


@dataclass(frozen=True)
class Person:
    """Who wrote: Telegram's user id and the chat to answer in (the same in a private chat).

    The username and first name are only read when the person agrees to share their contact with an
    organisation; they are never stored.
    """

    user_id: int
    chat_id: int
    username: str | None = None
    first_name: str | None = None

    @property
    def contact(self) -> Contact:
        return Contact(self.user_id, self.username, self.first_name)


class Conversation:
    def __init__(
        self,
        programs: Programs,
        store: Store,
        translator: Translator,
        vocabulary: Vocabulary,
        clock: Clock,
        default_language: str = "es",
        connector: Connector | None = None,
        handoff: Handoff | None = None,
        subscriptions: Subscriptions | None = None,
        retention_days: int = 90,
        access: Access | None = None,
    ) -> None:
        self.programs = programs
        self.store = store
        self.tr = translator
        self.vocabulary = vocabulary
        self.clock = clock
        self.default_language = default_language
        self.connector = connector
        self.handoff = handoff
        self.subscriptions = subscriptions
        #: After this many days without writing, everything about a person is erased (bot.retention).
        self.retention_days = retention_days
        self.render = Renderer(translator, programs)
        #: /mydata; without the other stores (the terminal chat) it shows the profile and answers only.
        self.access = access or Access(translator, self.render, retention_days)

    @property
    def program(self) -> Program:
        """The program screened for now: read at every step, so a switch applies from the next question."""
        return self.programs.active

    async def handle(self, person: Person, intent: Intent, *, update_id: int | None = None) -> Reply:
        """Apply one input. A repeated `update_id` changes nothing (see `_where_they_are`)."""
        loaded = await self.store.load_for(person.user_id, update_id=update_id)
        if loaded.already_processed:
            log.info("duplicate update ignored", extra={"user": hashed(person.user_id)})
            return self._where_they_are(loaded.participant)
        participant = loaded.participant
        if participant is None:
            return await self._before_consent(person, intent, update_id)
        return await self._with(person, participant, intent, update_id)

    def _where_they_are(self, participant: Participant | None) -> Reply:
        """The answer to an update applied before: the question the person is at, shown again.

        Telegram delivers an update again when the worker that had it stopped before answering, perhaps after
        saving it but before its reply went out: answering nothing would leave the person looking at a question
        they already answered, waiting. So they see where they are (at worst a question twice). Outside the
        questionnaire (a result, a deletion) nothing is repeated.
        """
        if participant is None or participant.session.finished or not engine.fits(self.program, participant.session):
            return Reply()
        _, events = engine.step(self.program, participant.session, engine.Show(), self.clock().date())
        return Reply(tuple(self.render.events(participant.language, events)))

    # ------------------------------------------------------------------ before consent: nothing is stored

    async def _before_consent(self, person: Person, intent: Intent, update_id: int | None) -> Reply:
        match intent:
            case ChooseLanguage(language=lang) if lang in self.tr.languages:
                await self.store.count([Count("picked", language=lang)], self.clock())
                return Reply((self.render.privacy_notice(lang),), edit_source=self._picked(lang))
            case Consent(language=lang, accepted=True) if lang in self.tr.languages:
                now = self.clock()
                participant = Participant(
                    user_id=person.user_id,
                    chat_id=person.chat_id,
                    language=lang,
                    consented_at=now,
                    session=engine.new_session(self.program),
                )
                participant, counts = tally(None, participant, now)
                _, events = engine.step(self.program, participant.session, engine.Show(), now.date())
                if not await self.store.save(participant, previous=None, update_id=update_id, now=now, counts=counts):
                    return Reply()
                log.info("consent given", extra={"user": hashed(person.user_id), "language": lang})
                return Reply(
                    tuple(self.render.events(lang, events)),
                    edit_source=self.render.privacy_notice(lang).text,
                    # Their menu in the language they picked, from consent on: nothing is tied to a chat before.
                    menu_language=lang,
                )
            case Consent(language=lang, accepted=False) if lang in self.tr.languages:
                await self.store.count([Count("declined", language=lang)], self.clock())
                return Reply(
                    (Outgoing(self.tr.text(lang, T.PRIVACY_DECLINED)),),
                    edit_source=self.render.privacy_notice(lang).text,
                )
            case Help():
                return Reply((self._help(self.default_language),))
            case ShowPrivacy():
                return Reply(self._privacy(self.default_language))
            case AskDelete() | ConfirmDelete() | ShowMyData():
                return Reply((self._in_every_language(T.DELETE_NOTHING),))
            case StopUpdates() | Subscribe():
                return Reply((self._in_every_language(T.UPDATES_NOTHING),))
            case Start(language_hint=hint):
                known = known_language(hint, self.tr.languages)
                await self.store.count([Count("started", language=known or "")], self.clock())
                return Reply((self.render.language_picker(known),))
        # Anything else before consent (a stale button, text, a sticker): offer the languages again.
        return Reply((self.render.language_picker(None),))

    # ------------------------------------------------------------------ after consent

    async def _with(self, person: Person, participant: Participant, intent: Intent, update_id: int | None) -> Reply:
        lang = participant.language
        session = participant.session

        match intent:
            case Start() | ChooseLanguage() | Consent():
                if isinstance(intent, ChooseLanguage) and intent.language in self.tr.languages:
                    participant = replace(participant, language=intent.language)
                    lang = intent.language
                    reply = await self._step(participant, engine.Show(), update_id)
                    return Reply(
                        (Outgoing(self.tr.text(lang, T.LANG_CHANGED)), *reply.messages),
                        edit_source=self._picked(lang),
                        menu_language=lang,
                    )
                return await self._step(participant, engine.Show(), update_id)
            case AskLanguage():
                return Reply((self.render.language_picker(lang),))
            case Answer() if session.finished and engine.fits(self.program, session):
                # A button from a question of before: where their result is, not the whole result again.
                return Reply((self._after_result(participant),), toast=self.tr.text(lang, T.NOT_CURRENT))
            case Answer(question_id=q, option_id=o):
                return await self._step(participant, engine.Choose(q, o), update_id)
            case ShowResult():
                return await self._step(participant, engine.Show(), update_id, quiet=True)
            case GoBack():
                return await self._step(participant, engine.Back(), update_id)
            case StartOver():
                return await self._step(participant, engine.Restart(), update_id)
            case Typed(text=text):
                return await self._typed(participant, text, update_id)
            case Media():
                if session.finished and engine.fits(self.program, session):
                    return Reply(self._prefaced(lang, T.MEDIA, (self._after_result(participant),)))
                reply = await self._step(participant, engine.Show(), update_id, quiet=True)
                return replace(reply, messages=self._prefaced(lang, T.MEDIA, reply.messages))
            case Help():
                return Reply((self._help(lang),))
            case ShowPrivacy():
                return Reply(self._privacy(lang))
            case ShowMyData():
                return Reply(await self.access.screen(participant))
            case AskDelete():
                return Reply((self._delete_prompt(lang),))
            case ConfirmDelete(confirmed=True):
                await self.erase(participant)
                log.info("participant deleted", extra={"user": hashed(participant.user_id)})
                return replace(self._closing_delete(lang, T.DELETE_DONE), menu_cleared=True)
            case ConfirmDelete(confirmed=False):
                return self._closing_delete(lang, T.DELETE_CANCELLED)
            case ShowOrganisations() | PickOrganisation() | ShareWith() | Withdraw():
                if self.connector is None:  # the terminal chat has no directory
                    return Reply((Outgoing(self.tr.text(lang, T.ORGS_NONE)),))
                return await self.connector.handle(participant, person.contact, intent)
            case Decide():
                return Reply()  # an intake chat's button, routed to the connector by the Telegram layer
            case AskHuman() | ShareWithHuman() | LeaveHandoff():
                return await self._handoff(participant, intent, update_id)
            case StopUpdates() | Subscribe():
                return await self._updates(participant, intent)
            case Compose() | ControlBroadcast() | SwitchProgram():
                return Reply()  # admin buttons, routed to the composer by the Telegram layer
        raise TypeError(f"unhandled intent {intent!r}")

    async def erase(self, participant: Participant, why: Erasure = Erasure.ASKED) -> bool:
        """Forget the person completely: /delete, and the retention purge of people gone quiet, both come here.

        Those waiting on them are told first, while there is still something to find them by: organisations
        holding a card about them (cleared, and withdrawn if open) and staff in an open conversation (closed).
        Then the store erases every row about them in one transaction, and their conversation leaves the staff
        group. False when there was no profile left to erase.
        """
        if self.connector is not None:
            await self.connector.forget(participant, why)
        traces = await self.handoff.forget(participant) if self.handoff is not None else None
        if self.subscriptions is not None:
            self.subscriptions.left(participant.user_id)
        found = await self.store.delete(participant.user_id)
        if self.handoff is not None and traces is not None:
            await self.handoff.erased(traces, why)
        return found

    async def _handoff(
        self, participant: Participant, intent: AskHuman | ShareWithHuman | LeaveHandoff, update_id: int | None
    ) -> Reply:
        lang = participant.language
        if self.handoff is None:
            return Reply((Outgoing(self.tr.text(lang, T.HANDOFF_UNAVAILABLE)),))
        if isinstance(intent, AskHuman):
            return await self.handoff.ask(participant)
        if isinstance(intent, ShareWithHuman):
            return await self.handoff.open(participant, share_answers=intent.share)
        left = await self.handoff.leave(participant)
        where = await self._step(participant, engine.Show(), update_id, quiet=True)
        return Reply((*left.messages, *where.messages))

    async def _updates(self, participant: Participant, intent: StopUpdates | Subscribe) -> Reply:
        lang = participant.language
        if self.subscriptions is None:
            return Reply((Outgoing(self.tr.text(lang, T.UPDATES_NOTHING)),))
        if isinstance(intent, StopUpdates):
            await self.subscriptions.stop(participant.user_id, self.clock())
            log.info("updates stopped", extra={"user": hashed(participant.user_id)})
            return Reply((Outgoing(self.tr.text(lang, T.UPDATES_STOPPED)),))
        if await self.subscriptions.subscribe(participant.user_id, self.clock()):
            log.info("updates resumed", extra={"user": hashed(participant.user_id)})
            return Reply((Outgoing(self.tr.text(lang, T.UPDATES_SUBSCRIBED)),))
        return Reply((Outgoing(self.tr.text(lang, T.UPDATES_ALREADY)),))

    async def _typed(self, participant: Participant, text: str, update_id: int | None) -> Reply:
        session, lang = participant.session, participant.language
        if not engine.fits(self.program, session):
            return await self._step(participant, engine.Show(), update_id)
        if session.node is None:
            return Reply((self._after_result(participant),))
        question = self.program.questionnaire.question(session.node)
        today = self.clock().date()
        _, shown = engine.step(self.program, session, engine.Show(), today)
        asked = next(e for e in shown if isinstance(e, QuestionAsked))
        labels = [(o.id, self.render.option_label(lang, o)) for o in asked.options]
        choice = match_option(text, labels, lang, self.vocabulary) or match_date(
            text, question, lang, self.vocabulary, today
        )
        if choice == BACK:
            return await self._step(participant, engine.Back(), update_id)
        if isinstance(choice, DateProblem):
            reply = await self._step(participant, engine.Show(), update_id, quiet=True)
            return replace(reply, messages=self._prefaced(lang, DATE_PROBLEMS[choice], reply.messages))
        if choice is None:
            return await self._step(participant, engine.Unclear(), update_id, quiet=True)
        return await self._step(participant, engine.Choose(question.id, choice), update_id)

    async def _step(
        self, participant: Participant, action: engine.Action, update_id: int | None, *, quiet: bool = False
    ) -> Reply:
        """Run the engine, save before replying, and render. `quiet`: the input changes nothing to save."""
        now = self.clock()
        session = participant.session
        events: Sequence[engine.Event | RulesChanged]
        if engine.fits(self.program, session):
            session, events = engine.step(self.program, session, action, now.date())
        else:
            # The program was switched (or edited) since this person last wrote: their answers are carried over
            # to the new rules where they still mean the same, and they are told; the input itself is dropped.
            old = self.programs.get(session.program_id)
            session, events = carry_over(self.program, session, now.date(), old=old)
            log.info("session carried over", extra={"user": hashed(participant.user_id), "program": self.program.id})
        reached = next((e.verdict for e in events if isinstance(e, OutcomeReached)), None)
        outcome = reached.outcome if reached is not None else None
        changed = replace(participant, session=session, outcome=outcome if session.finished else None)
        if not quiet or changed != participant:
            reasons = [r.rule_id for r in (*reached.failed, *reached.uncertain, *reached.pending)] if reached else []
            changed, counts = tally(participant, changed, now, reasons)
            saved = await self.store.save(changed, previous=participant, update_id=update_id, now=now, counts=counts)
            if not saved:
                return Reply()
        lang = changed.language
        messages = self.render.events(lang, events)
        if any(isinstance(e, OutcomeReached) for e in events):
            if self.connector is not None and self.connector.wanted_after(changed):
                messages += await self.connector.offer(changed)
            messages.append(self.render.next_steps(lang, self._situation(changed)))
        recorded = next((e for e in events if isinstance(e, AnswerRecorded)), None)
        stale = any(isinstance(e, NotCurrent) for e in events)
        return Reply(
            tuple(messages),
            edit_source=self.render.chosen(lang, recorded) if recorded else None,
            toast=self.tr.text(lang, T.NOT_CURRENT) if stale else None,
        )

    def _situation(self, participant: Participant) -> NextSteps:
        return NextSteps(
            outcome=participant.outcome or "needs_review",
            has_supporter=participant.session.answers.get("supporter") == "yes",
            human=self.handoff is not None,
            organisations=self.connector is not None,
        )

    def _after_result(self, participant: Participant) -> Outgoing:
        """For someone who already has their result: where it is, and what they can do now."""
        return self.render.next_steps(participant.language, self._situation(participant), again=True)

    # ------------------------------------------------------------------ small screens

    def _privacy(self, lang: str) -> tuple[Outgoing, ...]:
        """/privacy: what is kept, why and who sees it; then for how long, and the person's rights (two short
        messages rather than one long one)."""
        return (
            Outgoing(self.tr.text(lang, T.PRIVACY_TEXT)),
            Outgoing(self.tr.text(lang, T.PRIVACY_RIGHTS, days=self.retention_days)),
        )

    def _help(self, lang: str) -> Outgoing:
        program = self.tr.text(lang, self.program.ruleset.program)
        return Outgoing(self.tr.text(lang, T.HELP, program=program))

    def _delete_prompt(self, lang: str) -> Outgoing:
        return Outgoing(
            self.tr.text(lang, T.DELETE_CONFIRM),
            (
                (Button(self.tr.text(lang, T.DELETE_YES), ConfirmDelete(confirmed=True)),),
                (Button(self.tr.text(lang, T.DELETE_NO), ConfirmDelete(confirmed=False)),),
            ),
        )

    def _closing_delete(self, lang: str, key: T) -> Reply:
        return Reply((Outgoing(self.tr.text(lang, key)),), edit_source=self.tr.text(lang, T.DELETE_CONFIRM))

    def _in_every_language(self, key: T) -> Outgoing:
        """A short answer to someone the bot keeps nothing about, so not even their language (after /delete, say):
        in each language, each in its own words, as the language picker does."""
        return Outgoing("\n\n".join(self.tr.text(lang, key) for lang in self.tr.languages))

    def _picked(self, lang: str) -> str:
        return f"🌐 {self.tr.text(lang, T.LANG_NAME)}"

    def _prefaced(self, lang: str, key: T, messages: tuple[Outgoing, ...]) -> tuple[Outgoing, ...]:
        notice = self.tr.text(lang, key)
        if not messages:
            return (Outgoing(notice),)
        first, *rest = messages
        return (Outgoing(f"{notice}\n\n{first.text}", first.buttons), *rest)


def known_language(language: str | None, languages: tuple[str, ...]) -> str | None:
    """Telegram's language_code ("es-MX", "fr") reduced to one we speak, or None."""
    if not language:
        return None
    base = language.split("-")[0].lower()
    return base if base in languages else None
