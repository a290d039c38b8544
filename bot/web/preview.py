"""The preview: the questionnaire in a browser, through the same conversation service as Telegram.

Each browser session gets a sandbox of its own: a `MemoryStore` (nobody's real data, gone with the sandbox), its
own choice of program, and the transcript so far. Sandboxes are bounded: at most `cap` live at once (the least
recently used makes room) and one idle for `idle` is dropped.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.conversation import Conversation, Person
from bot.i18n import Translator
from bot.intents import ChooseLanguage, Intent, Typed, command_intent
from bot.outgoing import Button, Reply
from bot.programs import Programs
from bot.storage import MemoryStore
from flows.engine import OptionView
from flows.loader import Program
from flows.replies import Vocabulary
from flows.verdict import Reason, Verdict, evaluate

#: The one person of every sandbox: ids mean nothing in a store of one.
PERSON = Person(user_id=1, chat_id=1)
#: Bubbles a sandbox keeps (the oldest go first): a whole questionnaire, several times over, and a bounded page.
MAX_LINES = 400


@dataclass
class Line:
    """One bubble of the chat: the bot's message (with its buttons, by index into `Sandbox.buttons`) or the
    tester's input."""

    who: str  # "bot" or "you"
    text: str
    rows: list[list[tuple[int, str]]] = field(default_factory=list)
    #: Its buttons can still be tapped (the latest reply's); older keyboards are shown greyed.
    live: bool = False


@dataclass(frozen=True)
class AnswerShown:
    question: str
    answer: str


@dataclass(frozen=True)
class Decision:
    """Which rules decided the result, for the side panel."""

    outcome: str
    failed: tuple[tuple[str, str], ...]
    uncertain: tuple[tuple[str, str], ...]
    pending: tuple[tuple[str, str], ...]


class Sandbox:
    def __init__(
        self,
        program: Program,
        all_programs: list[Program],
        translator: Translator,
        vocabulary: Vocabulary,
        clock: Callable[[], dt.datetime],
        language: str,
    ) -> None:
        self.store = MemoryStore()
        # Its own Programs, the chosen one active: the tester's choice changes nothing for anyone else.
        self.programs = Programs(all_programs, program.id)
        self.tr = translator
        self.conversation = Conversation(
            self.programs, self.store, translator, vocabulary, clock=clock, default_language=language
        )
        self.lines: list[Line] = []
        self.buttons: list[Button] = []
        self.lock = asyncio.Lock()
        self.touched = time.monotonic()

    @property
    def program(self) -> Program:
        return self.programs.active

    async def start(self, language: str) -> None:
        await self._apply(ChooseLanguage(language), echo=None)

    async def tap(self, index: int) -> None:
        if not 0 <= index < len(self.buttons):
            return  # a stale page's button: nothing happens, as with an old Telegram keyboard
        button = self.buttons[index]
        await self._apply(button.intent, echo=f"[{button.label}]")

    async def type(self, text: str) -> None:
        text = text.strip()[:4096]
        if not text:
            return
        intent: Intent = (command_intent(text) or Typed(text)) if text.startswith("/") else Typed(text)
        await self._apply(intent, echo=text)

    async def language(self, language: str) -> None:
        await self._apply(ChooseLanguage(language), echo=f"[{self.tr.text(language, 'lang.name')}]")

    async def _apply(self, intent: Intent, echo: str | None) -> None:
        reply = await self.conversation.handle(PERSON, intent)
        self._show(reply, echo)

    def _show(self, reply: Reply, echo: str | None) -> None:
        if reply.edit_source:  # Telegram edits the tapped message: its text changes and its keyboard goes
            tapped = next((line for line in reversed(self.lines) if line.live), None)
            if tapped is not None:
                tapped.text = reply.edit_source
                tapped.rows = []
        for line in self.lines:
            line.live = False
        if echo is not None:
            self.lines.append(Line("you", echo))
        elif reply.toast:
            self.lines.append(Line("you", f"({reply.toast})"))
        if any(message.buttons for message in reply.messages):
            self.buttons = []
        for message in reply.messages:
            text = message.text
            if message.attachment is not None:
                text = f"{text}\n[{message.attachment.filename}]"
            rows: list[list[tuple[int, str]]] = []
            for row in message.buttons:
                shown = []
                for button in row:
                    self.buttons.append(button)
                    shown.append((len(self.buttons) - 1, button.label))
                rows.append(shown)
            self.lines.append(Line("bot", text, rows, live=bool(rows)))
        del self.lines[:-MAX_LINES]

    async def language_now(self) -> str:
        participant = await self.store.load(PERSON.user_id)
        return participant.language if participant else self.conversation.default_language

    async def answers(self) -> list[AnswerShown]:
        """The answers so far, in the order given, in the sandbox's language."""
        participant = await self.store.load(PERSON.user_id)
        if participant is None:
            return []
        lang, session = participant.language, participant.session
        questionnaire = self.program.questionnaire
        shown = []
        for question_id in session.history:
            if question_id not in questionnaire.index:
                continue
            question = questionnaire.question(question_id)
            option_id = session.answers.get(question_id, "")
            option = question.option(option_id)
            if option is None:  # an answer the questionnaire no longer offers: its id is all there is
                answer = option_id
            else:
                answer = self.conversation.render.option_label(lang, OptionView(option.id, option.text, option.date))
            shown.append(AnswerShown(self.tr.text(lang, question.text), answer))
        return shown

    async def decision(self) -> Decision | None:
        """The rules behind the result, once the questionnaire is finished."""
        participant = await self.store.load(PERSON.user_id)
        if participant is None or not participant.session.finished:
            return None
        lang = participant.language
        verdict: Verdict = evaluate(self.program, participant.session.answers)

        def reasons(found: tuple[Reason, ...]) -> tuple[tuple[str, str], ...]:
            return tuple((r.rule_id, self.tr.text(lang, r.text, date=r.date)) for r in found)

        return Decision(
            self.tr.text(lang, f"result.label.{verdict.outcome}"),
            reasons(verdict.failed),
            reasons(verdict.uncertain),
            reasons(verdict.pending),
        )

    def transcript(self) -> str:
        out = [f"Puente preview · program {self.program.id}", ""]
        for line in self.lines:
            prefix = "BOT" if line.who == "bot" else "YOU"
            out.append(f"{prefix}: {line.text}")
            for row in line.rows:
                out.append("      " + " | ".join(f"[{label}]" for _, label in row))
            out.append("")
        return "\n".join(out)


class Sandboxes:
    def __init__(
        self,
        programs: Programs,
        translator: Translator,
        vocabulary: Vocabulary,
        clock: Callable[[], dt.datetime],
        *,
        cap: int = 200,
        idle: float = 1800.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.programs = programs
        self.tr = translator
        self.vocabulary = vocabulary
        self.clock = clock
        self.cap = cap
        self.idle = idle
        self.monotonic = monotonic
        self._live: OrderedDict[str, Sandbox] = OrderedDict()

    def __len__(self) -> int:
        return len(self._live)

    def get(self, sid: str) -> Sandbox | None:
        self._expire()
        sandbox = self._live.get(sid)
        if sandbox is not None:
            sandbox.touched = self.monotonic()
            self._live.move_to_end(sid)
        return sandbox

    async def open(self, sid: str, program_id: str, language: str) -> Sandbox:
        """A fresh sandbox for this session (any earlier one is dropped), started in `language`."""
        self._expire()
        self._live.pop(sid, None)
        while len(self._live) >= self.cap:
            self._live.popitem(last=False)
        program = self.programs.get(program_id) or self.programs.active
        sandbox = Sandbox(program, self.programs.all(), self.tr, self.vocabulary, self.clock, language)
        sandbox.touched = self.monotonic()
        self._live[sid] = sandbox
        async with sandbox.lock:
            await sandbox.start(language)
        return sandbox

    def _expire(self) -> None:
        limit = self.monotonic() - self.idle
        while self._live:
            sid, oldest = next(iter(self._live.items()))
            if oldest.touched >= limit:
                break
            del self._live[sid]
