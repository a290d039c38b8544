"""Broadcasts end to end: an admin composes in Telegram, people get it in their language, at Telegram's pace.

The bot runs against the fake Bot API with flood control on (30 messages a second over all chats, as Telegram).
Most tests seed consented people straight into the database (the questionnaire is not what they test); the
ones about /stop and about people-first go through the real conversation.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.app import Core, serve
from bot.intents import Compose, ControlBroadcast
from bot.storage import Participant, SqlStore, open_store
from bot.storage.broadcasts import Broadcasts, BroadcastStatus, RecipientStatus, Version
from bot.telegram.callbacks import pack
from flows import engine
from tests.e2e.conftest import BotProcess, answer, begin, settings_for
from tests.fakebotapi import ChatMessage, FakeBotAPI, FakeUser

TEXTS = {"es": "Noticias: el proceso sigue abierto.", "ht": "Nouvèl: pwosesis la toujou louvri.", "en": "News: open."}


@dataclass
class Campaign:
    server: FakeBotAPI
    #: The bot's database, opened by the test too (to seed people and read the broadcasts' rows).
    store: SqlStore
    admin: FakeUser

    async def seed(self, language: str, *, outcome: str | None = None, user: FakeUser | None = None) -> FakeUser:
        """A person who consented earlier (straight into the database), known to the fake server."""
        user = user or self.server.user(language_code=language)
        await seed(self.store, user.id, language, outcome=outcome)
        return user

    async def statuses(self) -> dict[int, BroadcastStatus]:
        return {b.id: b.status for b in await Broadcasts(self.store).recent()}

    async def tap(self, intent: Compose | ControlBroadcast, message: ChatMessage | None = None) -> None:
        await self.admin.tap(data=pack(intent), message=message)

    async def compose(
        self,
        versions: dict[str, str],
        *,
        fallback: str | None = None,
        filters: dict[str, str] | None = None,
        photo_for: str | None = None,
    ) -> ChatMessage:
        """Drive /broadcast to the preview; returns the summary message (with Send now / Schedule)."""
        admin = self.admin
        await admin.send("/broadcast")
        for lang in ("es", "ht", "en"):
            await admin.wait_for(lambda m, lang=lang: has_button(m, pack(Compose("skip", lang))))  # type: ignore[misc]
            if lang not in versions:
                await self.tap(Compose("skip", lang))
            elif lang == photo_for:
                await admin.send_photo(versions[lang])
            else:
                await admin.send(versions[lang])
        if fallback is not None:
            await admin.wait_for(lambda m: has_button(m, pack(Compose("fallback", fallback))))
            await self.tap(Compose("fallback", fallback))
        await admin.wait_for(lambda m: has_button(m, pack(Compose("continue"))))
        for dimension, value in (filters or {}).items():
            await self.tap(Compose("filter", dimension))
            await admin.wait_for(lambda m, v=value: has_button(m, pack(Compose("set", v))))  # type: ignore[misc]
            await self.tap(Compose("set", value))
            await admin.wait_for(lambda m: has_button(m, pack(Compose("continue"))))
        await self.tap(Compose("continue"))
        return await admin.wait_for(lambda m: has_button(m, pack(Compose("send"))))

    async def send_now(self, versions: dict[str, str], **options: object) -> ChatMessage:
        """Compose, send, and return the final report (after the progress message)."""
        await self.compose(versions, **options)  # type: ignore[arg-type]
        await self.tap(Compose("send"))
        return await self.report()

    async def report(self, timeout: float = 30.0) -> ChatMessage:  # noqa: ASYNC109
        return await self.admin.wait_for(lambda m: m.text.startswith("Report, broadcast"), timeout=timeout)


async def seed(store: SqlStore, user_id: int, language: str, *, outcome: str | None = None) -> None:
    now = dt.datetime.now(dt.UTC)
    person = Participant(
        user_id=user_id,
        chat_id=user_id,
        language=language,
        consented_at=now,
        session=engine.Session(program_id="venezuela-2022", node="nationality"),
        outcome=outcome,
    )
    await store.save(person, previous=None, update_id=None, now=now)


def has_button(message: ChatMessage, data: str) -> bool:
    return any(b.data == data for row in message.buttons for b in row)


def got(user: FakeUser, text: str) -> int:
    """How many times the user received this broadcast text (as a message or a caption)."""
    return sum(1 for m in user.messages if text in (m.text or "") or text in (m.caption or ""))


async def running_campaign(
    server: FakeBotAPI, core: Core, tmp_path: Path, **overrides: object
) -> AsyncIterator[Campaign]:
    server.set_rate_limits(global_per_second=30)
    admin = server.user(first_name="Admin", language_code="en")
    database = tmp_path / "puente.db"
    settings = settings_for(server, database).model_copy(
        update={"admin_ids": frozenset({admin.id}), "broadcast_progress_seconds": 1.0, **overrides}
    )
    store = await open_store(f"sqlite+aiosqlite:///{database}")  # migrated before the bot starts
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, core, handle_signals=False, stop=stop))
    yield Campaign(server, store, admin)
    stop.set()
    await asyncio.wait_for(task, timeout=15)
    await store.close()


@pytest.fixture
async def campaign(server: FakeBotAPI, core: Core, tmp_path: Path) -> AsyncIterator[Campaign]:
    async for running in running_campaign(server, core, tmp_path):
        yield running


@pytest.fixture
async def slow_campaign(server: FakeBotAPI, core: Core, tmp_path: Path) -> AsyncIterator[Campaign]:
    """Sending 4 messages a second, so a test can act while a broadcast is under way."""
    async for running in running_campaign(server, core, tmp_path, send_rate=4.0):
        yield running


async def test_each_person_gets_their_own_language(campaign: Campaign) -> None:
    es, ht, en = await campaign.seed("es"), await campaign.seed("ht"), await campaign.seed("en")
    summary = await campaign.compose(TEXTS)
    assert "Recipients now: 3" in summary.text
    await campaign.tap(Compose("send"))
    report = await campaign.report()
    for user, lang in ((es, "es"), (ht, "ht"), (en, "en")):
        await user.wait_for(lambda m, lang=lang: TEXTS[lang] in m.text)  # type: ignore[misc]
        assert got(user, TEXTS[lang]) == 1
        assert all(got(user, TEXTS[other]) == 0 for other in TEXTS if other != lang)
    assert "Sent: 3" in report.text
    progress = next(m for m in campaign.admin.messages if m.text.startswith("📣 Broadcast #"))
    assert "finished" in progress.text
    assert not progress.buttons


async def test_a_segment_with_a_fallback_language(campaign: Campaign) -> None:
    """Only Creole speakers; there is no Creole version, so they get the chosen fallback (Spanish)."""
    ht_one, ht_two, es = await campaign.seed("ht"), await campaign.seed("ht"), await campaign.seed("es")
    summary = await campaign.compose({"es": TEXTS["es"], "en": TEXTS["en"]}, fallback="es", filters={"language": "ht"})
    assert "Recipients now: 2" in summary.text
    assert "2 of them speak a language without a version and get the Español one" in summary.text
    await campaign.tap(Compose("send"))
    report = await campaign.report()
    for user in (ht_one, ht_two):
        await user.wait_for(lambda m: TEXTS["es"] in m.text)
    assert got(es, TEXTS["es"]) == 0
    assert "Recipients: 2\nSent: 2" in report.text


async def test_outcome_segment_and_a_photo(campaign: Campaign) -> None:
    """A photo with its caption, to the people whose result was "may qualify" only."""
    eligible = await campaign.seed("es", outcome="likely_eligible")
    await campaign.seed("es", outcome="not_eligible")
    summary = await campaign.compose(
        {"es": "Guía de viaje: solo por avión."}, filters={"outcome": "likely_eligible"}, photo_for="es"
    )
    assert "Recipients now: 1" in summary.text
    preview = [m for m in campaign.admin.messages if m.photo is not None]
    assert preview
    assert preview[-1].caption == "Guía de viaje: solo por avión."
    await campaign.tap(Compose("send"))
    await campaign.report()
    received = await eligible.wait_for(lambda m: m.photo is not None)
    assert received.caption == "Guía de viaje: solo por avión."


async def test_blocked_and_missing_people(campaign: Campaign) -> None:
    """403 marks the person unreachable and leaves them out next time; 400 "chat not found" fails only them."""
    reachable, blocked, gone = await campaign.seed("en"), await campaign.seed("en"), await campaign.seed("en")
    blocked.block_bot()
    campaign.server.deactivate(gone.id)
    await seed(campaign.store, 987_654_321, "en")  # a chat the Bot API does not know
    report = await campaign.send_now({"en": "First news."})
    assert "Recipients: 4\nSent: 1\nFailed: 1\nBlocked the bot or account gone: 2" in report.text
    assert "chat not found" in report.text  # the reason, counted; nobody is named
    assert got(reachable, "First news.") == 1

    blocked.unblock_bot()  # they come back, but have not written yet: still left out
    summary = await campaign.compose({"en": "Second news."})
    assert "Recipients now: 2" in summary.text  # the reachable one and the unknown chat
    await campaign.tap(Compose("cancel"))


async def test_stop_and_subscribe(campaign: Campaign) -> None:
    """/stop is confirmed in the person's language and keeps them out; /subscribe brings them back."""
    ana = campaign.server.user(language_code="es")
    await begin(ana, "es")
    await answer(ana, "nationality", "venezuelan")
    await ana.send("/stop")
    stopped = await ana.wait_for(lambda m: "/subscribe" in m.text)
    assert stopped.text.startswith("Listo. Ya no vas a recibir noticias")
    first = await campaign.send_now({"es": "Primera noticia."})
    assert "Recipients: 0" in first.text
    assert got(ana, "Primera noticia.") == 0

    await ana.send("/subscribe")
    await ana.wait_for(lambda m: "/stop" in m.text)
    await campaign.send_now({"es": "Segunda noticia."})
    await ana.wait_for(lambda m: "Segunda noticia." in m.text)
    # Their questionnaire is where they left it.
    await ana.send("/start")
    assert (await ana.wait_for(lambda m: bool(m.buttons))).text.endswith("¿Dónde estás ahora?")


async def test_people_are_answered_while_a_broadcast_runs(slow_campaign: Campaign) -> None:
    """A broadcast at 4 messages a second to 40 people takes 10 s; a person starting meanwhile is not behind it."""
    crowd = [await slow_campaign.seed("es") for _ in range(40)]
    await slow_campaign.compose({"es": "Noticia larga."})
    await slow_campaign.tap(Compose("send"))
    await crowd[0].wait_for(lambda m: "Noticia larga." in m.text)
    newcomer = slow_campaign.server.user(language_code="en")
    await begin(newcomer, "en")
    await newcomer.tap(data="a:nationality:venezuelan")
    await newcomer.wait_for(lambda m: m.text.endswith("Where are you now?"))
    still_waiting = sum(1 for person in crowd if got(person, "Noticia larga.") == 0)
    assert still_waiting > 10, "the newcomer was answered only after most of the broadcast"
    await slow_campaign.report(timeout=30)
    assert all(got(person, "Noticia larga.") == 1 for person in crowd)


async def test_pause_resume_and_cancel(slow_campaign: Campaign) -> None:
    crowd = [await slow_campaign.seed("en") for _ in range(24)]
    await slow_campaign.compose({"en": "Paced news."})
    await slow_campaign.tap(Compose("send"))
    progress = await slow_campaign.admin.wait_for(lambda m: m.text.startswith("📣 Broadcast #"))
    await crowd[2].wait_for(lambda m: "Paced news." in m.text)
    broadcast_id = next(iter(await slow_campaign.statuses()))

    await slow_campaign.tap(ControlBroadcast(broadcast_id, "pause"), message=progress)
    await slow_campaign.admin.wait_until(lambda: "paused" in progress.text)
    assert (await slow_campaign.statuses())[broadcast_id] == BroadcastStatus.PAUSED
    reached = sum(got(person, "Paced news.") for person in crowd)
    await asyncio.sleep(1.0)  # at 4 a second, a pause that did not hold would show here
    assert sum(got(person, "Paced news.") for person in crowd) == reached < len(crowd)

    await slow_campaign.tap(ControlBroadcast(broadcast_id, "resume"), message=progress)
    await crowd[reached + 2].wait_for(lambda m: "Paced news." in m.text)
    await slow_campaign.tap(ControlBroadcast(broadcast_id, "cancel"), message=progress)
    report = await slow_campaign.report()
    counts = await Broadcasts(slow_campaign.store).counts(broadcast_id)
    sent = sum(got(person, "Paced news.") for person in crowd)
    assert counts[RecipientStatus.SENT] == sent < len(crowd)
    assert counts[RecipientStatus.CANCELLED] == len(crowd) - sent
    assert f"Not sent (cancelled): {len(crowd) - sent}" in report.text
    assert all(got(person, "Paced news.") <= 1 for person in crowd)


async def test_only_admins_can_broadcast(campaign: Campaign) -> None:
    """To others /broadcast is not a command, and admin buttons do nothing, even forged."""
    await campaign.seed("en")
    stranger = campaign.server.user(language_code="en")
    await stranger.send("/broadcast")
    answer_to_stranger = await stranger.wait_for()
    assert "broadcast" not in answer_to_stranger.text.lower()
    assert await campaign.statuses() == {}

    await campaign.compose({"en": "Real news."})
    await stranger.tap(data=pack(Compose("send")), message=answer_to_stranger, forge=True)
    await stranger.wait_idle()
    await stranger.tap(data=pack(ControlBroadcast(1, "cancel")), message=answer_to_stranger, forge=True)
    await stranger.wait_idle()
    assert await campaign.statuses() == {}  # still the admin's draft, not sent
    draft = await Broadcasts(campaign.store).draft_of(campaign.admin.id)
    assert draft is not None
    assert draft.status == BroadcastStatus.DRAFT


async def test_scheduled_broadcast_goes_at_its_time(campaign: Campaign) -> None:
    person = await campaign.seed("es")
    await campaign.compose({"es": "Programada."})
    await campaign.tap(Compose("schedule"))
    await campaign.admin.wait_for(lambda m: "When should it go?" in m.text)
    await campaign.admin.send("tomorrow morning")
    await campaign.admin.wait_for(lambda m: "could not read" in m.text)
    when = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=3)).replace(microsecond=0)
    await campaign.admin.send(when.strftime("%Y-%m-%d %H:%M:%S UTC"))
    confirmation = await campaign.admin.wait_for(lambda m: "is scheduled" in m.text)
    assert "(UTC)" in confirmation.text
    assert got(person, "Programada.") == 0
    await person.wait_for(lambda m: "Programada." in m.text, timeout=15)
    assert dt.datetime.now(dt.UTC) >= when


async def test_a_killed_bot_resumes_without_losing_anyone(server: FakeBotAPI, bot_process: BotProcess) -> None:
    """kill -9 in the middle of a broadcast: after the restart everyone gets it; only in-flight ones twice."""
    server.set_rate_limits(global_per_second=30)
    store = await open_store(bot_process.env["DATABASE_URL"])
    try:
        crowd = [server.user(language_code="es") for _ in range(150)]
        for person in crowd:
            await seed(store, person.id, "es")
        broadcasts = Broadcasts(store)
        now = dt.datetime.now(dt.UTC)
        draft = await broadcasts.new_draft(424_242, "en", "preview", now)
        await broadcasts.edit_draft(draft.id, versions={"es": Version("Resiste.")})
        assert await broadcasts.submit(draft.id)
    finally:
        await store.close()
    bot_process.env["ADMIN_IDS"] = "424242"

    received: Callable[[], int] = lambda: sum(1 for p in crowd if got(p, "Resiste.") > 0)  # noqa: E731
    await bot_process.started(server)
    await crowd[40].wait_for(lambda m: "Resiste." in m.text, timeout=30)
    bot_process.kill9()
    before_restart = received()
    assert before_restart < len(crowd)
    await bot_process.started(server)
    await crowd[-1].wait_for(lambda m: "Resiste." in m.text, timeout=30)
    assert received() == len(crowd)
    duplicates = sum(got(p, "Resiste.") for p in crowd) - len(crowd)
    assert duplicates <= 16 + 6, f"{duplicates} sent twice: more than were in flight at the kill"
    assert server.stats.rate_limited == 0


async def test_the_insights_count_deliveries_blocks_opt_outs_and_returns(campaign: Campaign) -> None:
    """Twelve people, five of whom blocked the bot; five others say /stop and then /subscribe: the admin's
    /stats_csv has the broadcast as 12 recipients, 7 delivered, 5 blocked, and five opt-outs and five returns."""
    reachable = [await campaign.seed("en") for _ in range(7)]
    blocked = [await campaign.seed("en") for _ in range(5)]
    for person in blocked:
        person.block_bot()
    for person in reachable[:5]:
        await person.send("/stop")
        await person.wait_for(lambda m: "/subscribe" in m.text)
        await person.send("/subscribe")
        await person.wait_for(lambda m: "/stop" in m.text)
    report = await campaign.send_now({"en": "News for everyone."})
    assert "Recipients: 12\nSent: 7" in report.text

    await campaign.admin.send("/stats_csv 7d")
    sent = await campaign.admin.wait_for(lambda m: m.document is not None and m.document.file_name.endswith(".csv"))
    assert sent.document is not None
    rows = list(csv.reader(io.StringIO(sent.document.content.decode())))
    broadcasts = {r[6]: r[7] for r in rows if r[4] == "broadcasts"}
    assert broadcasts == {"recipients": "12", "delivered": "7", "blocked": "5", "failed": "0"}
    today = dt.datetime.now(dt.UTC).date().isoformat()
    cells = {(r[4], r[5]): r[7] for r in rows}
    assert cells[("stopped", today)] == "5"
    assert cells[("resubscribed", today)] == "5"
    assert not any(str(p.id) in ",".join(r) for p in [*reachable, *blocked] for r in rows)
