"""The outbox on a real SQLite store: order per chat, Telegram's pace, 429s and errors, and surviving a restart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import SendMessage
from sqlalchemy import event, select

from bot.outbox import NOTICES_PER_CHAT, ChatLimits, Entry, Outbox, bot_deliver
from bot.storage import SqlStore, open_store
from bot.storage.tables import outbox
from tests.fakebotapi import FakeBotAPI

GROUP = -1001000000001
OTHER_GROUP = -1001000000002
PERSON = 7
OTHER_PERSON = 8
METHOD = SendMessage(chat_id=1, text="x")
#: Telegram's limits scaled down: 20 per half second into a group; private and global fast enough not to matter.
FAST = ChatLimits(group_per_window=20, group_window=0.5, private_per_second=100.0, global_per_second=1000.0)


class FakeDeliver:
    """Records every call as (chat_id, text, monotonic time); fails on cue; can hang one chat until released."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, str, float]] = []
        self.sent: list[tuple[int, str, float]] = []
        self.ids: dict[str, int] = {}
        self.failures: dict[str, list[Exception]] = {}
        self.gates: dict[int, asyncio.Event] = {}
        self._changed = asyncio.Condition()
        self._next_id = 500

    async def __call__(self, entry: Entry) -> int:
        text = entry.payload["text"]
        self.calls.append((entry.chat_id, text, time.monotonic()))
        await self._notify()
        try:
            if (gate := self.gates.get(entry.chat_id)) is not None:
                await gate.wait()
            if self.failures.get(text):
                raise self.failures[text].pop(0)
            self._next_id += 1
            self.sent.append((entry.chat_id, text, self.calls[-1][2]))
            self.ids[text] = self._next_id
            return self._next_id
        finally:
            await self._notify()

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def texts(self, chat_id: int) -> list[str]:
        return [text for chat, text, _ in self.sent if chat == chat_id]

    def times(self, chat_id: int) -> list[float]:
        return [at for chat, _, at in self.sent if chat == chat_id]

    async def until(self, predicate: Callable[[], bool], within: float = 5.0) -> None:
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(predicate)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    backend = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'outbox.db'}")
    yield backend
    await backend.close()


@pytest.fixture
def fake() -> FakeDeliver:
    return FakeDeliver()


@pytest.fixture
async def outboxes() -> AsyncIterator[list[Outbox]]:
    made: list[Outbox] = []
    yield made
    for box in made:
        await box.stop(grace=0)


@pytest.fixture
def make(outboxes: list[Outbox], fake: FakeDeliver) -> Callable[..., Outbox]:
    def build(store: SqlStore, **options: Any) -> Outbox:
        options.setdefault("limits", FAST)
        options.setdefault("base_delay", 0.01)
        box = Outbox(store, options.pop("deliver", fake), **options)
        outboxes.append(box)
        return box

    return build


async def put_texts(box: Outbox, chat_id: int, count: int, prefix: str = "m") -> list[int]:
    return [await box.put(chat_id, "text", {"text": f"{prefix}{i}"}) for i in range(count)]


async def rows(store: SqlStore) -> dict[int, Any]:
    async with store.engine.connect() as conn:
        return {row.id: row for row in await conn.execute(select(outbox))}


async def test_a_burst_to_a_group_arrives_whole_in_order_and_within_the_window(store, fake, make) -> None:
    """A hundred messages into one group all arrive, in order, never more than 20 in any half second."""
    box = make(store)
    await box.start()
    started = time.monotonic()
    await put_texts(box, GROUP, 100)
    await box.drain(timeout=8)
    assert fake.texts(GROUP) == [f"m{i}" for i in range(100)]
    at = fake.times(GROUP)
    assert all(at[i + 20] - at[i] >= FAST.group_window for i in range(len(at) - 20))
    assert time.monotonic() - started < 4 * FAST.group_window + 1.5  # paced by the window, not slower
    assert all(row.sent_at is not None and row.sent_message_id for row in (await rows(store)).values())


async def test_a_group_waiting_for_its_window_does_not_hold_up_a_private_chat(store, fake, make) -> None:
    """While a group waits out its window, a private chat's messages keep flowing."""
    box = make(store)
    await put_texts(box, GROUP, 25, prefix="g")
    await put_texts(box, PERSON, 10, prefix="p")
    await box.start()
    await box.drain(timeout=3)
    assert fake.texts(GROUP) == [f"g{i}" for i in range(25)]
    assert fake.texts(PERSON) == [f"p{i}" for i in range(10)]
    # The group's 21st message waited for its window; the person's last one did not.
    assert fake.times(PERSON)[-1] < fake.times(GROUP)[0] + FAST.group_window <= fake.times(GROUP)[20]


async def test_a_hanging_send_to_one_chat_does_not_block_another(store, fake, make) -> None:
    """A send stuck in one group never delays another chat, and that group's later rows wait their turn."""
    fake.gates[GROUP] = asyncio.Event()
    box = make(store)
    await box.start()
    await put_texts(box, GROUP, 5, prefix="g")
    await put_texts(box, OTHER_PERSON, 10, prefix="p")
    await fake.until(lambda: len(fake.texts(OTHER_PERSON)) == 10)
    assert [text for chat, text, _ in fake.calls if chat == GROUP] == ["g0"]
    fake.gates[GROUP].set()
    await box.drain(timeout=3)
    assert fake.texts(GROUP) == [f"g{i}" for i in range(5)]


async def test_429_holds_that_chat_for_retry_after_then_continues_in_order(store, fake, make) -> None:
    """A 429 on the fifth message holds that chat for retry_after, other chats go on, then the rest follow in order."""
    fake.failures["m4"] = [TelegramRetryAfter(METHOD, "Too Many Requests: retry after 1", retry_after=1)]
    box = make(store)
    await put_texts(box, PERSON, 8)
    await box.start()
    await fake.until(lambda: any(text == "m4" for _, text, _ in fake.calls))
    await put_texts(box, OTHER_PERSON, 5, prefix="o")
    await box.drain(timeout=4)
    assert fake.texts(PERSON) == [f"m{i}" for i in range(8)]
    person_calls = [(text, at) for chat, text, at in fake.calls if chat == PERSON]
    assert [text for text, _ in person_calls] == ["m0", "m1", "m2", "m3", "m4", "m4", "m5", "m6", "m7"]
    assert person_calls[5][1] - person_calls[4][1] >= 1.0
    assert fake.times(OTHER_PERSON)[-1] < person_calls[5][1]  # the other chat went on during the hold
    assert all(row.attempts == 0 for row in (await rows(store)).values())  # a 429 is not a failed attempt


async def test_transient_errors_are_retried_then_succeed(store, fake, make) -> None:
    """Server and network errors are retried with backoff, the row keeps its place, and then it goes through."""
    fake.failures["m2"] = [
        TelegramServerError(METHOD, "Internal Server Error"),
        TelegramNetworkError(METHOD, "timeout"),
    ]
    box = make(store)
    ids = await put_texts(box, PERSON, 5)
    await box.start()
    await box.drain(timeout=3)
    assert fake.texts(PERSON) == [f"m{i}" for i in range(5)]
    assert [text for _, text, _ in fake.calls].count("m2") == 3
    stored = await rows(store)
    assert stored[ids[2]].attempts == 2
    assert stored[ids[2]].failed is None


async def test_transient_errors_give_up_after_max_attempts(store, fake, make) -> None:
    """A row that keeps failing transiently is marked failed after max_attempts, and the next rows still go."""
    fake.failures["m1"] = [TelegramServerError(METHOD, "Bad Gateway") for _ in range(3)]
    box = make(store, max_attempts=3)
    ids = await put_texts(box, PERSON, 3)
    await box.start()
    await box.drain(timeout=3)
    assert fake.texts(PERSON) == ["m0", "m2"]
    row = (await rows(store))[ids[1]]
    assert row.failed.startswith("gave up: TelegramServerError")
    assert (row.attempts, row.sent_at) == (3, None)


async def test_a_permanent_error_fails_that_row_and_the_next_ones_still_go(store, fake, make) -> None:
    """A refusal (400) marks that row failed, with a reason that does not quote the message, and the queue moves on."""
    refusal = 'Bad Request: can\'t parse entities: Unsupported start tag "secret" at byte offset 0'
    fake.failures["secret words 2"] = [TelegramBadRequest(METHOD, refusal)]
    box = make(store)
    ids = await put_texts(box, GROUP, 5, prefix="secret words ")
    await box.start()
    await box.drain(timeout=3)
    assert fake.texts(GROUP) == ["secret words 0", "secret words 1", "secret words 3", "secret words 4"]
    row = (await rows(store))[ids[2]]
    assert row.failed == (
        'TelegramBadRequest: Bad Request: can\'t parse entities: Unsupported start tag "…" at byte offset 0'
    )
    assert await box.pending() == 0


async def test_on_refused_hears_of_permanent_refusals_only(store, fake, make) -> None:
    """on_refused is told of a row refused for good, after it is recorded failed (it may queue a new row from
    there); a row that only needed retrying is not reported."""
    fake.failures["refused"] = [TelegramBadRequest(METHOD, "Bad Request: message thread not found")]
    fake.failures["retried"] = [TelegramServerError(METHOD, "Bad Gateway")]
    told: list[tuple[str, str]] = []

    async def on_refused(entry: Entry, error: TelegramAPIError) -> None:
        told.append((entry.payload["text"], error.message))
        await box.put(GROUP, "text", {"text": "queued again"})

    box = make(store, on_refused=on_refused)
    for text in ("refused", "retried", "fine"):
        await box.put(GROUP, "text", {"text": text})
    await box.start()
    await box.drain(timeout=5)
    assert told == [("refused", "Bad Request: message thread not found")]
    assert fake.texts(GROUP) == ["retried", "fine", "queued again"]


async def test_a_new_process_sends_what_the_old_one_left_exactly_once_in_order(tmp_path, fake, make) -> None:
    """Stopped after about ten of thirty, a new Outbox on the same database sends the rest: each once, in order."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'restart.db'}"
    first_store = await open_store(url)
    ten_sent = asyncio.Event()

    async def on_sent(_entry: Entry, _message_id: int) -> None:
        if len(fake.sent) >= 10:
            ten_sent.set()

    slow = ChatLimits(group_per_window=5, group_window=0.1, private_per_second=100.0, global_per_second=1000.0)
    first = make(first_store, limits=slow, on_sent=on_sent)
    await put_texts(first, GROUP, 30)
    await first.start()
    async with asyncio.timeout(3):
        await ten_sent.wait()
    await first.stop()
    await first_store.close()
    assert 10 <= len(fake.sent) < 30

    second_store = await open_store(url)
    try:
        second = make(second_store, limits=slow)
        assert await second.pending() == 30 - len(fake.sent)
        await second.start()
        await second.drain(timeout=5)
        assert fake.texts(GROUP) == [f"m{i}" for i in range(30)]
        await second.stop()
    finally:
        await second_store.close()


async def test_a_send_cut_off_by_the_process_dying_is_sent_again(tmp_path, fake, make) -> None:
    """A row in flight when the worker is killed stays pending and goes out on the next start (at least once)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'killed.db'}"
    first_store = await open_store(url)
    fake.gates[PERSON] = asyncio.Event()
    first = make(first_store)
    await put_texts(first, PERSON, 2)
    await first.start()
    await fake.until(lambda: len(fake.calls) == 1)
    await first.stop(grace=0)  # the send is cut off mid-flight, as by kill -9
    await first_store.close()

    second_store = await open_store(url)
    try:
        fake.gates[PERSON].set()
        second = make(second_store)
        await second.start()
        await second.drain(timeout=3)
        assert [text for _, text, _ in fake.calls] == ["m0", "m0", "m1"]
        assert fake.texts(PERSON) == ["m0", "m1"]
        await second.stop()
    finally:
        await second_store.close()


async def test_put_in_a_transaction_that_rolls_back_enqueues_nothing(store, fake, make) -> None:
    """A row put in the caller's transaction is gone if it rolls back, and sent once it commits."""
    box = make(store)
    await box.start()

    async def put_then_fail() -> None:
        async with store.writing() as conn:
            await box.put(PERSON, "text", {"text": "rolled back"}, conn=conn)
            raise RuntimeError("caller failed")

    with pytest.raises(RuntimeError, match="caller failed"):
        await put_then_fail()
    assert await box.pending() == 0
    async with store.writing() as conn:
        await box.put(PERSON, "text", {"text": "committed"}, conn=conn)
    await box.drain(timeout=2)  # the worker was woken by the commit, not by a later put
    assert fake.texts(PERSON) == ["committed"]


async def test_on_sent_receives_the_message_ids(store, fake, make) -> None:
    """on_sent is called once per sent row with the entry and the message id Telegram gave, as stored."""
    seen: list[tuple[int, str, int]] = []

    async def on_sent(entry: Entry, message_id: int) -> None:
        seen.append((entry.id, entry.payload["text"], message_id))

    box = make(store, on_sent=on_sent)
    ids = await put_texts(box, GROUP, 3)
    await box.put(GROUP, "text", {"text": "in topic"}, thread_id=42)
    await box.start()
    await box.drain(timeout=2)
    assert [(row_id, text) for row_id, text, _ in seen[:3]] == [(ids[i], f"m{i}") for i in range(3)]
    assert all(message_id == fake.ids[text] for _, text, message_id in seen)
    stored = await rows(store)
    assert all(stored[row_id].sent_message_id == message_id for row_id, _, message_id in seen)
    assert stored[seen[3][0]].thread_id == 42


async def test_the_hot_path_is_one_select_and_one_update_per_row_without_spinning(
    store, fake, make, monkeypatch
) -> None:
    """Forty rows through a paced group cost about one SELECT and two UPDATEs each (claim, then sent), and the loop
    never spins."""
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement.lstrip().split(None, 1)[0].upper())

    box = make(store, limits=ChatLimits(20, 0.25, 100.0, 1000.0))
    await put_texts(box, GROUP, 40)
    wakeups = 0
    dispatch = box._dispatch

    def counted(now: float) -> float:
        nonlocal wakeups
        wakeups += 1
        return dispatch(now)

    monkeypatch.setattr(box, "_dispatch", counted)
    event.listen(store.engine.sync_engine, "before_cursor_execute", record)
    await box.start()
    await fake.until(lambda: len(fake.sent) == 40)
    await box.stop()
    event.remove(store.engine.sync_engine, "before_cursor_execute", record)
    assert statements.count("UPDATE") == 2 * 40 + 1  # and one releasing this worker's claims at stop
    assert statements.count("SELECT") <= 40 + 2 + 2  # and a look for dead workers' claims, and a poll or so
    assert wakeups <= 2 * 40 + 5


async def test_stop_right_after_start_returns_and_the_worker_can_start_again(store, fake, make) -> None:
    """Stopping a worker that has not run yet returns at once, and a later start still sends."""
    box = make(store)
    await box.put(PERSON, "text", {"text": "later"})
    await box.start()
    async with asyncio.timeout(2):
        await box.stop()
    await box.start()
    await box.drain(timeout=2)
    assert fake.texts(PERSON) == ["later"]


async def test_put_refuses_malformed_entries(store, make) -> None:
    """A wrong kind or payload is refused at put, not discovered at send time."""
    box = make(store)
    with pytest.raises(ValueError, match="kind"):
        await box.put(PERSON, "photo", {"text": "x"})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="text"):
        await box.put(PERSON, "text", {"from_chat_id": 1, "message_id": 2})
    with pytest.raises(ValueError, match="copy"):
        await box.put(PERSON, "copy", {"text": "x"})
    assert await box.put(GROUP, "copy", {"from_chat_id": PERSON, "message_id": 9}) > 0


async def test_through_aiogram_the_fake_bot_api_never_answers_429(store, outboxes) -> None:
    """Through a real aiogram Bot, against a Bot API enforcing the scaled group limit: all land in order, no 429."""
    async with FakeBotAPI() as server:
        server.set_rate_limits(per_chat_per_second=100, per_group_per_minute=20, group_window_seconds=0.5)
        staff = server.group(forum=True)
        ana = server.user(first_name="Ana")
        original = await ana.send("hola, necesito ayuda")
        bot = Bot(server.token, session=AiohttpSession(api=TelegramAPIServer.from_base(server.base_url)))
        try:
            thread = (await bot.create_forum_topic(staff.chat.id, "Ana")).message_thread_id
            box = Outbox(store, bot_deliver(bot), limits=FAST)
            outboxes.append(box)
            await box.start()
            for i in range(20):
                await box.put(staff.chat.id, "text", {"text": f"m{i}"}, thread_id=thread)
            await box.put(staff.chat.id, "copy", {"from_chat_id": ana.id, "message_id": original}, thread_id=thread)
            await put_texts(box, staff.chat.id, 20, prefix="n")  # the general topic
            await box.drain(timeout=5)
        finally:
            await bot.session.close()
        assert [m.text for m in staff.messages_in(thread)] == [f"m{i}" for i in range(20)] + ["hola, necesito ayuda"]
        assert [m.text for m in staff.messages if m.thread_id is None] == [f"n{i}" for i in range(20)]
        assert server.stats.rate_limited == 0


async def test_notices_wait_behind_every_row_of_their_chat(store: SqlStore, fake: FakeDeliver, make: Any) -> None:
    """A notice goes only once its chat has no row pending, and leaves half the group's window to rows."""
    box = make(store)
    await put_texts(box, GROUP, 30)
    box.notice(GROUP, "notice")
    await box.start()
    await fake.until(lambda: "notice" in fake.texts(GROUP))
    texts = fake.texts(GROUP)
    assert texts == [f"m{i}" for i in range(30)] + ["notice"]
    at = dict(zip(texts, fake.times(GROUP), strict=True))
    assert at["notice"] - at["m20"] >= 0.5 * FAST.group_window * 0.9  # m20..m29 filled half a fresh window


async def test_a_chat_keeps_only_its_latest_notices(store: SqlStore, fake: FakeDeliver, make: Any) -> None:
    """Notices are best effort: a chat keeps its latest few, and a refused one is dropped, not retried."""
    box = make(store)
    fake.failures["n7"] = [TelegramBadRequest(METHOD, "message thread not found")]
    for i in range(10):
        box.notice(GROUP, f"n{i}")
    await box.start()
    await fake.until(lambda: len(fake.calls) == NOTICES_PER_CHAT)
    await asyncio.sleep(0.1)  # time enough for a retry, were there one
    assert [text for _, text, _ in fake.calls] == [f"n{i}" for i in range(10 - NOTICES_PER_CHAT, 10)]
    assert fake.texts(GROUP) == ["n8", "n9"]
    assert await box.pending() == 0
