"""Switching the program's rules from Telegram: confirmed, kept across restarts, people carried over and told."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.app import Core, load_core, serve
from bot.config import Settings
from bot.intents import Compose, SwitchProgram
from bot.telegram.callbacks import pack
from tests.e2e.conftest import ELIGIBLE, answer, begin, settings_for
from tests.fakebotapi import ChatMessage, FakeBotAPI, FakeUser

TERMINATED = "chnv-terminated-2025"


@dataclass
class Deployment:
    server: FakeBotAPI
    settings: Settings
    admin: FakeUser
    stop: asyncio.Event
    task: asyncio.Task[int]

    async def tap(self, intent: SwitchProgram | Compose, message: ChatMessage | None = None) -> None:
        await self.admin.tap(data=pack(intent), message=message)


def has_button(message: ChatMessage, data: str) -> bool:
    return any(b.data == data for row in message.buttons for b in row)


async def start(server: FakeBotAPI, settings: Settings, admin: FakeUser) -> Deployment:
    # Each start gets its own core: a switch changes which program is active in it, as in a real process.
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, load_core(settings), handle_signals=False, stop=stop))
    return Deployment(server, settings, admin, stop, task)


async def shut(deployment: Deployment) -> None:
    deployment.stop.set()
    await asyncio.wait_for(deployment.task, timeout=15)


@pytest.fixture
async def deployment(server: FakeBotAPI, core: Core, tmp_path: Path) -> AsyncIterator[Deployment]:
    admin = server.user(first_name="Admin", language_code="en")
    settings = settings_for(server, tmp_path / "puente.db").model_copy(update={"admin_ids": frozenset({admin.id})})
    running = await start(server, settings, admin)
    yield running
    if not running.task.done():
        await shut(running)


async def test_switch_carries_people_over_and_tells_those_affected(deployment: Deployment) -> None:
    server, admin = deployment.server, deployment.admin
    finished = server.user(language_code="ht")
    await begin(finished, "ht")
    for question, option in ELIGIBLE:
        await answer(finished, question, option)
    assert any(m.text.startswith("✅") for m in finished.messages)
    halfway = server.user(language_code="es")
    await begin(halfway, "es")
    await answer(halfway, "nationality", "venezuelan")

    await admin.send("/program")
    screen = await admin.wait_for(lambda m: has_button(m, pack(SwitchProgram(TERMINATED, "ask"))))
    assert screen.text.startswith("Rules in use: Process for Venezuelans")
    await deployment.tap(SwitchProgram(TERMINATED, "ask"))
    confirm = await admin.wait_for(lambda m: has_button(m, pack(SwitchProgram(TERMINATED, "do"))))
    assert "1 would get a different one" in confirm.text  # the finished person; the half-way one has no result
    await deployment.tap(SwitchProgram(TERMINATED, "do"))
    offer = await admin.wait_for(lambda m: has_button(m, pack(SwitchProgram(TERMINATED, "tell"))))
    assert offer.text.startswith("Switched.")

    # The half-way person goes on under the new rules, told so, keeping what still counts.
    await halfway.send("/start")
    carried = await halfway.wait_for(lambda m: "Las reglas cambiaron" in m.text)
    assert "reglas vigentes al" in carried.text

    # The admin tells the affected people: a broadcast in each one's language, previewed first.
    await deployment.tap(SwitchProgram(TERMINATED, "tell"))
    summary = await admin.wait_for(lambda m: has_button(m, pack(Compose("send"))))
    assert "Recipients now: 1" in summary.text
    await deployment.tap(Compose("send"))
    notice = await finished.wait_for(lambda m: "/start" in m.text and m.text.startswith("ℹ️"))
    assert "Nouvèl" in notice.text  # in Creole, their language
    assert not any("ℹ️ Noticia" in m.text for m in halfway.messages)  # not affected: no result yet

    # A restart keeps the switch.
    await shut(deployment)
    again = await start(server, deployment.settings, admin)
    try:
        await admin.send("/program")
        screen = await admin.wait_for(lambda m: m.text.startswith("Rules in use:"))
        assert "Process for Venezuelans" not in screen.text.splitlines()[0]
    finally:
        await shut(again)


async def test_only_admins_switch(deployment: Deployment) -> None:
    stranger = deployment.server.user(language_code="en")
    await stranger.send("/program")
    reply = await stranger.wait_for()
    assert "Rules in use" not in reply.text
    await stranger.tap(data=pack(SwitchProgram(TERMINATED, "do")), message=reply, forge=True)
    await stranger.wait_idle()
    await deployment.admin.send("/program")
    screen = await deployment.admin.wait_for(lambda m: m.text.startswith("Rules in use:"))
    assert screen.text.startswith("Rules in use: Process for Venezuelans")


async def test_a_haitian_gets_the_parole_path_and_h2b_in_creole(server: FakeBotAPI, tmp_path: Path) -> None:
    """With PROGRAM=chnv-2023 a Haitian who qualifies reads, in Creole, the parole route and then H-2B."""
    settings = settings_for(server, tmp_path / "puente.db").model_copy(update={"program": "chnv-2023"})
    core = load_core(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, core, handle_signals=False, stop=stop))
    try:
        marie = server.user(language_code="ht")
        await begin(marie, "ht")
        for question, option in HAITIAN_IN_MEXICO:
            await answer(marie, question, option)
        await marie.wait_idle(quiet=0.5)
        texts = [m.text for m in marie.messages]
        result = next(t for t in texts if t.startswith("✅"))
        route = core.translator.text("ht", "info.route_steps_chnv", **core.program.ruleset.dates)
        h2b = core.translator.text("ht", "info.h2b_haiti", **core.program.ruleset.dates)
        # Explanations short enough share a message, so find each in the one that holds it.
        where = [next(i for i, t in enumerate(texts) if part in t) for part in (result, route, h2b)]
        assert where == sorted(where)
        assert where[0] < where[1]
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=15)


#: tests/golden/chnv-2023/same_person_haitian_mexico_dec2022.yaml: in Mexico irregularly in December 2022.
HAITIAN_IN_MEXICO = [
    ("nationality", "haitian"), ("location", "mexico"), ("mx_pa_irregular", "yes"),
    ("mx_pa_irregular_when_chn", "on_or_before"), ("us_irregular", "no"), ("sea_interdiction", "no"),
    ("removal_order", "no"), ("removal_order_older", "no"), ("other_citizenship", "no"), ("other_residence", "no"),
    ("refugee_status", "no"), ("passport", "valid"), ("supporter", "yes"), ("age", "adult"), ("vaccines", "yes"),
    ("flight", "yes"),
]  # fmt: skip
