"""Telegram's real per-chat limit (one message a second to a private chat, bursts of three), not scaled down.

The other e2e tests run the fake's limits ten times faster to stay quick; this one runs a whole conversation at
Telegram's own pace, in each language at once (every chat has its own limit): a questionnaire, its result and
/mydata. Nothing may be refused with 429, and the figures (messages, 429s, how long) go in the run's summary.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.app import Core, serve
from bot.texts import T
from tests.conftest import FIGURES
from tests.e2e.conftest import ELIGIBLE, begin, settings_for
from tests.fakebotapi import FakeBotAPI, FakeUser

#: Telegram's limits: about one message a second to one private chat with short bursts of three, 30 a second in
#: all, 20 a minute into a group.
PER_CHAT_RATE = 1.0
PER_CHAT_BURST = 3
LANGUAGES = ("es", "ht", "en")

#: The calls the fake meters (tests/fakebotapi/server.py, `_take_send_slot`).
METERED = {"sendMessage", "sendPhoto", "sendDocument", "copyMessage", "editMessageText", "editMessageReplyMarkup"}


@dataclass
class Run:
    lang: str
    questionnaire: float = 0.0
    result: float = 0.0
    mydata: float = 0.0
    mydata_at: float = 0.0  # when /mydata was sent: what came before belongs to the questionnaire and its result


def buttons_for(question: str) -> object:
    return lambda m: any(b.data.startswith(f"a:{question}:") for row in m.buttons for b in row)


async def converse(user: FakeUser, core: Core, lang: str) -> Run:
    """/start to the result, then /mydata, answering the moment each question is on screen."""
    run = Run(lang)
    began = time.monotonic()
    await begin(user, lang)
    for (question, option), (following, _) in zip(ELIGIBLE, [*ELIGIBLE[1:], ("", "")], strict=True):
        await user.tap(data=f"a:{question}:{option}")
        if following:
            await user.wait_for(buttons_for(following), timeout=30)  # type: ignore[arg-type]
    asked = time.monotonic()
    run.questionnaire = asked - began
    # The result is several messages, paced: it is complete once the chat has been quiet for well over a second.
    await user.wait_idle(quiet=2.5, timeout=60)
    run.result = time.monotonic() - asked - 2.5
    title = core.translator.text(lang, T.MYDATA_TITLE)
    asked = run.mydata_at = time.monotonic()
    await user.send("/mydata")
    await user.wait_for(lambda m: m.text.startswith(title), timeout=30)
    await user.wait_idle(quiet=2.5, timeout=30)
    run.mydata = time.monotonic() - asked - 2.5
    return run


async def test_a_conversation_in_each_language_keeps_to_telegrams_per_chat_limit(
    server: FakeBotAPI, core: Core, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A full questionnaire, its result and /mydata in es, ht and en at once, against Telegram's real limits
    (1 a second per private chat, bursts of 3): not one 429, and everyone's result arrives whole."""
    server.set_rate_limits(
        global_per_second=30, per_chat_per_second=PER_CHAT_RATE, per_chat_burst=PER_CHAT_BURST, per_group_per_minute=20
    )
    settings = settings_for(server, tmp_path / "puente.db").model_copy(
        update={"private_chat_rate": PER_CHAT_RATE, "private_chat_burst": PER_CHAT_BURST}
    )
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, core, handle_signals=False, stop=stop))
    users = {lang: server.user(language_code="es" if lang == "es" else "fr") for lang in LANGUAGES}
    try:
        runs = await asyncio.gather(*(converse(users[lang], core, lang) for lang in LANGUAGES))
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)

    for run in runs:
        user = users[run.lang]
        calls = [c for c in server.calls if c.chat_id == user.id and c.method in METERED]
        refused = sum(c.status == 429 for c in calls)
        in_questionnaire = sum(c.status == 429 for c in calls if c.at < run.mydata_at)
        texts = [m.text for m in user.messages]
        request.config.stash[FIGURES].append(
            f"pace {run.lang}: {sum(c.ok for c in calls)} messages and edits, {refused} × 429 "
            f"({in_questionnaire} before /mydata); questionnaire "
            f"{run.questionnaire:.1f} s, result {run.result:.1f} s, /mydata {run.mydata:.1f} s "
            f"(Telegram's 1/s per chat, burst {PER_CHAT_BURST})"
        )
        assert any(core.translator.text(run.lang, "outcome.likely_eligible").split("\n")[0] in t for t in texts)
        assert any(core.translator.text(run.lang, "info.safety").split("\n")[0] in t for t in texts)
    assert server.stats.rate_limited == 0, [c.summary() for c in server.calls if c.status == 429]
