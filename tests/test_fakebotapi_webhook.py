"""The fake Bot API delivers webhooks as Telegram does (tests/fakebotapi/webhook.py).

A small aiohttp server stands in for the bot's webhook endpoint and answers as each test tells it; the last test
puts aiogram's own webhook handler there, with a dispatcher answering in the webhook response.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramBadRequest, TelegramConflictError
from aiogram.methods import SendMessage
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

from tests.fakebotapi import FakeBotAPI
from tests.fakebotapi.webhook import SECRET_HEADER, Webhook, WebhookConfig
from tests.test_fakebotapi import _check_object, _reference

Answer = Callable[[dict[str, Any]], Awaitable[web.Response]]


@dataclass
class Endpoint:
    """The bot's side of a webhook: records every POST, answers with `answer` (200 and nothing by default)."""

    url: str = ""
    posts: list[tuple[dict[str, Any], str | None]] = field(default_factory=list)
    answer: Answer | None = None
    in_flight: int = 0
    peak: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        update = await request.json()
        self.posts.append((update, request.headers.get(SECRET_HEADER)))
        self.arrived.set()
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            return await self.answer(update) if self.answer else web.Response()
        finally:
            self.in_flight -= 1

    def ids(self) -> list[int]:
        return [update["update_id"] for update, _ in self.posts]

    async def until(self, done: Callable[[], bool], timeout: float = 10.0) -> None:  # noqa: ASYNC109
        async with asyncio.timeout(timeout):
            while not done():
                self.arrived.clear()
                await self.arrived.wait()


@pytest.fixture
async def server() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as fake:
        yield fake


@pytest.fixture
async def bot(server: FakeBotAPI) -> AsyncIterator[Bot]:
    real_bot = Bot(server.token, session=AiohttpSession(api=TelegramAPIServer.from_base(server.base_url)))
    try:
        yield real_bot
    finally:
        await real_bot.session.close()


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/hook"


@pytest.fixture
async def endpoint() -> AsyncIterator[Endpoint]:
    hook = Endpoint()
    app = web.Application()
    app.router.add_post("/hook", hook.handle)
    runner, hook.url = await _serve(app)
    try:
        yield hook
    finally:
        await runner.cleanup()


async def test_updates_are_posted_with_the_secret_and_polling_is_refused(
    server: FakeBotAPI, bot: Bot, endpoint: Endpoint
) -> None:
    await bot.set_webhook(endpoint.url, secret_token="s3cret-_token", allowed_updates=["message"])
    ana = server.user(first_name="Ana")
    await ana.send("hola")
    button = InlineKeyboardButton(text="Sí", callback_data="yes")
    await bot.send_message(ana.id, "¿Seguimos?", reply_markup=InlineKeyboardMarkup(inline_keyboard=[[button]]))
    await ana.tap("Sí")  # a callback_query: not among the allowed updates, never posted
    await ana.send("¿sigues ahí?")
    await endpoint.until(lambda: len(endpoint.posts) == 2)

    assert [update["message"]["text"] for update, _ in endpoint.posts] == ["hola", "¿sigues ahí?"]
    assert {secret for _, secret in endpoint.posts} == {"s3cret-_token"}
    with pytest.raises(TelegramConflictError, match="webhook is active"):
        await bot.get_updates()
    info = await bot.get_webhook_info()
    assert (info.url, info.pending_update_count, info.max_connections) == (endpoint.url, 0, 40)
    assert info.allowed_updates == ["message"]
    reference = _reference()
    _check_object(reference, "WebhookInfo", info.model_dump(exclude_none=True), "getWebhookInfo")


async def test_a_refused_update_is_posted_again_until_it_is_taken(
    server: FakeBotAPI, bot: Bot, endpoint: Endpoint
) -> None:
    refusals = 3

    async def flaky(update: dict[str, Any]) -> web.Response:
        nonlocal refusals
        if refusals:
            refusals -= 1
            return web.Response(status=500)
        return web.Response()

    endpoint.answer = flaky
    await bot.set_webhook(endpoint.url)
    await server.user().send("hola")
    await endpoint.until(lambda: len(endpoint.posts) == 4)
    assert len(set(endpoint.ids())) == 1  # one update, four POSTs: three refused, the fourth taken
    info = await bot.get_webhook_info()
    assert info.pending_update_count == 0
    assert info.last_error_message == "Wrong response from the webhook: 500 Internal Server Error"
    assert server.webhook is not None
    assert server.webhook.stats.refused == 3


async def test_no_more_than_max_connections_in_flight(server: FakeBotAPI, bot: Bot, endpoint: Endpoint) -> None:
    async def slow(update: dict[str, Any]) -> web.Response:
        await asyncio.sleep(0.05)
        return web.Response()

    endpoint.answer = slow
    await bot.set_webhook(endpoint.url, max_connections=3)
    people = [server.user() for _ in range(12)]
    for person in people:
        await person.send("hola")
    await endpoint.until(lambda: len(endpoint.posts) == 12)
    assert endpoint.peak == 3
    assert sorted(endpoint.ids()) == sorted(set(endpoint.ids()))  # each once


async def test_an_update_under_way_when_the_webhook_goes_stays_pending(
    server: FakeBotAPI, bot: Bot, endpoint: Endpoint
) -> None:
    """Delivered means a 2xx came back: an update whose POST never got its answer reaches the bot again."""
    hold = asyncio.Event()

    async def stuck(update: dict[str, Any]) -> web.Response:
        await hold.wait()
        return web.Response()

    endpoint.answer = stuck
    await bot.set_webhook(endpoint.url)
    await server.user().send("hola")
    await endpoint.until(lambda: len(endpoint.posts) == 1)
    await bot.delete_webhook()
    hold.set()

    updates = await bot.get_updates(timeout=0)
    assert [update.message.text for update in updates if update.message] == ["hola"]
    assert (await bot.get_webhook_info()).url == ""


async def test_a_duplicate_is_posted_again_whatever_was_confirmed(
    server: FakeBotAPI, bot: Bot, endpoint: Endpoint
) -> None:
    await bot.set_webhook(endpoint.url)
    update_id = await server.user().send("hola")
    await endpoint.until(lambda: len(endpoint.posts) == 1)
    server.duplicate_update(update_id)
    await endpoint.until(lambda: len(endpoint.posts) == 2)
    assert endpoint.ids() == [update_id, update_id]


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"url": "ftp://127.0.0.1/hook"}, "An HTTPS URL must be provided"),
        ({"url": "https://example.org/hook"}, "loopback addresses only"),
        ({"url": "http://127.0.0.1:9/hook", "secret_token": "not allowed!"}, "unallowed characters"),
        ({"url": "http://127.0.0.1:9/hook", "secret_token": "x" * 257}, "unallowed characters"),
        ({"url": "http://127.0.0.1:9/hook", "max_connections": 0}, "between 1 and 100"),
        ({"url": "http://127.0.0.1:9/hook", "max_connections": 101}, "between 1 and 100"),
    ],
)
async def test_a_webhook_telegram_would_refuse_is_refused(bot: Bot, params: dict[str, Any], detail: str) -> None:
    with pytest.raises(TelegramBadRequest, match=detail):
        await bot.set_webhook(**params)
    assert (await bot.get_webhook_info()).url == ""


async def test_an_endpoint_that_is_down_is_retried(server: FakeBotAPI, bot: Bot) -> None:
    """Nothing listening (a worker restarting): the update waits, then goes to the endpoint once it is up."""
    hook = Endpoint()
    app = web.Application()
    app.router.add_post("/hook", hook.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    probe = web.TCPSite(runner, "127.0.0.1", 0)
    await probe.start()
    port = runner.addresses[0][1]
    await runner.cleanup()  # the port is known and nobody listens on it

    await bot.set_webhook(f"http://127.0.0.1:{port}/hook")
    await server.user().send("hola")
    await asyncio.sleep(0.3)
    info = await bot.get_webhook_info()
    assert info.pending_update_count == 1
    assert info.last_error_message is not None
    assert info.last_error_message.startswith("Connection failed")

    app = web.Application()
    app.router.add_post("/hook", hook.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        await hook.until(lambda: len(hook.posts) == 1)
        assert hook.posts[0][0]["message"]["text"] == "hola"
    finally:
        await runner.cleanup()


async def test_aiogram_webhook_answering_in_the_response(server: FakeBotAPI, bot: Bot) -> None:
    """aiogram's own webhook handler, answering each message in the webhook response: the fake performs the call."""
    dispatcher = Dispatcher()

    @dispatcher.message()
    async def echo(message: Message) -> SendMessage:
        return message.answer(f"eco: {message.text}")

    app = web.Application()
    SimpleRequestHandler(dispatcher, bot, handle_in_background=False, secret_token="puente").register(app, path="/hook")
    runner, url = await _serve(app)
    try:
        await bot.set_webhook(url, secret_token="puente")
        ana = server.user(first_name="Ana")
        await ana.send("hola")
        reply = await ana.next_message()
        assert reply.text == "eco: hola"
        assert server.webhook is not None
        assert server.webhook.stats.methods_answered == 1

        await bot.set_webhook(url, secret_token="wrong")  # aiogram refuses a POST without its secret: 401
        await ana.send("¿hola?")
        await asyncio.sleep(0.3)
        info = await bot.get_webhook_info()
        assert info.pending_update_count == 1
        assert info.last_error_message == "Wrong response from the webhook: 401 Unauthorized"
    finally:
        await runner.cleanup()


def test_webhook_info_reports_only_what_was_set() -> None:
    """WebhookInfo carries the optional fields only once they have a value, and only JSON values."""
    config = WebhookConfig.from_params({"url": "http://127.0.0.1:8443/hook", "max_connections": 7})
    info = Webhook(config).info(pending=2, allowed_updates=None)
    assert json.loads(json.dumps(info)) == info
    assert info == {
        "url": "http://127.0.0.1:8443/hook",
        "has_custom_certificate": False,
        "pending_update_count": 2,
        "max_connections": 7,
    }
