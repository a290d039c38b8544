"""Several workers on one database: the outbox and broadcasts are claimed with a lease, so each row is sent once
(beyond what was in flight when a worker died), a chat's order holds, and a dead worker's rows are taken over."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, insert, select, update

from bot.app import Core
from bot.broadcast import Broadcaster
from bot.outbox import ChatLimits, Entry, Outbox
from bot.outgoing import Outgoing
from bot.storage import SqlStore, open_store
from bot.storage.broadcasts import Audience, Broadcasts, BroadcastStatus, RecipientStatus, Version
from bot.storage.tables import broadcast_recipients, broadcasts, outbox, participants
from bot.telegram.pacing import Pacer
from tests.test_storage_contract import POSTGRES_URL, postgres_reachable

FAST = ChatLimits(group_per_window=50, group_window=0.5, private_per_second=200.0, global_per_second=2000.0)
GROUP = -1001000000001
NOW = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)
ADMIN = 900


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@pytest.fixture(params=["sqlite", "postgres"])
async def stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[SqlStore, SqlStore]]:
    """Two workers' stores on one database: two engines on PostgreSQL (two processes); on SQLite, where only one
    process writes, one store both workers share."""
    if request.param == "sqlite":
        one = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'claims.db'}")
        yield one, one
        await one.close()
        return
    if not postgres_reachable():
        pytest.skip("no PostgreSQL on 127.0.0.1:5432")
    first, second = await open_store(POSTGRES_URL), await open_store(POSTGRES_URL)
    async with first.engine.begin() as conn:
        for table in (outbox, broadcast_recipients, broadcasts, participants):
            await conn.execute(delete(table))
    yield first, second
    await first.close()
    await second.close()


async def until(predicate: Callable[[], Any], within: float = 10.0) -> None:
    """Wait for a condition (polled; the workers run in other tasks) with a deadline."""
    async with asyncio.timeout(within):
        while not await _holds(predicate):  # noqa: ASYNC110 (the conditions span processes' databases: no event)
            await asyncio.sleep(0.01)


async def _drained(box: Outbox) -> bool:
    return await box.pending() == 0


async def _holds(predicate: Callable[[], Any]) -> bool:
    value = predicate()
    if asyncio.iscoroutine(value):
        value = await value
    return bool(value)


# ---------------------------------------------------------------------------------------------------- the outbox


class Deliveries:
    """A fake `Deliver` per worker, all writing to one log of (worker, chat, text); a chat can be made to hang."""

    def __init__(self) -> None:
        self.log: list[tuple[str, int, str]] = []
        self.hang: dict[int, asyncio.Event] = {}
        self._ids = itertools.count(1000)

    def for_worker(self, worker: str) -> Callable[[Entry], Any]:
        async def deliver(entry: Entry) -> int:
            self.log.append((worker, entry.chat_id, entry.payload["text"]))
            if (gate := self.hang.get(entry.chat_id)) is not None:
                await gate.wait()
            await asyncio.sleep(0.002)  # long enough for the other worker to run in between
            return next(self._ids)

        return deliver

    def texts(self, chat_id: int) -> list[str]:
        return [text for _, chat, text in self.log if chat == chat_id]


@pytest.fixture
async def boxes() -> AsyncIterator[list[Outbox]]:
    made: list[Outbox] = []
    yield made
    for box in made:
        await box.stop(grace=0)


def worker(made: list[Outbox], store: SqlStore, deliveries: Deliveries, name: str, **options: Any) -> Outbox:
    options.setdefault("limits", FAST)
    options.setdefault("poll", 0.05)
    options.setdefault("base_delay", 0.01)
    box = Outbox(store, deliveries.for_worker(name), worker_id=name, **options)
    made.append(box)
    return box


async def row(store: SqlStore, row_id: int) -> Any:
    async with store.engine.connect() as conn:
        return (await conn.execute(select(outbox).where(outbox.c.id == row_id))).one()


async def test_two_workers_send_every_entry_exactly_once_in_order_per_chat(stores, boxes) -> None:
    """Two outboxes on one database, rows put through both: each row goes out once, each chat in order, and both
    workers take part."""
    deliveries = Deliveries()
    a = worker(boxes, stores[0], deliveries, "a")
    b = worker(boxes, stores[1], deliveries, "b")
    chats = [GROUP - n for n in range(8)] + [70 + n for n in range(4)]
    for n in range(10):
        for chat in chats:
            await (a if (n + chat) % 2 else b).put(chat, "text", {"text": f"{chat}:{n}"})
    await a.start()
    await b.start()
    await until(lambda: len(deliveries.log) >= 10 * len(chats))
    await until(lambda: _drained(a))
    await a.stop()
    await b.stop()
    assert len(deliveries.log) == 10 * len(chats)  # nothing twice
    for chat in chats:
        assert deliveries.texts(chat) == [f"{chat}:{n}" for n in range(10)]
    if stores[0] is not stores[1]:
        # Two processes on PostgreSQL share the chats. (In one SQLite process the worker that finishes a chat's row
        # claims its next head at once, so one worker may keep them all; order and once are what count there.)
        assert {w for w, _, _ in deliveries.log} == {"a", "b"}


async def test_a_killed_workers_chat_is_taken_over_after_its_lease_and_stays_in_order(stores, boxes) -> None:
    """A worker killed mid-send (nothing released) keeps its chat until its lease passes; then the other worker
    sends the chat's rows, the one in flight again first, in order."""
    deliveries = Deliveries()
    deliveries.hang[GROUP] = asyncio.Event()
    a = worker(boxes, stores[0], deliveries, "a", lease=0.6)
    b = worker(boxes, stores[1], deliveries, "b")
    ids = [await a.put(GROUP, "text", {"text": f"m{n}"}) for n in range(3)]
    await a.start()
    await until(lambda: deliveries.log == [("a", GROUP, "m0")])

    async def nothing() -> None:
        return None

    a._release_claims = nothing  # type: ignore[method-assign]  # as by kill -9: no hand-back
    killed_at = time.monotonic()
    await a.stop(grace=0)
    del deliveries.hang[GROUP]
    assert (await row(stores[0], ids[0])).claimed_by == "a"

    await b.start()
    await until(lambda: len(deliveries.log) == 4)
    assert time.monotonic() - killed_at >= 0.5  # not before a's lease ran out
    assert deliveries.log[1:] == [("b", GROUP, "m0"), ("b", GROUP, "m1"), ("b", GROUP, "m2")]
    await until(lambda: _drained(b))
    assert {(await row(stores[1], i)).claimed_by for i in ids} == {"b"}


async def test_a_dead_workers_expired_claim_is_taken_at_once_a_live_one_is_not(stores, boxes) -> None:
    """Rows left claimed with a lease in the past go out at once; a chat whose head another worker holds with a
    live lease waits for it, and its later rows do not jump ahead."""
    deliveries = Deliveries()
    b = worker(boxes, stores[1], deliveries, "b")
    dead = await b.put(GROUP, "text", {"text": "dead's"})
    held = await b.put(70, "text", {"text": "held 0"})
    await b.put(70, "text", {"text": "held 1"})
    now = _utc_now()
    async with stores[0].writing() as conn:
        await conn.execute(
            update(outbox).where(outbox.c.id == dead).values(claimed_by="x", lease_until=now - dt.timedelta(seconds=5))
        )
        await conn.execute(
            update(outbox).where(outbox.c.id == held).values(claimed_by="y", lease_until=now + dt.timedelta(seconds=1))
        )
    await b.start()
    await until(lambda: deliveries.texts(GROUP) == ["dead's"], within=0.8)
    assert deliveries.texts(70) == []  # y still holds the head: the whole chat waits
    await until(lambda: deliveries.texts(70) == ["held 0", "held 1"], within=5)


async def test_a_stale_workers_finish_does_not_overwrite_the_new_owner(stores, boxes) -> None:
    """A worker whose lease lapsed mid-send and was taken over records nothing when its send returns: the row stays
    as the new owner wrote it."""
    deliveries = Deliveries()
    deliveries.hang[GROUP] = asyncio.Event()
    a = worker(boxes, stores[0], deliveries, "a")
    [first] = [await a.put(GROUP, "text", {"text": "m0"})]
    await a.start()
    await until(lambda: len(deliveries.log) == 1)
    async with stores[0].writing() as conn:  # a froze past its lease
        await conn.execute(update(outbox).where(outbox.c.id == first).values(lease_until=_utc_now() - dt.timedelta(1)))
    b = Outbox(stores[1], _sent_as(4242), worker_id="b", limits=FAST, poll=0.05)
    boxes.append(b)
    await b.start()
    await until(lambda: _drained(b))
    deliveries.hang[GROUP].set()  # a's send returns now, late
    await until(lambda: a._in_flight == 0)
    taken = await row(stores[0], first)
    assert (taken.claimed_by, taken.sent_message_id) == ("b", 4242)


def _sent_as(message_id: int) -> Callable[[Entry], Any]:
    async def deliver(_entry: Entry) -> int:
        return message_id

    return deliver


# ---------------------------------------------------------------------------------------------------- broadcasts


class Board:
    """The admin's chat: posts (progress message, report) and edits, by worker."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, str]] = []
        self.edits: list[tuple[str, str]] = []
        self._ids = itertools.count(1)

    def for_worker(self, name: str) -> Any:
        board = self

        class One:
            async def post(self, chat_id: int, message: Outgoing) -> int | None:
                board.posts.append((name, message.text))
                return next(board._ids)

            async def edit(self, chat_id: int, message_id: int, message: Outgoing) -> None:
                board.edits.append((name, message.text))

        return One()


class Sends:
    def __init__(self, delay: float) -> None:
        self.log: list[tuple[str, int]] = []
        self.delay = delay

    def for_worker(self, name: str) -> Callable[[int, Version], Any]:
        async def send(chat_id: int, _version: Version) -> None:
            self.log.append((name, chat_id))
            await asyncio.sleep(self.delay)

        return send


@pytest.fixture
async def runners() -> AsyncIterator[list[Broadcaster]]:
    made: list[Broadcaster] = []
    yield made
    for runner in made:
        await runner.stop()


def broadcaster(
    made: list[Broadcaster], store: SqlStore, core: Core, sends: Sends, board: Board, name: str, **options: Any
) -> Broadcaster:
    runner = Broadcaster(
        Broadcasts(store),
        sends.for_worker(name),
        board.for_worker(name),
        Pacer(5000.0),
        core.translator,
        now=_utc_now,
        worker_id=name,
        poll=0.05,
        concurrency=4,
        progress_every=0.05,
        flush_every=0.02,
        **options,
    )
    made.append(runner)
    return runner


async def queued_broadcast(store: SqlStore, people: int) -> int:
    """`people` subscribed Spanish speakers and a broadcast to all of them, queued to go now."""
    async with store.writing() as conn:
        await conn.execute(
            insert(participants),
            [
                {
                    "user_id": uid,
                    "chat_id": 10_000 + uid,
                    "language": "es",
                    "consented_at": NOW,
                    "program_id": "p",
                    "node": None,
                    "outcome": None,
                    "updated_at": NOW,
                }
                for uid in range(1, people + 1)
            ],
        )
    bcs = Broadcasts(store)
    draft = await bcs.new_draft(ADMIN, "en", "text", NOW)
    await bcs.edit_draft(draft.id, versions={"es": Version("Hola")}, audience=Audience())
    assert await bcs.submit(draft.id)
    return draft.id


async def status(store: SqlStore, broadcast_id: int) -> BroadcastStatus | None:
    found = await Broadcasts(store).get(broadcast_id)
    return None if found is None else found.status


async def test_two_broadcasters_send_to_every_recipient_exactly_once(stores, runners, core) -> None:
    """Two workers on one broadcast: everyone gets it once, both take part, one progress message, one report."""
    sends, board = Sends(0.003), Board()
    broadcast_id = await queued_broadcast(stores[0], 60)
    a = broadcaster(runners, stores[0], core, sends, board, "a")
    b = broadcaster(runners, stores[1], core, sends, board, "b")
    await a.start()
    await b.start()
    await until(lambda: _is(stores[0], broadcast_id, BroadcastStatus.DONE))
    chats = [chat for _, chat in sends.log]
    assert sorted(chats) == [10_000 + uid for uid in range(1, 61)]  # everyone, nobody twice
    assert {name for name, _ in sends.log} == {"a", "b"}
    counts = await Broadcasts(stores[0]).counts(broadcast_id)
    assert counts[RecipientStatus.SENT] == 60
    await until(lambda: len(board.posts) == 2)  # the progress message, then the report
    await asyncio.sleep(0.1)  # a second report would come right after the first
    assert len(board.posts) == 2
    # One worker edits the progress message as it goes; the final edit is the finisher's.
    assert len({name for name, text in board.edits if "finished" not in text}) <= 1


async def _unclaimed(store: SqlStore, broadcast_id: int) -> bool:
    return await Broadcasts(store).holders(broadcast_id) == []


async def _is(store: SqlStore, broadcast_id: int, expected: BroadcastStatus) -> bool:
    return await status(store, broadcast_id) == expected


async def test_a_pause_on_one_broadcaster_stops_both_and_a_resume_finishes_once(stores, runners, core) -> None:
    """Pause tapped on one worker halts the other within a batch; resumed on the other, the rest goes, once each."""
    sends, board = Sends(0.01), Board()
    broadcast_id = await queued_broadcast(stores[0], 120)
    a = broadcaster(runners, stores[0], core, sends, board, "a")
    b = broadcaster(runners, stores[1], core, sends, board, "b")
    await a.start()
    await b.start()
    await until(lambda: {name for name, _ in sends.log} == {"a", "b"})
    assert await a.control(broadcast_id, "pause") is not None
    await until(lambda: a._current is None and b._current is None)
    stopped_at = len(sends.log)
    await asyncio.sleep(0.2)
    assert len(sends.log) == stopped_at  # nobody sends while paused
    assert stopped_at < 120
    await until(lambda: _unclaimed(stores[0], broadcast_id), within=2)  # both hand their rows back

    assert await b.control(broadcast_id, "resume") is not None
    await until(lambda: _is(stores[0], broadcast_id, BroadcastStatus.DONE))
    assert sorted(chat for _, chat in sends.log) == [10_000 + uid for uid in range(1, 121)]
    await until(lambda: any("Recipients" in text for _, text in board.posts))
    await asyncio.sleep(0.1)  # a second report would come right after the first
    assert len([text for _, text in board.posts if "Recipients" in text]) == 1
