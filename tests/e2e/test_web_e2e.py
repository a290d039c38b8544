"""The web console served beside the real bot (WEB_LISTEN): scripted people go through Telegram, an admin sends
/web, the link signs a browser session in to the insights once, with the counts those people made; a second use of
the link is refused."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bot.app import Core, serve
from tests.e2e.conftest import settings_for, with_answers
from tests.e2e.test_insights_e2e import finish
from tests.fakebotapi import FakeBotAPI

ADMIN_ID = 616161


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
async def bot_with_console(server: FakeBotAPI, core: Core, tmp_path: Path) -> AsyncIterator[tuple[FakeBotAPI, str]]:
    listen = f"127.0.0.1:{free_port()}"
    changes = {"admin_ids": frozenset({ADMIN_ID}), "web_listen": listen, "staff_language": "en"}
    settings = settings_for(server, tmp_path / "puente.db").model_copy(update=changes)
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, core, handle_signals=False, stop=stop))
    yield server, f"http://{listen}"
    stop.set()
    await asyncio.wait_for(task, timeout=10)


async def test_an_admins_web_link_signs_in_to_the_insights_once(bot_with_console: tuple[FakeBotAPI, str]) -> None:
    """/web gives the admin a protected one-time link; it shows the insights with the people's counts, once."""
    server, base = bot_with_console
    people = [server.user(language_code="es") for _ in range(5)]
    await asyncio.gather(*(finish(u, "es", with_answers()) for u in people))

    admin = server.user(user_id=ADMIN_ID, language_code="en")
    await admin.send("/web")
    sent = await admin.wait_for(lambda m: "/login/" in m.text)
    assert sent.protected
    found = re.search(r"(http://\S+/login/\S+)", sent.text)
    assert found is not None
    link = found.group(1)
    assert link.startswith(base)

    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        async with browser.get(f"{base}/insights", allow_redirects=False) as response:
            assert (response.status, response.headers["Location"]) == (303, "/signin")
        async with browser.get(link) as response:
            page = await response.text()
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
        token = link.rsplit("/", 1)[1]
        assert csrf is not None
        async with browser.post(f"{base}/login", data={"token": token, "csrf": csrf.group(1)}) as response:
            assert response.status == 200
            insights = await response.text()
        assert "Accepted the notice: 5 people · got a result: 5" in insights
        async with browser.post(f"{base}/login", data={"token": token, "csrf": csrf.group(1)}) as response:
            assert response.status == 403


async def test_a_taken_console_address_leaves_the_bot_answering(server: FakeBotAPI, core: Core, tmp_path: Path) -> None:
    """A second worker with the same WEB_LISTEN (here: the port held by someone else) still serves people."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        host, port = taken.getsockname()
        changes = {"web_listen": f"{host}:{port}"}
        settings = settings_for(server, tmp_path / "puente.db").model_copy(update=changes)
        stop = asyncio.Event()
        task = asyncio.create_task(serve(settings, core, handle_signals=False, stop=stop))
        try:
            person = server.user(language_code="es")
            await person.send("/start")
            assert (await person.wait_for(lambda m: bool(m.buttons))).buttons
        finally:
            stop.set()
            await asyncio.wait_for(task, timeout=10)
        assert not task.result()
