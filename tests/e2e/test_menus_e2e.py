"""The command menu speaks the language a person picked, end to end through the fake Bot API.

Telegram shows a bot's menu by the app's language, and no Telegram app speaks Haitian Creole: a Creole speaker's
app says "fr" (or "en"), so a menu registered for "ht" alone would never be seen. The fake Bot API picks the menu
the way Telegram does (the chat's own first, then the app language's, then the default), so what these tests read
is what the person's app would show.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from bot.app import Core, serve
from bot.config import Settings
from bot.texts import COMMANDS
from tests.e2e.conftest import begin, settings_for
from tests.fakebotapi import FakeBotAPI, FakeUser


async def eventually(condition: Callable[[], bool], timeout: float = 10.0) -> None:  # noqa: ASYNC109
    """Wait until `condition()` holds: a menu is no message, so no chat change announces it."""
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110 (the server's state, not an event to wait on)
            await asyncio.sleep(0.05)


def menu_in(core: Core, language: str) -> list[str]:
    return [core.translator.text(language, f"cmd.{c}") for c in COMMANDS]


def chat_scope(user: FakeUser) -> dict[str, object]:
    return {"type": "chat", "chat_id": user.id}


@contextlib.asynccontextmanager
async def running(settings: Settings, core: Core) -> AsyncIterator[None]:
    """The bot polling until the block ends; the same settings again are a restart on the same database."""
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, core, handle_signals=False, stop=stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=15)


async def test_a_creole_speaker_reads_the_menu_in_creole(bot: FakeBotAPI, core: Core) -> None:
    """Before starting, a French-speaking app shows the default (Spanish) menu; once the person picks Creole and
    accepts the privacy notice, their chat's menu is in Creole, and it follows a change of language; someone who
    has not accepted keeps the default."""
    user = bot.user(language_code="fr")
    other = bot.user(language_code="fr")
    await other.send("/start")
    await other.wait_idle(quiet=0.2)
    assert user.menu_descriptions() == menu_in(core, "es")

    await begin(user, "ht")
    await eventually(lambda: user.menu_descriptions() == menu_in(core, "ht"))
    assert user.menu() == list(COMMANDS)

    await user.send("/language")
    await user.wait_for(lambda m: any(b.data == "l:en" for row in m.buttons for b in row))
    await user.tap(data="l:en")
    await eventually(lambda: user.menu_descriptions() == menu_in(core, "en"))
    assert other.menu_descriptions() == menu_in(core, "es")


async def test_delete_gives_the_chat_back_the_common_menu(bot: FakeBotAPI, core: Core) -> None:
    """After /delete nothing marks the chat as theirs: its own menu is deleted, the app's language decides again."""
    user = bot.user(language_code="en")
    await begin(user, "ht")
    await eventually(lambda: bot.commands(chat_scope(user)) != [])
    await user.send("/delete")
    confirm = await user.wait_for(lambda m: any(b.data == "d:1" for r in m.buttons for b in r))
    await user.tap(data="d:1", message=confirm)
    await eventually(lambda: bot.commands(chat_scope(user)) == [])
    assert user.menu_descriptions() == menu_in(core, "en")


async def test_a_menu_telegram_refused_is_set_at_the_next_start(server: FakeBotAPI, core: Core, tmp_path: Path) -> None:
    """Telegram refuses the menu when Creole is picked (a long flood wait): the person still gets every reply, and
    the next start sets their menu. Menus already right are not set again."""
    settings = settings_for(server, tmp_path / "puente.db")
    lucky, unlucky = server.user(language_code="fr"), server.user(language_code="fr")
    async with running(settings, core):
        await begin(lucky, "ht")
        await eventually(lambda: lucky.menu_descriptions() == menu_in(core, "ht"))
        server.fail_next("setMyCommands", status=429, retry_after=120)  # a wait too long to sit out
        await begin(unlucky, "ht")
        await unlucky.wait_idle(quiet=0.3)
        assert unlucky.menu_descriptions() == menu_in(core, "es")

    calls_before = len(server.calls_to("setMyCommands"))
    async with running(settings, core):
        await eventually(lambda: unlucky.menu_descriptions() == menu_in(core, "ht"))
        await asyncio.sleep(0.3)
    restart_calls = server.calls_to("setMyCommands")[calls_before:]
    chat_calls = [c for c in restart_calls if (c.params.get("scope") or {}).get("type") == "chat"]
    assert [c.params["scope"]["chat_id"] for c in chat_calls] == [unlucky.id]
