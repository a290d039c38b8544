"""`python -m bot serve --webhook`: the real bot as its own process, with the fake Bot API delivering webhooks."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import replace

import aiohttp

from tests.e2e.conftest import BotProcess, answer, begin, kill_9_mid_questionnaire, with_answers
from tests.fakebotapi import FakeBotAPI

SECRET = "puente-webhook_secret-1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def webhook_mode(process: BotProcess) -> tuple[BotProcess, str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram"
    env = {**process.env, "WEBHOOK_URL": url, "WEBHOOK_LISTEN": f"127.0.0.1:{port}", "WEBHOOK_SECRET": SECRET}
    return replace(process, env=env, args=("serve", "--webhook")), url


async def test_webhook_questionnaire_survives_kill_9(server: FakeBotAPI, bot_process: BotProcess) -> None:
    """Registered with its secret; a person goes through the questionnaire; kill -9 mid-way loses nothing."""
    webhook, url = webhook_mode(bot_process)
    try:
        await kill_9_mid_questionnaire(server, webhook)
        assert server.webhook is not None
        assert (server.webhook.config.url, server.webhook.config.secret_token) == (url, SECRET)
        assert len(server.calls_to("setWebhook")) == 2  # registered again at the restart, never polled
        assert server.calls_to("getUpdates") == []
    finally:
        webhook.stop()


async def test_each_tap_is_answered_in_the_webhooks_answer(server: FakeBotAPI, bot_process: BotProcess) -> None:
    """One HTTP call fewer a tap: the button's answer rides on the answer to the POST, and each tap gets one."""
    webhook, _ = webhook_mode(bot_process)
    try:
        await webhook.started(server)
        user = server.user(language_code="es")
        await begin(user, "es")  # the language and the privacy notice: two taps
        for question, option in with_answers()[:3]:
            await answer(user, question, option)
        assert "Pregunta 4" in user.last_message.text
        async with asyncio.timeout(10):
            while len(user.callback_answers) < 5:  # noqa: ASYNC110 (performed by the fake when the POST is answered)
                await asyncio.sleep(0.02)
        assert server.webhook is not None
        answers = server.calls_to("answerCallbackQuery")
        assert [call.ok for call in answers] == [True] * 5
        assert server.webhook.stats.methods_answered == 5  # none of them a request of its own
    finally:
        webhook.stop()


async def test_a_post_without_the_secret_is_refused(server: FakeBotAPI, bot_process: BotProcess) -> None:
    webhook, url = webhook_mode(bot_process)
    try:
        await webhook.started(server)
        forged = {"update_id": 1, "message": {"message_id": 1, "date": 0, "chat": {"id": 1, "type": "private"}}}
        async with aiohttp.ClientSession() as http:
            async with http.post(url, json=forged) as response:
                assert response.status == 401
            async with http.post(url, json=forged, headers={"X-Telegram-Bot-Api-Secret-Token": "guess"}) as response:
                assert response.status == 401
        assert server.calls_to("sendMessage") == []
    finally:
        webhook.stop()
