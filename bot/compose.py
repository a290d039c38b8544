"""The admin's broadcast composer: /broadcast walks through the message, its audience, a preview, and when to send.

Steps (the draft's `step`, kept in the database so a restart loses nothing):

1. ``version:<lang>`` for each language: the admin sends the message (a text, or a photo or document with a
   caption) or skips that language;
2. ``fallback``: when a language was skipped, which version its speakers get instead;
3. ``audience`` (and ``filter:<dimension>`` while picking a value): filters, with the number of people now;
4. ``preview``: each version exactly as people will get it, the count per language, then Send now or Schedule;
5. ``schedule``: the admin writes a date and time ("2026-12-01 09:00", optionally a time zone after it).

Only admins get here (checked by the caller when the command or button arrives); a button is only ever read
against the draft of the admin who taps it, so it cannot reach someone else's broadcast.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from bot.i18n import Translator
from bot.intents import Compose, ControlBroadcast
from bot.outgoing import MAX_CAPTION, MAX_TEXT, Button, FileRef, Outgoing, Reply
from bot.programs import Programs
from bot.render import Renderer
from bot.storage.broadcasts import (
    ANSWER_DIMENSIONS,
    Audience,
    Broadcast,
    Broadcasts,
    BroadcastStatus,
    Version,
)
from bot.storage.referrals import Status as ReferralStatus
from bot.texts import T
from flows.engine import OptionView
from flows.model import OUTCOMES

#: The audience's dimensions, in the order the composer offers them.
DIMENSIONS = ("language", "outcome", "nationality", "country", "referral", "handoff")

_WHEN = re.compile(r"^\s*(\d{4}-\d{2}-\d{2})[ T](\d{1,2}:\d{2}(?::\d{2})?)\s*(\S+)?\s*$")


@dataclass(frozen=True)
class Draftable:
    """What an admin sent while composing: its text as Telegram HTML, its visible length, and any file."""

    html: str | None
    length: int
    file: FileRef | None = None


class Composer:
    def __init__(
        self,
        broadcasts: Broadcasts,
        translator: Translator,
        programs: Programs,
        clock: Callable[[], dt.datetime],
        *,
        timezone: str,
        on_submit: Callable[[], None] = lambda: None,
    ) -> None:
        self.broadcasts = broadcasts
        self.tr = translator
        self.render = Renderer(translator, programs)
        self.clock = clock
        self.timezone = timezone
        self.on_submit = on_submit

    # ------------------------------------------------------------------ entry points

    async def start(self, admin_id: int, lang: str) -> Reply:
        """/broadcast: a new draft (an unfinished one is dropped), asking for the first language's message."""
        first = self.tr.languages[0]
        draft = await self.broadcasts.new_draft(admin_id, lang, f"version:{first}", self.clock())
        return Reply((Outgoing(self.tr.text(lang, T.BC_START)), self._ask_version(draft, first)))

    async def waiting_for_message(self, admin_id: int) -> Broadcast | None:
        """The admin's draft if it waits for a message from them (a version or a date), else None."""
        draft = await self.broadcasts.draft_of(admin_id)
        if draft is None or draft.step is None:
            return None
        return draft if draft.step.startswith("version:") or draft.step == "schedule" else None

    async def message(self, draft: Broadcast, content: Draftable) -> Reply:
        """A message while the draft waits for one: a language's version, or the date to send."""
        assert draft.step is not None
        lang = draft.language
        if draft.step == "schedule":
            return await self._schedule(draft, content.html or "")
        version_lang = draft.step.removeprefix("version:")
        limit = MAX_CAPTION if content.file else MAX_TEXT
        if not content.html or not content.length:
            return self._say(lang, T.BC_NEED_TEXT)
        if content.length > limit:
            return self._say(lang, T.BC_TOO_LONG, length=content.length, limit=limit)
        version = Version(
            content.html,
            photo=content.file.file_id if content.file and content.file.kind == "photo" else None,
            document=content.file.file_id if content.file and content.file.kind == "document" else None,
        )
        versions = {**draft.versions, version_lang: version}
        updated = await self.broadcasts.edit_draft(draft.id, versions=versions)
        assert updated is not None
        return await self._after_version(updated, version_lang)

    async def button(self, admin_id: int, intent: Compose) -> Reply:
        draft = await self.broadcasts.draft_of(admin_id)
        if draft is None or draft.step is None:
            return Reply(toast=self.tr.text(self._lang_of(draft), T.BC_NO_DRAFT))
        lang = draft.language
        match intent.action, intent.value:
            case "skip", version_lang if draft.step == f"version:{version_lang}":
                return await self._after_version(draft, version_lang)
            case "fallback", fallback if draft.step == "fallback" and fallback in draft.versions:
                updated = await self.broadcasts.edit_draft(draft.id, fallback=fallback, step="audience")
                assert updated is not None
                return Reply((await self._audience_screen(updated),), edit_source=self._chosen(lang, fallback))
            case "filter", dimension if draft.step == "audience" and dimension in DIMENSIONS:
                if dimension == "handoff":
                    return await self._set_filter(draft, "handoff", "yes")
                await self.broadcasts.edit_draft(draft.id, step=f"filter:{dimension}")
                return Reply((self._filter_values(draft, dimension),))
            case "set", value if draft.step.startswith("filter:"):
                return await self._set_filter(draft, draft.step.removeprefix("filter:"), value)
            case "clear", _ if draft.step == "audience":
                updated = await self.broadcasts.edit_draft(draft.id, audience=Audience())
                assert updated is not None
                return Reply((await self._audience_screen(updated),))
            case "continue", _ if draft.step == "audience":
                return await self.preview(draft)
            case "audience", _ if draft.step in ("preview", "schedule"):
                updated = await self.broadcasts.edit_draft(draft.id, step="audience")
                assert updated is not None
                return Reply((await self._audience_screen(updated),))
            case "send", _ if draft.step == "preview":
                if not await self.broadcasts.submit(draft.id):
                    return Reply(toast=self.tr.text(lang, T.BC_NO_DRAFT))
                self.on_submit()
                return Reply((Outgoing(self.tr.text(lang, T.BC_QUEUED, id=draft.id)),))
            case "schedule", _ if draft.step == "preview":
                await self.broadcasts.edit_draft(draft.id, step="schedule")
                example = (self.clock() + dt.timedelta(days=1)).strftime("%Y-%m-%d 09:00")
                return self._say(lang, T.BC_ASK_WHEN, example=example, zone=self.timezone)
            case "cancel", _:
                await self.broadcasts.discard(draft.id)
                return self._say(lang, T.BC_DISCARDED)
        # A button from an earlier step: show where the draft is.
        return Reply((await self._where(draft),), toast=self.tr.text(lang, T.NOT_CURRENT))

    async def cancel(self, admin_id: int, lang: str) -> Reply:
        """/cancel: drop the draft being composed."""
        draft = await self.broadcasts.draft_of(admin_id)
        if draft is None:
            return self._say(lang, T.BC_NO_DRAFT)
        await self.broadcasts.discard(draft.id)
        return self._say(draft.language, T.BC_DISCARDED)

    async def listing(self, lang: str) -> Reply:
        """/broadcasts: the latest ones, each with the controls its state allows."""
        recent = await self.broadcasts.recent()
        if not recent:
            return self._say(lang, T.BC_LIST_EMPTY)
        messages = [Outgoing(self.tr.text(lang, T.BC_LIST_TITLE))]
        for item in recent:
            line = self.tr.text(
                lang,
                T.BC_LIST_ITEM,
                id=item.id,
                state=self.tr.text(lang, f"bc.state.{item.status.value}"),
                created=self.tr.date(lang, item.created_at.date()),
                audience=self.describe(lang, item.audience),
            )
            if item.status == BroadcastStatus.SCHEDULED and item.scheduled_for:
                line += "\n" + self._when(lang, item.scheduled_for, item.timezone)
            buttons: list[Button] = []
            if item.status == BroadcastStatus.RUNNING:
                buttons.append(Button(self.tr.text(lang, T.BC_PAUSE), ControlBroadcast(item.id, "pause")))
            if item.status == BroadcastStatus.PAUSED:
                buttons.append(Button(self.tr.text(lang, T.BC_RESUME), ControlBroadcast(item.id, "resume")))
            if item.status not in (BroadcastStatus.DONE, BroadcastStatus.CANCELLED):
                buttons.append(Button(self.tr.text(lang, T.BC_CANCEL), ControlBroadcast(item.id, "cancel")))
            messages.append(Outgoing(line, (tuple(buttons),) if buttons else ()))
        return Reply(tuple(messages))

    # ------------------------------------------------------------------ steps

    async def _after_version(self, draft: Broadcast, done_lang: str) -> Reply:
        languages = self.tr.languages
        rest = languages[languages.index(done_lang) + 1 :]
        lang = draft.language
        if rest:
            updated = await self.broadcasts.edit_draft(draft.id, step=f"version:{rest[0]}")
            assert updated is not None
            return Reply((self._ask_version(updated, rest[0]),))
        if not draft.versions:
            updated = await self.broadcasts.edit_draft(draft.id, step=f"version:{languages[0]}")
            assert updated is not None
            return Reply((Outgoing(self.tr.text(lang, T.BC_NEED_ONE)), self._ask_version(updated, languages[0])))
        if len(draft.versions) == len(languages):
            updated = await self.broadcasts.edit_draft(draft.id, step="audience")
            assert updated is not None
            return Reply((await self._audience_screen(updated),))
        if len(draft.versions) == 1:  # one version: it is everyone's
            only = next(iter(draft.versions))
            updated = await self.broadcasts.edit_draft(draft.id, fallback=only, step="audience")
            assert updated is not None
            return Reply((await self._audience_screen(updated),))
        await self.broadcasts.edit_draft(draft.id, step="fallback")
        buttons = tuple((Button(self._language_name(code), Compose("fallback", code)),) for code in draft.versions)
        return Reply((Outgoing(self.tr.text(lang, T.BC_ASK_FALLBACK), buttons),))

    def _ask_version(self, draft: Broadcast, version_lang: str) -> Outgoing:
        lang = draft.language
        return Outgoing(
            self.tr.text(lang, T.BC_ASK_VERSION, language=self._language_name(version_lang)),
            (
                (Button(self.tr.text(lang, T.BC_SKIP), Compose("skip", version_lang)),),
                (Button(self.tr.text(lang, T.BC_DISCARD), Compose("cancel")),),
            ),
        )

    async def _audience_screen(self, draft: Broadcast) -> Outgoing:
        lang = draft.language
        count = sum(await self._reach(draft))
        text = self.tr.text(lang, T.BC_AUDIENCE, audience=self.describe(lang, draft.audience), count=count)
        chosen = draft.audience.to_json()
        filters = [
            Button(self.tr.text(lang, f"bc.dimension.{d}"), Compose("filter", d)) for d in DIMENSIONS if d not in chosen
        ]
        rows: list[tuple[Button, ...]] = [tuple(filters[i : i + 2]) for i in range(0, len(filters), 2)]
        if chosen:
            rows.append((Button(self.tr.text(lang, T.BC_CLEAR), Compose("clear")),))
        rows.append((Button(self.tr.text(lang, T.BC_CONTINUE), Compose("continue")),))
        rows.append((Button(self.tr.text(lang, T.BC_DISCARD), Compose("cancel")),))
        return Outgoing(text, tuple(rows))

    def _filter_values(self, draft: Broadcast, dimension: str) -> Outgoing:
        lang = draft.language
        values = self.values(lang, dimension)
        buttons = tuple((Button(label, Compose("set", value)),) for value, label in values.items())
        return Outgoing(
            self.tr.text(lang, T.BC_PICK_VALUE, dimension=self.tr.text(lang, f"bc.dimension.{dimension}")), buttons
        )

    async def _set_filter(self, draft: Broadcast, dimension: str, value: str) -> Reply:
        if value not in self.values(draft.language, dimension):
            return Reply((await self._where(draft),), toast=self.tr.text(draft.language, T.NOT_CURRENT))
        if dimension == "handoff":
            audience = replace(draft.audience, handoff=True)
        else:
            audience = Audience.from_json({**draft.audience.to_json(), dimension: value})
        updated = await self.broadcasts.edit_draft(draft.id, audience=audience, step="audience")
        assert updated is not None
        return Reply((await self._audience_screen(updated),))

    async def preview(self, draft: Broadcast) -> Reply:
        lang = draft.language
        reach = await self.broadcasts.audience_languages(draft.audience)
        await self.broadcasts.edit_draft(draft.id, step="preview")
        messages: list[Outgoing] = []
        for code, version in draft.versions.items():
            messages.append(Outgoing(self.tr.text(lang, T.BC_PREVIEW_OF, language=self._language_name(code))))
            messages.append(as_outgoing(version))
        per_language = []
        fallback_count = 0
        for code in self.tr.languages:
            n = reach.get(code, 0)
            if code in draft.versions:
                per_language.append(f"{self._language_name(code)}: {n}")
            elif draft.fallback:
                fallback_count += n
        total = sum(reach.values())
        summary = self.tr.text(
            lang,
            T.BC_SUMMARY,
            audience=self.describe(lang, draft.audience),
            count=total,
            languages=", ".join(per_language),
        )
        if fallback_count and draft.fallback:
            summary += "\n" + self.tr.text(
                lang, T.BC_SUMMARY_FALLBACK, count=fallback_count, language=self._language_name(draft.fallback)
            )
        buttons = (
            (Button(self.tr.text(lang, T.BC_SEND_NOW), Compose("send")),),
            (Button(self.tr.text(lang, T.BC_SCHEDULE), Compose("schedule")),),
            (Button(self.tr.text(lang, T.BC_CHANGE_AUDIENCE), Compose("audience")),),
            (Button(self.tr.text(lang, T.BC_DISCARD), Compose("cancel")),),
        )
        messages.append(Outgoing(summary, buttons))
        return Reply(tuple(messages))

    async def _schedule(self, draft: Broadcast, text: str) -> Reply:
        lang = draft.language
        match = _WHEN.match(text)
        zone_name = (match.group(3) if match else None) or self.timezone
        try:
            zone = zoneinfo.ZoneInfo(zone_name)
            if match is None:
                raise ValueError(text)
            hour, _, minutes = match.group(2).partition(":")
            local = dt.datetime.fromisoformat(f"{match.group(1)}T{hour.zfill(2)}:{minutes}")
        except (ValueError, zoneinfo.ZoneInfoNotFoundError):
            example = (self.clock() + dt.timedelta(days=1)).strftime("%Y-%m-%d 09:00")
            return self._say(lang, T.BC_BAD_WHEN, example=example, zone=self.timezone)
        when = local.replace(tzinfo=zone).astimezone(dt.UTC)
        if when <= self.clock():
            return self._say(lang, T.BC_PAST_WHEN)
        if not await self.broadcasts.submit(draft.id, scheduled_for=when, timezone=zone_name):
            return self._say(lang, T.BC_NO_DRAFT)
        self.on_submit()
        return Reply(
            (
                Outgoing(
                    f"{self.tr.text(lang, T.BC_SCHEDULED, id=draft.id)}\n{self._when(lang, when, zone_name)}",
                    ((Button(self.tr.text(lang, T.BC_CANCEL), ControlBroadcast(draft.id, "cancel")),),),
                ),
            )
        )

    async def _where(self, draft: Broadcast) -> Outgoing:
        """The current step's screen again (after a stale button)."""
        step = draft.step or ""
        if step.startswith("version:"):
            return self._ask_version(draft, step.removeprefix("version:"))
        if step.startswith("filter:"):
            return self._filter_values(draft, step.removeprefix("filter:"))
        if step == "fallback":
            buttons = tuple((Button(self._language_name(c), Compose("fallback", c)),) for c in draft.versions)
            return Outgoing(self.tr.text(draft.language, T.BC_ASK_FALLBACK), buttons)
        if step == "schedule":
            example = (self.clock() + dt.timedelta(days=1)).strftime("%Y-%m-%d 09:00")
            return Outgoing(self.tr.text(draft.language, T.BC_ASK_WHEN, example=example, zone=self.timezone))
        if step == "preview":
            return (await self.preview(draft)).messages[-1]
        return await self._audience_screen(draft)

    # ------------------------------------------------------------------ words

    def values(self, lang: str, dimension: str) -> Mapping[str, str]:
        """The values an audience dimension can take, with their labels in `lang`."""
        match dimension:
            case "language":
                return {code: self._language_name(code) for code in self.tr.languages}
            case "outcome":
                return {o: self.tr.text(lang, f"result.label.{o}") for o in OUTCOMES}
            case "nationality" | "country":
                questionnaire = self.render.program.questionnaire
                question_id = ANSWER_DIMENSIONS[dimension]
                if question_id not in questionnaire.index:
                    return {}
                question = questionnaire.question(question_id)
                return {
                    o.id: self.render.option_label(lang, OptionView(o.id, o.text, o.date)) for o in question.options
                }
            case "referral":
                return {s.value: self.tr.text(lang, f"bc.referral.{s.value}") for s in ReferralStatus}
            case "handoff":
                return {"yes": self.tr.text(lang, T.BC_HANDOFF_YES)}
        return {}

    def describe(self, lang: str, audience: Audience) -> str:
        """The audience in words: "everyone", or its filters."""
        chosen = audience.to_json()
        if not chosen:
            return self.tr.text(lang, T.BC_EVERYONE)
        parts = []
        if audience.people is not None:
            parts.append(self.tr.text(lang, T.BC_PEOPLE, count=len(audience.people)))
        for dimension in DIMENSIONS:
            if dimension not in chosen:
                continue
            value = "yes" if dimension == "handoff" else str(chosen[dimension])
            label = self.values(lang, dimension).get(value, value)
            parts.append(f"{self.tr.text(lang, f'bc.dimension.{dimension}')}: {label}")
        return "; ".join(parts)

    async def _reach(self, draft: Broadcast) -> list[int]:
        reach = await self.broadcasts.audience_languages(draft.audience)
        return [n for code, n in reach.items() if draft.version_for(code) is not None]

    def _when(self, lang: str, when: dt.datetime, zone_name: str | None) -> str:
        zone = zoneinfo.ZoneInfo(zone_name or self.timezone)
        local = when.astimezone(zone)
        return self.tr.text(
            lang, T.BC_WHEN, date=self.tr.date(lang, local.date()), time=local.strftime("%H:%M"), zone=zone.key
        )

    def _language_name(self, code: str) -> str:
        return self.tr.text(code, T.LANG_NAME)

    def _chosen(self, lang: str, code: str) -> str:
        return f"{self.tr.text(lang, T.BC_ASK_FALLBACK)}\n→ {self._language_name(code)}"

    def _lang_of(self, draft: Broadcast | None) -> str:
        return draft.language if draft else self.tr.languages[0]

    def _say(self, lang: str, key: T, **params: object) -> Reply:
        return Reply((Outgoing(self.tr.text(lang, key, **params)),))


def as_outgoing(version: Version) -> Outgoing:
    """A version as people get it."""
    file = None
    if version.photo:
        file = FileRef("photo", version.photo)
    elif version.document:
        file = FileRef("document", version.document)
    return Outgoing(version.text, file=file, html=True)
