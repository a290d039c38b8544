"""What workers share through Redis (bot/cluster.py), against the machine's real Redis: several instances in one
test stand for several worker processes, each with its own client and connections."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from bot.cluster import Leader, SharedChatPace, SharedPacer, SharedTurns, TurnUnavailable, connect, key_prefix
from bot.telegram.pacing import Lane

Workers = Callable[[], Awaitable[Redis]]  # makes a connected client of its own, as each worker process has one

REDIS_URL = os.environ.get("PUENTE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    probe = connect(REDIS_URL)
    try:
        await probe.ping()
    except RedisError:
        await probe.aclose()
        pytest.skip(f"no Redis at {REDIS_URL}")
    name = f"puente-test:{uuid.uuid4().hex}:"
    yield name
    async for key in probe.scan_iter(f"{name}*"):
        await probe.delete(key)
    await probe.aclose()


@pytest.fixture
async def workers() -> AsyncIterator[Workers]:
    """A new Redis client per call, as each worker process has its own, already connected (a running worker's
    client is: what the tests time is the coordination, not a first connection); all closed at the end."""
    clients: list[Redis] = []

    async def client() -> Redis:
        clients.append(connect(REDIS_URL))
        await clients[-1].ping()
        return clients[-1]

    yield client
    for each in clients:
        await each.aclose()


async def until(condition: Callable[[], bool], within: float = 5.0) -> None:
    """Wait for `condition`, looking every 10 ms; TimeoutError after `within` seconds."""
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 (what it waits for is in other objects' state)
            await asyncio.sleep(0.01)


def test_keys_name_the_bot_not_its_secret() -> None:
    assert key_prefix("123456789:AAE-secret") == "puente:123456789:"


class _Overlap:
    """Counts how many pieces of work run at once, and the most ever seen."""

    def __init__(self) -> None:
        self.now = self.most = 0
        self.order: list[str] = []

    def work(self, name: str, seconds: float) -> Callable[[], Awaitable[str]]:
        async def run() -> str:
            self.now += 1
            self.most = max(self.most, self.now)
            await asyncio.sleep(seconds)
            self.order.append(name)
            self.now -= 1
            return name

        return run


async def test_one_persons_updates_take_turns_across_workers(prefix: str, workers: Workers) -> None:
    first, second = SharedTurns(await workers(), prefix), SharedTurns(await workers(), prefix)
    same = _Overlap()
    results = await asyncio.gather(
        *(turns.run(42, same.work(f"{i}", 0.05)) for i, turns in enumerate([first, second, first, second]))
    )
    assert same.most == 1
    assert sorted(results) == ["0", "1", "2", "3"]

    others = _Overlap()  # different people never wait for each other
    await asyncio.gather(first.run(1, others.work("a", 0.2)), second.run(2, others.work("b", 0.2)))
    assert others.most == 2


async def test_a_dead_workers_turn_is_free_once_its_lease_ends(prefix: str, workers: Workers) -> None:
    dead = (await workers()).lock(f"{prefix}turn:42", timeout=0.5)
    assert await dead.acquire()  # and never released: the process was killed
    started = time.monotonic()
    assert await SharedTurns(await workers(), prefix).run(42, lambda: asyncio.sleep(0, "handled")) == "handled"
    assert time.monotonic() - started >= 0.4


async def test_an_update_that_cannot_get_the_turn_fails_to_come_again(prefix: str, workers: Workers) -> None:
    busy = (await workers()).lock(f"{prefix}turn:42", timeout=30)
    assert await busy.acquire()
    ran: list[int] = []

    async def work() -> None:
        ran.append(1)

    with pytest.raises(TurnUnavailable):
        await SharedTurns(await workers(), prefix, wait=0.3).run(42, work)
    assert ran == []


async def test_a_long_update_keeps_its_turn_past_the_lease(prefix: str, workers: Workers) -> None:
    first, second = SharedTurns(await workers(), prefix, lease=0.3), SharedTurns(await workers(), prefix, lease=0.3)
    same = _Overlap()
    slow = asyncio.create_task(first.run(7, same.work("slow", 1.0)))
    await until(lambda: same.now == 1)
    await second.run(7, same.work("next", 0))
    await slow
    assert same.order == ["slow", "next"]
    assert same.most == 1


def _tightest_span(times: list[float], sends: int) -> float:
    """The shortest time in which `sends` consecutive sends went out."""
    times = sorted(times)
    return min(later - first for first, later in zip(times, times[sends - 1 :], strict=False))


async def test_workers_share_one_send_rate(prefix: str, workers: Workers) -> None:
    pacers = [SharedPacer(await workers(), prefix, "free", rate=20) for _ in range(3)]
    sent: list[float] = []

    async def send(pacer: SharedPacer, lane: Lane) -> None:
        await pacer.slot(lane)
        sent.append(time.monotonic())

    started = time.monotonic()
    await asyncio.gather(*(send(pacers[i % 3], Lane(i % 2)) for i in range(50)))
    took = time.monotonic() - started
    # 21 sends are 20 intervals: one second at 20 a second, less only by the event loop's wake-up jitter.
    assert _tightest_span(sent, 21) >= 0.97
    assert 2.2 <= took <= 3.5  # 50 slots at 20 a second, the first at once: neither faster nor much slower


async def test_replies_go_before_a_broadcast_on_another_worker(prefix: str, workers: Workers) -> None:
    broadcasting = SharedPacer(await workers(), prefix, "free", rate=10)
    replying = SharedPacer(await workers(), prefix, "free", rate=10)
    bulk = [asyncio.create_task(broadcasting.slot(Lane.BULK)) for _ in range(30)]
    await asyncio.sleep(0.3)  # the broadcast is under way
    waits = []
    for _ in range(3):
        started = time.monotonic()
        await replying.slot(Lane.PEOPLE)
        waits.append(time.monotonic() - started)
    assert max(waits) <= 0.35  # a reply waits at most for the broadcast's one reserved slot, and its own
    assert sum(task.done() for task in bulk) < 30
    for task in bulk:
        task.cancel()
    await asyncio.gather(*bulk, return_exceptions=True)


async def test_a_429_on_one_worker_holds_every_workers_broadcasts(prefix: str, workers: Workers) -> None:
    told, other = (
        SharedPacer(await workers(), prefix, "free", rate=30),
        SharedPacer(await workers(), prefix, "free", rate=30),
    )
    told.hold(0.6)
    await until(lambda: not told._holds)  # shared with Redis
    started = time.monotonic()
    await other.slot(Lane.PEOPLE)
    assert time.monotonic() - started < 0.2  # people's replies go on
    await other.slot(Lane.BULK)
    assert time.monotonic() - started >= 0.5


async def test_one_chats_pace_holds_across_workers(prefix: str, workers: Workers) -> None:
    paces = [SharedChatPace(await workers(), prefix, rate=5, burst=3) for _ in range(2)]
    began: list[float] = []

    async def call(i: int) -> None:
        async with paces[i % 2].turn(99):
            began.append(time.monotonic())

    await asyncio.gather(*(call(i) for i in range(6)))
    first = min(began)
    began = [t - first for t in sorted(began)]
    assert began[2] < 0.15, began  # the burst of three at once
    assert began[5] >= 0.5, began  # then 5 a second: three more take 0.6 s, give or take the clocks' rounding

    asked = time.monotonic()
    async with paces[0].turn(100):  # another chat has its own bucket
        assert time.monotonic() - asked < 0.15


async def test_scheduled_jobs_run_in_one_worker_and_move_when_it_dies(prefix: str, workers: Workers) -> None:
    running: list[int] = []
    most = 0

    def duties(worker: int) -> Callable[[], Coroutine[Any, Any, None]]:
        async def run() -> None:
            nonlocal most
            running.append(worker)
            most = max(most, len(running))
            try:
                await asyncio.Event().wait()
            finally:
                running.remove(worker)

        return run

    leaders = [Leader(await workers(), prefix, lease=0.6, renew_every=0.2) for _ in range(3)]
    tasks = [asyncio.create_task(leader.run(duties(i))) for i, leader in enumerate(leaders)]
    await until(lambda: len(running) == 1)
    await asyncio.sleep(1.0)  # several renewals: still one
    assert most == 1
    assert len(running) == 1
    first = running[0]

    # The leader dies without a word: its lease is simply no longer renewed.
    tasks[first].cancel()
    await asyncio.gather(tasks[first], return_exceptions=True)
    await until(lambda: len(running) == 1 and running[0] != first, within=3.0)
    assert most == 1
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert running == []


async def test_a_leader_that_loses_its_lease_stops_its_duties(prefix: str, workers: Workers) -> None:
    running = asyncio.Event()
    stopped = asyncio.Event()

    async def duties() -> None:
        running.set()
        try:
            await asyncio.Event().wait()
        finally:
            stopped.set()

    redis = await workers()
    task = asyncio.create_task(Leader(redis, prefix, lease=0.6, renew_every=0.2).run(duties))
    await asyncio.wait_for(running.wait(), 3)
    await redis.set(f"{prefix}leader", "someone else")  # as if the lease had lapsed and another worker took it
    await asyncio.wait_for(stopped.wait(), 3)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_a_dead_leaders_lease_is_taken_over_when_it_expires(prefix: str, workers: Workers) -> None:
    dead = (await workers()).lock(f"{prefix}leader", timeout=0.8)
    assert await dead.acquire()
    running = asyncio.Event()

    async def duties() -> None:
        running.set()
        await asyncio.Event().wait()

    started = time.monotonic()
    task = asyncio.create_task(Leader(await workers(), prefix, lease=0.6, renew_every=0.2).run(duties))
    await asyncio.wait_for(running.wait(), 3)
    assert time.monotonic() - started >= 0.7
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
