"""Safe with sensitive data (issue #7), end to end: the bot stays only where it was configured to be, reads no
channel and no other bot, and one person's flood is cut short without slowing anyone else.

The bot runs with a staff group and one organisation's intake chat configured, and flood control at its defaults
(the other end-to-end tests lift it: scripted people answer faster than anyone types).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import statistics
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.app import Core, serve, utc_now
from bot.config import Settings
from bot.logs import hashed
from bot.storage import Participant, open_store
from bot.storage.referrals import Referrals
from bot.texts import T
from flows import engine
from tests.conftest import FIGURES
from tests.directory import organisation
from tests.e2e.conftest import ELIGIBLE, settings_for
from tests.fakebotapi import FakeBotAPI, FakeGroup, FakeUser

DEFAULT_BURST: int = Settings.model_fields["flood_burst"].default
DEFAULT_RATE: float = Settings.model_fields["flood_rate"].default


@dataclass
class World:
    server: FakeBotAPI
    core: Core
    database: Path
    staff: FakeGroup
    intake: FakeGroup


async def seed(world: World, user: FakeUser, answers: list[tuple[str, str]]) -> None:
    """A person who accepted the privacy notice in Spanish and gave these answers (written before the bot starts,
    so their flood allowance is untouched)."""
    program = world.core.program
    session = engine.new_session(program)
    session, _ = engine.step(program, session, engine.Show(), utc_now().date())
    for question, option in answers:
        session, _ = engine.step(program, session, engine.Choose(question, option), utc_now().date())
    store = await open_store(f"sqlite+aiosqlite:///{world.database}")
    try:
        participant = Participant(user.id, user.id, "es", utc_now() - dt.timedelta(minutes=5), session)
        assert await store.save(participant, previous=None, update_id=None, now=utc_now())
    finally:
        await store.close()


@pytest.fixture
async def world(server: FakeBotAPI, core: Core, tmp_path: Path) -> World:
    """The staff group and an intake chat exist, without the bot yet; the directory names the intake chat."""
    staff = server.group(title="Staff", forum=True, with_bot=False)
    intake = server.group(title="Alpha intake", with_bot=False)
    marta = intake.member(first_name="Marta")
    database = tmp_path / "puente.db"
    store = await open_store(f"sqlite+aiosqlite:///{database}")
    alpha = organisation(intake_chat_id=intake.id, members=(marta.id,))
    await Referrals(store).import_directory([alpha], utc_now())
    await store.close()
    return World(server, core, database, staff, intake)


@pytest.fixture
async def running(world: World) -> AsyncIterator[World]:
    """The bot polling, with flood control at its defaults."""
    settings = settings_for(world.server, world.database).model_copy(
        update={"staff_chat_id": world.staff.id, "flood_burst": DEFAULT_BURST, "flood_rate": DEFAULT_RATE}
    )
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, world.core, handle_signals=False, stop=stop))
    yield world
    stop.set()
    await asyncio.wait_for(task, timeout=10)


async def _polling(server: FakeBotAPI) -> None:
    """Until the bot's first long poll was answered (the fake records a call when it answers it)."""
    deadline = time.monotonic() + 10
    while not server.calls_to("getUpdates"):
        assert time.monotonic() < deadline, "the bot never polled"
        await asyncio.sleep(0.02)


def leaves(server: FakeBotAPI, chat_id: int) -> list[int]:
    """Statuses of the bot's leaveChat calls for one chat."""
    return [call.status for call in server.calls_to("leaveChat") if call.params.get("chat_id") == chat_id]


# -- A: only configured groups -------------------------------------------------------------------------


async def test_asks_for_membership_updates_not_channel_posts(running: World) -> None:
    """getUpdates asks for my_chat_member (so the bot hears it was added somewhere), and for no channel posts."""
    await _polling(running.server)
    allowed = running.server.calls_to("getUpdates")[-1].params["allowed_updates"]
    assert "my_chat_member" in allowed
    assert "channel_post" not in allowed
    assert "edited_channel_post" not in allowed


async def test_leaves_a_group_it_was_not_configured_for(running: World, caplog: pytest.LogCaptureFixture) -> None:
    """Added to a stranger's group, the bot leaves at once, once, logging the chat's hashed id and never its title."""
    caplog.set_level(logging.INFO)
    server = running.server
    stranger = server.group(title="Los Panas de Maracay", with_bot=False)
    eve = stranger.member(first_name="Eve")
    await stranger.add_bot(by=eve)  # my_chat_member, then the "Eve added the bot" message: one leave for both
    await stranger.wait_until(lambda: not stranger.bot_present)
    await stranger.wait_idle()
    assert leaves(server, stranger.id) == [200]
    assert stranger.messages == []
    await eve.send("¿sigue ahí el bot?")
    assert server.stats.updates_unseen == 1  # gone: Telegram sends it nothing from there
    left = [r for r in caplog.records if r.getMessage() == "leaving a chat it was not configured for"]
    assert [(r.__dict__["chat"], r.__dict__["type"]) for r in left] == [(hashed(stranger.id), "supergroup")]
    assert not any("Panas" in f"{r.getMessage()} {r.__dict__}" for r in caplog.records)


async def test_stays_in_the_staff_group_and_intake_chats(running: World) -> None:
    """Added to the staff group (as an admin) and to an organisation's intake chat, the bot stays in both."""
    server, staff, intake = running.server, running.staff, running.intake
    await staff.add_bot(by=staff.member(first_name="Luis"), admin=True)
    await intake.add_bot(by=intake.member(first_name="Marta"))
    await asyncio.gather(staff.wait_idle(), intake.wait_idle())
    assert (staff.bot_status, intake.bot_status) == ("administrator", "member")
    assert server.calls_to("leaveChat") == []


async def test_a_message_from_an_unconfigured_group_is_not_read_and_the_bot_leaves(running: World) -> None:
    """A group the bot is in without being configured (added while it was offline, say): a message there is not
    answered and makes the bot leave, while a person's private chat goes on as usual."""
    server = running.server
    old = server.group(title="Vieja", supergroup=False)
    await old.member(first_name="Eve").send("/start")
    await old.wait_until(lambda: not old.bot_present)
    assert leaves(server, old.id) == [200]
    assert old.messages == []
    ana = server.user(first_name="Ana")
    await ana.send("/start")
    assert (await ana.next_message()).buttons


async def test_leaves_a_channel_and_ignores_channel_posts(running: World) -> None:
    """Added to a channel, the bot leaves; posts in a channel it is still in reach nothing and get nothing."""
    server = running.server
    news = server.channel(title="Noticias", with_bot=False)
    await news.add_bot(by=server.user(first_name="Owner"))
    await news.wait_until(lambda: not news.bot_present)
    assert leaves(server, news.id) == [200]
    old = server.channel(title="Avisos")  # the bot is an admin there from before
    await old.post("Hoy no abrimos")
    await old.edit_post(old.last_post, "Hoy sí abrimos")
    await old.wait_idle()
    assert old.messages == []
    assert leaves(server, old.id) == []


async def test_messages_from_other_bots_are_ignored(running: World) -> None:
    """Another bot's messages get no answer, in private or in an intake chat; a person's do, and nobody leaves."""
    server, intake = running.server, running.intake
    await intake.add_bot(by=intake.member(first_name="Marta"))
    robot = server.user(first_name="OtroBot", is_bot=True)
    human = server.user(first_name="Ana")
    await robot.send("/start")
    await intake.member(robot.id).send("/start")
    await human.send("/start")
    assert (await human.next_message()).buttons
    await asyncio.gather(robot.wait_idle(), intake.wait_idle())
    assert robot.messages == []
    assert intake.messages == []
    assert server.calls_to("leaveChat") == []


# -- B: flood control ----------------------------------------------------------------------------------


async def test_a_flood_gets_a_few_replies_and_nobody_else_waits(world: World, request: pytest.FixtureRequest) -> None:
    """50 messages in 5 s from Ana: the first few are answered (and only those are stored), then one notice to slow
    down in Spanish, then silence; Bob, answering the questionnaire meanwhile, is answered as fast as before."""
    server, core = world.server, world.core
    ana = server.user(first_name="Ana", language_code="es")
    bob = server.user(first_name="Bob", language_code="es")
    await seed(world, ana, ELIGIBLE[:2])  # at mexico_entry: every question from here on has "No sé"
    await seed(world, bob, [])
    settings = settings_for(server, world.database).model_copy(
        update={"staff_chat_id": world.staff.id, "flood_burst": DEFAULT_BURST, "flood_rate": DEFAULT_RATE}
    )
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, core, handle_signals=False, stop=stop))
    try:
        latencies: list[float] = []

        async def bob_answers(count: int) -> None:
            """Bob at a brisk human pace, timing each reply."""
            for question, option in ELIGIBLE[len(latencies) : len(latencies) + count]:
                started = time.monotonic()
                await bob.tap(data=f"a:{question}:{option}")
                reply = await bob.wait_for(lambda m: bool(m.buttons))
                latencies.append(reply.sent_at - started)
                await asyncio.sleep(0.7)

        await bob.send("/start")  # shows his current question
        await bob.wait_for(lambda m: bool(m.buttons))
        await bob_answers(3)
        before = list(latencies)

        async def flood() -> None:
            for _ in range(50):
                await ana.send("No sé")
                await asyncio.sleep(0.1)

        flooding = asyncio.create_task(flood())
        await bob_answers(7)
        await flooding
        during = latencies[len(before) :]

        burst = await ana.wait_idle(quiet=0.5)
        notice = core.translator.text("es", T.SLOW_DOWN)
        questions = [m for m in burst if m.buttons]
        assert [m.text for m in burst if not m.buttons] == [notice]  # one notice, after the replies
        assert [m.text for m in burst].index(notice) >= min(len(questions), DEFAULT_BURST)
        # The first DEFAULT_BURST (6) are answered; one or two more only if the bot itself stalled a second.
        assert 1 <= len(questions) <= DEFAULT_BURST + 2

        store = await open_store(f"sqlite+aiosqlite:///{world.database}")
        try:
            stored = await store.load(ana.id)
        finally:
            await store.close()
        assert stored is not None
        assert len(stored.session.answers) == 2 + len(questions)  # only what was answered was stored
        assert [stored.session.answers[q] for q in stored.session.history[2:]] == ["dont_know"] * len(questions)

        await asyncio.sleep(1 / DEFAULT_RATE + 0.2)  # Ana calms down...
        current = questions[-1]
        option = next(b.data for row in current.buttons for b in row if b.data and b.data.endswith(":dont_know"))
        await ana.tap(data=option, message=current)
        assert (await ana.next_message()).buttons  # ...and is answered again
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)

    assert len(during) == 7
    request.config.stash[FIGURES].append(
        f"flood: Ana sent 50 in 5 s and got {len(questions)} answers and 1 notice; Bob's replies took "
        f"{statistics.median(before) * 1000:.0f} ms median before, {statistics.median(during) * 1000:.0f} ms during "
        f"(worst {max(before) * 1000:.0f} / {max(during) * 1000:.0f} ms)"
    )
    # Loopback replies take tens of milliseconds; relative bounds with some slack keep a loaded machine from failing.
    assert statistics.median(during) <= 2 * statistics.median(before) + 0.1, (before, during)
    assert max(during) <= 3 * max(before) + 0.25, (before, during)
