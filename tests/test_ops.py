"""/healthz, /readyz and /metrics over real loopback HTTP, with a real SQLite store, Redis and the fake Bot API."""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiogram import Bot, Dispatcher
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramRetryAfter
from aiogram.types import Message, Update
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from bot import ops
from bot.metrics import CountCalls, CountUpdates, Metrics, store_depths
from bot.storage import SqlStore, open_store
from bot.storage.tables import broadcast_recipients, broadcasts, outbox, participants, tickets
from bot.telegram.session import LeanSession
from tests.fakebotapi import FakeBotAPI

PERSON = 777000111
NOW = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    opened = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'puente.db'}")
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def fake() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as server:
        yield server


@pytest.fixture
async def bot(fake: FakeBotAPI) -> AsyncIterator[Bot]:
    real = Bot(fake.token, session=LeanSession(api=TelegramAPIServer.from_base(fake.base_url)))
    try:
        yield real
    finally:
        await real.session.close()


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        await client.ping()
    except Exception as exc:
        await client.aclose()
        pytest.skip(f"no Redis answers at 127.0.0.1:6379 ({type(exc).__name__})")
    try:
        yield client
    finally:
        await client.aclose()


async def _get(runner_port: int, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{runner_port}{path}") as response:
        return response.status, await response.text()


@pytest.fixture
def port() -> int:
    return _free_port()


async def _served(port: int, metrics: Metrics, checks: dict[str, ops.Check]) -> aiohttp.web.AppRunner:
    return await ops.serve(f"127.0.0.1:{port}", metrics.registry, checks)


async def test_healthz_answers_ok(port: int) -> None:
    """/healthz is 200 "ok" with no checks at all: the process is alive."""
    runner = await _served(port, Metrics(), {})
    try:
        assert await _get(port, "/healthz") == (200, "ok")
    finally:
        await runner.cleanup()


async def test_readyz_when_everything_answers(port: int, store: SqlStore, redis: Redis, bot: Bot) -> None:
    """/readyz is 200 when the database, Redis and getMe all answer."""
    checks = {
        "database": ops.database_check(store.engine),
        "redis": ops.redis_check(redis),
        "telegram": ops.telegram_check(bot),
    }
    runner = await _served(port, Metrics(), checks)
    try:
        status, body = await _get(port, "/readyz")
        assert (status, body) == (200, '{"ready": true}')
    finally:
        await runner.cleanup()


async def test_readyz_names_a_closed_database(port: int, tmp_path: Path, bot: Bot) -> None:
    """With the store's file gone and its engine disposed, /readyz is 503 naming only "database"."""
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'sub' / 'puente.db'}")
    await store.close()
    (tmp_path / "sub" / "puente.db").unlink()
    (tmp_path / "sub").rmdir()  # SQLite would create the file again; without its directory it cannot
    runner = await _served(
        port, Metrics(), {"database": ops.database_check(store.engine), "telegram": ops.telegram_check(bot)}
    )
    try:
        status, body = await _get(port, "/readyz")
        assert status == 503
        assert body == '{"ready": false, "failed": ["database"]}'
    finally:
        await runner.cleanup()
        await store.engine.dispose()


async def test_readyz_names_a_dead_redis_without_its_url(port: int, store: SqlStore) -> None:
    """Redis on a port nobody listens on: 503 naming "redis", and the body carries no address."""
    dead = _free_port()
    client = Redis.from_url(f"redis://:hunter2@127.0.0.1:{dead}/0", socket_connect_timeout=1)
    runner = await _served(
        port, Metrics(), {"database": ops.database_check(store.engine), "redis": ops.redis_check(client)}
    )
    try:
        status, body = await _get(port, "/readyz")
        assert (status, body) == (503, '{"ready": false, "failed": ["redis"]}')
    finally:
        await runner.cleanup()
        await client.aclose()


async def test_readyz_names_telegram_and_caches_a_good_getme(port: int, fake: FakeBotAPI, bot: Bot) -> None:
    """getMe failing makes /readyz 503 "telegram"; once it answered, probes within 30 s do not call it again."""
    now = [0.0]
    check = ops.telegram_check(bot, clock=lambda: now[0])
    runner = await _served(port, Metrics(), {"telegram": check})
    try:
        fake.fail_next("getMe", status=502)
        assert await _get(port, "/readyz") == (503, '{"ready": false, "failed": ["telegram"]}')
        assert (await _get(port, "/readyz"))[0] == 200
        calls = len(fake.calls_to("getMe"))
        now[0] = 29.0
        assert (await _get(port, "/readyz"))[0] == 200
        assert len(fake.calls_to("getMe")) == calls
        now[0] = 31.0
        assert (await _get(port, "/readyz"))[0] == 200
        assert len(fake.calls_to("getMe")) == calls + 1
    finally:
        await runner.cleanup()


async def _rows(store: SqlStore) -> None:
    """One person with an open and a closed ticket, two pending outbox entries and a sent one, and a running
    broadcast with one recipient pending and one sent."""
    async with store.engine.begin() as conn:
        await conn.execute(
            participants.insert().values(
                user_id=PERSON, chat_id=PERSON, language="es", consented_at=NOW, program_id="p", updated_at=NOW
            )
        )
        await conn.execute(
            participants.insert().values(
                user_id=PERSON + 1, chat_id=PERSON + 1, language="es", consented_at=NOW, program_id="p", updated_at=NOW
            )
        )
        for status in ("waiting", "closed"):
            await conn.execute(
                tickets.insert().values(
                    user_id=PERSON, status=status, share_answers=False, opened_at=NOW, updated_at=NOW
                )
            )
        for sent in (None, None, NOW):
            await conn.execute(
                outbox.insert().values(
                    chat_id=-100, kind="text", payload={"text": "x"}, created_at=NOW, attempts=0, sent_at=sent
                )
            )
        result = await conn.execute(
            broadcasts.insert().values(
                created_by=1, language="es", status="running", versions={}, audience={}, created_at=NOW
            )
        )
        broadcast_id = result.inserted_primary_key[0]
        for user, status in ((PERSON, "pending"), (PERSON + 1, "sent")):
            await conn.execute(
                broadcast_recipients.insert().values(
                    broadcast_id=broadcast_id, user_id=user, chat_id=user, language="es", status=status, attempts=0
                )
            )


async def test_metrics_count_updates_calls_and_queue_depths(port: int, fake: FakeBotAPI, store: SqlStore) -> None:
    """An update through CountUpdates, Bot API calls (one answered 429) through CountCalls and real rows all show in
    /metrics, which parses as Prometheus text; no label value is a chat or user id used here."""
    metrics = Metrics(store_depths(store.engine))
    session = LeanSession(api=TelegramAPIServer.from_base(fake.base_url))
    session.middleware(CountCalls(metrics))
    bot = Bot(fake.token, session=session)
    person = fake.user(PERSON)
    dispatcher = Dispatcher()
    dispatcher.update.outer_middleware(CountUpdates(metrics))

    @dispatcher.message()
    async def echo(message: Message) -> None:
        await message.answer("hola")

    try:
        await _rows(store)
        update = Update.model_validate(
            {
                "update_id": 1,
                "message": {
                    "message_id": 1,
                    "date": 0,
                    "chat": {"id": person.id, "type": "private", "first_name": "Ana"},
                    "from": {"id": person.id, "is_bot": False, "first_name": "Ana", "username": "ana_ve"},
                    "text": "hola",
                },
            }
        )
        await dispatcher.feed_update(bot, update)
        fake.fail_next("sendMessage", status=429, retry_after=3)
        with pytest.raises(TelegramRetryAfter):
            await bot.send_message(person.id, "otra vez")
        await metrics.refresh()
        runner = await _served(port, metrics, {})
        try:
            status, exposition = await _get(port, "/metrics")
        finally:
            await runner.cleanup()
    finally:
        await bot.session.close()

    assert status == 200
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(exposition)
        for s in family.samples
    }
    assert samples[("puente_updates_handled_total", (("outcome", "ok"), ("type", "message")))] == 1
    assert samples[("puente_update_handling_seconds_count", (("type", "message"),))] == 1
    assert samples[("puente_bot_api_calls_total", (("method", "sendMessage"), ("outcome", "ok")))] == 1
    assert samples[("puente_bot_api_calls_total", (("method", "sendMessage"), ("outcome", "retry_after")))] == 1
    assert samples[("puente_bot_api_429_total", (("lane", "people"),))] == 1
    assert samples[("puente_outbox_depth", ())] == 2
    assert samples[("puente_broadcast_recipients_depth", ())] == 1
    assert samples[("puente_open_tickets_depth", ())] == 1
    labels = {value for (_, pairs) in samples for _, value in pairs}
    for personal in (str(PERSON), str(PERSON + 1), "ana_ve", "Ana", "hola", "otra vez"):
        assert personal not in labels


async def test_a_failing_handler_counts_as_error() -> None:
    """An exception in handling is counted with outcome "error" and still reaches the caller."""
    metrics = Metrics()
    middleware = CountUpdates(metrics)
    update = Update.model_validate(
        {
            "update_id": 5,
            "callback_query": {
                "id": "1",
                "from": {"id": PERSON, "is_bot": False, "first_name": "Ana"},
                "chat_instance": "c",
                "data": "x",
            },
        }
    )

    async def boom(event: object, data: dict[str, object]) -> None:
        raise RuntimeError("handler broke")

    with pytest.raises(RuntimeError):
        await middleware(boom, update, {})
    assert metrics.updates.labels("callback_query", "error")._value.get() == 1
    assert metrics.updates.labels("callback_query", "ok")._value.get() == 0


async def test_a_depth_that_cannot_be_read_keeps_its_last_value() -> None:
    """A failed read (the database away for a moment) leaves the gauge at its last value; sync readers work too."""
    values: list[object] = [4, RuntimeError("database away")]

    def read() -> int:
        value = values.pop(0)
        if isinstance(value, Exception):
            raise value
        assert isinstance(value, int)
        return value

    metrics = Metrics({"outbox": read})
    await metrics.refresh()
    await metrics.refresh()
    assert metrics.registry.get_sample_value("puente_outbox_depth") == 4
    assert values == []
