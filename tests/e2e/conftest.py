"""End-to-end fixtures: the real bot (aiogram, real HTTP session, SQLite) against the fake Bot API on loopback."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.app import Core, serve
from bot.config import Settings
from tests.fakebotapi import FakeBotAPI, FakeUser

ROOT = Path(__file__).resolve().parents[2]

#: A Venezuelan in Mexico since before the cutoff who meets every criterion: (question, option) in the order asked.
ELIGIBLE: list[tuple[str, str]] = [
    ("nationality", "venezuelan"), ("location", "mexico"), ("mexico_entry", "before"), ("mx_pa_irregular", "no"),
    ("us_irregular", "no"), ("removal_order", "no"), ("removal_order_older", "no"), ("other_citizenship", "no"),
    ("other_residence", "no"), ("refugee_status", "no"), ("passport", "valid"), ("supporter", "yes"), ("age", "adult"),
    ("vaccines", "yes"), ("flight", "yes"),
]  # fmt: skip


def with_answers(**changes: str) -> list[tuple[str, str]]:
    """The eligible path with some answers changed (only answers that keep the same questions, but for the one
    question that follows a "no" alone: an order more than five years old is asked only without one since)."""
    path = [(q, changes.get(q, o)) for q, o in ELIGIBLE]
    return [(q, o) for q, o in path if q != "removal_order_older" or dict(path)["removal_order"] == "no"]


#: Telegram's flood control, on in every e2e test: 30 sends a second in all, 20 a minute into a group, and per private
#: chat a burst of 3 and then a steady rate. The per-chat rate runs ten times faster than Telegram's one a second (and
#: the bot is told so), so the suite stays quick while a bot that did not pace a chat still meets 429 at once.
#: tests/e2e/test_pace_e2e.py runs Telegram's real one a second.
GLOBAL_PER_SECOND = 30
PER_GROUP_PER_MINUTE = 20
PER_CHAT_PER_SECOND = 10.0
PER_CHAT_BURST = 3


def telegram_limits(server: FakeBotAPI, *, per_group: int = PER_GROUP_PER_MINUTE, group_window: float = 60.0) -> None:
    """Turn on the e2e flood control; a test that scales the bot's group limit scales the fake's with it."""
    server.set_rate_limits(
        global_per_second=GLOBAL_PER_SECOND,
        per_chat_per_second=PER_CHAT_PER_SECOND,
        per_chat_burst=PER_CHAT_BURST,
        per_group_per_minute=per_group,
        group_window_seconds=group_window,
    )


#: The per-chat pace the bot is told, for a bot started as its own process.
PACE_ENV = {"PRIVATE_CHAT_RATE": str(PER_CHAT_PER_SECOND), "PRIVATE_CHAT_BURST": str(PER_CHAT_BURST)}


@pytest.fixture
async def server() -> AsyncIterator[FakeBotAPI]:
    """The fake Bot API with Telegram's limits on; at the end, the bot must have met no 429 from them.

    Faults a test injects (`fail_next(..., 429)`) are not flood control and do not count; a test that turns the
    limits down on purpose sets `server.stats.rate_limited = 0` once it has checked what it expects."""
    async with FakeBotAPI() as fake:
        telegram_limits(fake)
        yield fake
        refused = [call.summary() for call in fake.calls if call.status == 429]
        assert fake.stats.rate_limited == 0, f"the bot went past Telegram's limits: {refused}"


#: Scripted people answer the moment a reply lands, far faster than anyone reads and taps: flood control would cut
#: them short. tests/e2e/test_hostile_e2e.py tests it with its real settings.
UNLIMITED_FLOOD = 1_000_000


def settings_for(server: FakeBotAPI, database: Path) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        bot_token=server.token,
        telegram_api_url=server.base_url,
        database_url=f"sqlite+aiosqlite:///{database}",
        polling_timeout=2,
        flood_burst=UNLIMITED_FLOOD,
        private_chat_rate=PER_CHAT_PER_SECOND,
        private_chat_burst=PER_CHAT_BURST,
    )


@pytest.fixture
async def bot(server: FakeBotAPI, core: Core, tmp_path: Path) -> AsyncIterator[FakeBotAPI]:
    """The bot polling in this process; yields the server it talks to."""
    stop = asyncio.Event()
    task = asyncio.create_task(
        serve(settings_for(server, tmp_path / "puente.db"), core, handle_signals=False, stop=stop)
    )
    yield server
    stop.set()
    await asyncio.wait_for(task, timeout=10)


@dataclass
class BotProcess:
    """`python -m bot` as a separate process, so a test can kill -9 it like a crash would."""

    env: dict[str, str]
    #: The process's stderr (JSON logs), appended across restarts, for reading when a test fails.
    log: Path
    process: subprocess.Popen[bytes] | None = None
    #: The command line after `python -m bot` (nothing: long polling).
    args: tuple[str, ...] = ()

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot", *self.args], cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=log
            )

    async def started(self, server: FakeBotAPI, timeout: float = 90.0) -> None:  # noqa: ASYNC109
        """Start, then wait until the bot polls (or, in webhook mode, has set its webhook): a loaded machine can take
        many seconds just to import it."""
        ready = "setWebhook" if "--webhook" in self.args else "getUpdates"
        seen = len(server.calls_to(ready))
        self.start()
        async with asyncio.timeout(timeout):
            while len(server.calls_to(ready)) <= seen:  # noqa: ASYNC110 (another process: poll)
                await asyncio.sleep(0.1)

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill9()


@pytest.fixture
def bot_process(server: FakeBotAPI, tmp_path: Path) -> Iterator[BotProcess]:
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"BOT_TOKEN", "DATABASE_URL", "TELEGRAM_API_URL"}},
        "BOT_TOKEN": server.token,
        "TELEGRAM_API_URL": server.base_url,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'puente.db'}",
        "POLLING_TIMEOUT": "2",
        "FLOOD_BURST": str(UNLIMITED_FLOOD),
        **PACE_ENV,
        "LOG_LEVEL": "WARNING",
    }
    handle = BotProcess(env, log=tmp_path / "bot.log")
    yield handle
    handle.stop()


async def begin(user: FakeUser, language: str) -> None:
    """/start, pick the language, accept the privacy notice: the first question is on screen."""
    await user.send("/start")
    await user.wait_for(lambda m: bool(m.buttons))
    await user.tap(data=f"l:{language}")
    await user.wait_for(lambda m: any(b.data.startswith("c:") for row in m.buttons for b in row))
    await user.tap(data=f"c:{language}:1")
    await user.wait_for(lambda m: any(b.data.startswith("a:nationality:") for row in m.buttons for b in row))


async def answer(user: FakeUser, question: str, option: str) -> None:
    """Tap an option by its id (labels differ per language) and wait for what follows to arrive.

    Every answer is followed by a new message (the next question, or the result), which may come
    a moment after the answered question is edited: the bot paces sends to one chat, and a loaded
    CI machine is slower still. So wait for that message first, then for the burst to end."""
    await user.tap(data=f"a:{question}:{option}")
    await user.next_message()
    await user.wait_idle(quiet=0.15)


async def kill_9_mid_questionnaire(server: FakeBotAPI, process: BotProcess) -> None:
    """kill -9 of the bot process mid-questionnaire: after restart the person continues at the same question, and
    the answer given before the crash still counts."""
    await process.started(server)
    user = server.user(language_code="es")
    await begin(user, "es")
    path = with_answers(removal_order="yes")
    for question, option in path[:6]:
        await answer(user, question, option)
    assert "¿También tienes la nacionalidad de otro país" in user.last_message.text

    process.kill9()
    # Sent while the bot is dead: Telegram holds it until the bot polls again (or POSTs it again to the webhook).
    await user.send("/start")
    await process.started(server)
    resumed = await user.wait_for(lambda m: bool(m.buttons), timeout=30)
    assert "¿También tienes la nacionalidad de otro país" in resumed.text
    assert "Pregunta 7" in resumed.text
    for question, option in path[6:]:
        await answer(user, question, option)
    result = next(m.text for m in user.messages if "❌" in m.text)
    assert "deportación" in result  # the removal order answered before the crash still counts
