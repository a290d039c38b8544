"""/program: which rules the bot screens with, and switching them from Telegram, with the people affected told.

A switch is confirmed first, showing how many people's result would change. It is kept in the database (a restart
keeps it) and applies from the next question: people mid-questionnaire have their answers carried over (see
flows.migrate). After it, the admin is offered a broadcast to the people whose result changes, re-judged from their
stored answers, each in their own language, through the normal composer (preview, then send or schedule).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

from bot.compose import Composer
from bot.i18n import Translator
from bot.intents import SwitchProgram
from bot.logs import hashed
from bot.outgoing import Button, Outgoing, Reply
from bot.programs import Programs
from bot.storage.broadcasts import Audience, Broadcasts, Version
from bot.storage.deployment import Deployment
from bot.storage.sql import SqlStore
from bot.texts import T
from flows.loader import Program
from flows.migrate import carry_over
from flows.verdict import evaluate

log = logging.getLogger(__name__)

PROGRAM_KEY = "program"


@dataclass(frozen=True)
class Affected:
    """People with a result whose result is different under other rules, or who must answer new questions."""

    changed: tuple[int, ...]
    unfinished: tuple[int, ...]

    @property
    def everyone(self) -> tuple[int, ...]:
        return self.changed + self.unfinished


class ProgramSwitch:
    def __init__(
        self,
        programs: Programs,
        deployment: Deployment,
        people: SqlStore,
        broadcasts: Broadcasts,
        composer: Composer,
        translator: Translator,
        clock: Callable[[], dt.datetime],
    ) -> None:
        self.programs = programs
        self.deployment = deployment
        self.people = people
        self.broadcasts = broadcasts
        self.composer = composer
        self.tr = translator
        self.clock = clock

    async def restore(self) -> None:
        """At startup: the program an admin switched to last, if any (it outranks the PROGRAM setting)."""
        chosen = await self.deployment.get(PROGRAM_KEY)
        if chosen is None:
            return
        if self.programs.get(chosen) is None:
            log.warning("switched program no longer shipped", extra={"program": chosen})
            return
        self.programs.activate(chosen)
        log.info("program restored from the last switch", extra={"program": chosen})

    # ------------------------------------------------------------------ screens

    async def show(self, lang: str) -> Reply:
        active = self.programs.active
        lines = [self.tr.text(lang, T.PROGRAM_ACTIVE, line=self._line(lang, active))]
        others = [p for p in self.programs.all() if p.id != active.id]
        buttons: list[tuple[Button, ...]] = []
        if others:
            lines.append(self.tr.text(lang, T.PROGRAM_OTHERS))
            for program in others:
                lines.append(f"• {self._line(lang, program)}")
                label = self.tr.text(lang, T.PROGRAM_SWITCH_TO, program=self._name(lang, program))
                buttons.append((Button(label, SwitchProgram(program.id, "ask")),))
        return Reply((Outgoing("\n".join(lines), tuple(buttons)),))

    async def button(self, admin_id: int, lang: str, intent: SwitchProgram) -> Reply:
        target = self.programs.get(intent.program_id)
        if target is None:
            return Reply(toast=self.tr.text(lang, T.NOT_CURRENT))
        match intent.stage:
            case "ask":
                if target.id == self.programs.active.id:
                    return Reply(toast=self.tr.text(lang, T.PROGRAM_KEPT, program=self._name(lang, target)))
                affected = await self.affected(target)
                text = self.tr.text(
                    lang,
                    T.PROGRAM_CONFIRM,
                    old=self._name(lang, self.programs.active),
                    new=self._line(lang, target),
                    changed=len(affected.changed),
                    unfinished=len(affected.unfinished),
                )
                buttons = (
                    (Button(self.tr.text(lang, T.PROGRAM_YES), SwitchProgram(target.id, "do")),),
                    (Button(self.tr.text(lang, T.PROGRAM_NO), SwitchProgram(target.id, "keep")),),
                )
                return Reply((Outgoing(text, buttons),))
            case "keep":
                active = self.programs.active
                return Reply(
                    (Outgoing(self.tr.text(lang, T.PROGRAM_KEPT, program=self._name(lang, active))),),
                    edit_source=self.tr.text(lang, T.PROGRAM_ACTIVE, line=self._line(lang, active)),
                )
            case "do":
                return await self._switch(admin_id, lang, target)
            case "tell":
                return await self._tell(admin_id, lang, target)
        return Reply(toast=self.tr.text(lang, T.NOT_CURRENT))

    # ------------------------------------------------------------------ the switch and what follows

    async def _switch(self, admin_id: int, lang: str, target: Program) -> Reply:
        previous = self.programs.active
        if target.id == previous.id:
            return Reply(toast=self.tr.text(lang, T.PROGRAM_KEPT, program=self._name(lang, target)))
        await self.deployment.set(PROGRAM_KEY, target.id, by=admin_id, now=self.clock())
        self.programs.activate(target.id)
        log.info("program switched", extra={"from": previous.id, "to": target.id, "admin": hashed(admin_id)})
        affected = await self.affected(target)
        done = self.tr.text(lang, T.PROGRAM_SWITCHED, line=self._line(lang, target))
        if not affected.everyone:
            return Reply((Outgoing(f"{done}\n\n{self.tr.text(lang, T.PROGRAM_NONE_AFFECTED)}"),), edit_source=done)
        text = self.tr.text(
            lang, T.PROGRAM_AFFECTED, changed=len(affected.changed), unfinished=len(affected.unfinished)
        )
        tell = Button(
            self.tr.text(lang, T.PROGRAM_TELL, count=len(affected.everyone)), SwitchProgram(target.id, "tell")
        )
        return Reply((Outgoing(f"{done}\n\n{text}", ((tell,),)),), edit_source=done)

    async def _tell(self, admin_id: int, lang: str, target: Program) -> Reply:
        """A broadcast draft to the affected people, in each language, opened at its preview."""
        if target.id != self.programs.active.id:  # switched again since: this offer is stale
            return Reply(toast=self.tr.text(lang, T.NOT_CURRENT))
        affected = await self.affected(target)  # those who wrote since were carried over and told already
        versions = {
            code: Version(
                self.tr.text(
                    code,
                    T.PROGRAM_NOTICE,
                    program=self.tr.text(code, target.ruleset.program),
                    date=target.ruleset.as_of,
                )
            )
            for code in self.tr.languages
        }
        draft = await self.broadcasts.new_draft(admin_id, lang, "preview", self.clock())
        edited = await self.broadcasts.edit_draft(
            draft.id, versions=versions, audience=Audience(people=affected.everyone)
        )
        assert edited is not None
        return await self.composer.preview(edited)

    async def affected(self, target: Program) -> Affected:
        """Who has a result that `target` would change, judged again from their stored answers.

        People without a result yet carry on under the new rules when they next write; people already carried
        over to `target` (they wrote since the switch) were told then.
        """
        today = self.clock().date()
        changed: list[int] = []
        unfinished: list[int] = []
        for person in await self.people.everyone():
            if person.outcome is None or person.session.program_id == target.id:
                continue
            old = self.programs.get(person.session.program_id)
            moved, _ = carry_over(target, person.session, today, old=old)
            if not moved.finished:
                unfinished.append(person.user_id)
            elif evaluate(target, moved.answers).outcome != person.outcome:
                changed.append(person.user_id)
        return Affected(tuple(changed), tuple(unfinished))

    # ------------------------------------------------------------------ words

    def _name(self, lang: str, program: Program) -> str:
        return self.tr.text(lang, program.ruleset.program)

    def _line(self, lang: str, program: Program) -> str:
        ruleset = program.ruleset
        return self.tr.text(
            lang,
            T.PROGRAM_LINE,
            program=self._name(lang, program),
            as_of=self.tr.date(lang, ruleset.as_of),
            since=self.tr.date(lang, ruleset.in_force_from),
        )
