"""The send pacer: one rate for everything sent, people's replies ahead of broadcasts, holds, cancelled waiters.

Most tests move a fake clock by hand, so which send has gone is exact. The pacer's pump still sleeps with real
asyncio timeouts (for as many real seconds as the fake clock says it must wait), so after each move the test
waits a little real time for the pump to look again (`settle`). One test runs on the real clock to check the rate
end to end, with tolerances meant for a slow CI machine: it checks behaviour, it is not a benchmark.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any, cast

import pytest
from aiogram import Bot
from aiogram.methods import (
    AnswerCallbackQuery,
    CopyMessage,
    DeleteMessage,
    EditMessageText,
    GetMe,
    GetUpdates,
    SendMessage,
    SendPhoto,
    TelegramMethod,
)
from aiogram.methods.base import Response

from bot.telegram.pacing import METERED, ChatPace, Lane, Pacer, PaceSends, in_lane, prepaced

#: A power of two, so that the fake clock's sums are exact and a slot is exactly due, never a rounding off.
RATE = 256.0
INTERVAL = 1 / RATE
BOT = cast(Bot, None)


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    async def advance(self, seconds: float, *, pump: float = 0.05) -> None:
        self.now += seconds
        await settle(pump)


async def settle(pump: float = 0.05) -> None:
    """Let the pump notice a move of the fake clock: it sleeps (in real time) at most the fake time it had to
    wait, a few milliseconds at RATE, so `pump` seconds are plenty; then let the tasks it woke run."""
    await asyncio.sleep(pump)
    for _ in range(5):
        await asyncio.sleep(0)


async def start(pacer: Pacer, lane: Lane, log: list[str] | None = None, name: str = "") -> asyncio.Task[None]:
    """Ask for a slot in a task of its own. A send that may go at once is done when this returns."""

    async def send() -> None:
        await pacer.slot(lane)
        if log is not None:
            log.append(name)

    task = asyncio.create_task(send())
    await asyncio.sleep(0)
    return task


async def saturate(pacer: Pacer, clock: FakeClock) -> None:
    """Use the free slot(s) of an idle pacer: afterwards a send waits, and each interval lets exactly one go."""
    while (task := await start(pacer, Lane.PEOPLE)).done():
        pass
    await clock.advance(1.5 * pacer.interval, pump=pacer.interval + 0.05)
    assert task.done()


def done(tasks: Iterable[asyncio.Task[Any]]) -> int:
    return sum(task.done() for task in tasks)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def pacer(clock: FakeClock) -> Pacer:
    return Pacer(RATE, clock=clock)


# --------------------------------------------------------------------------------------------- the rate


async def test_a_run_of_sends_keeps_to_the_rate() -> None:
    """41 sends at 256/s take about 40 intervals, and no stretch of the run goes faster than the rate."""
    pacer = Pacer(RATE)
    sends = 41
    granted: list[float] = []

    async def send() -> None:
        await pacer.slot(Lane.PEOPLE)
        granted.append(time.monotonic())

    await asyncio.gather(*(send() for _ in range(sends)))
    elapsed = granted[-1] - granted[0]
    # The pacer starts idle, so the first two may share its first moment; every later one waits for its slot.
    assert elapsed >= (sends - 2) * INTERVAL - 0.002
    assert elapsed <= (sends - 1) * INTERVAL + 0.3, "a late wake-up is made up, so the run is not much slower"
    # Any k+1 consecutive sends span at least k-1 intervals (half an interval allowed for measuring in a task).
    for first in range(sends):
        for last in range(first + 2, sends):
            assert granted[last] - granted[first] >= (last - first - 1) * INTERVAL - INTERVAL / 2


async def test_no_burst_after_an_idle_stretch(pacer: Pacer, clock: FakeClock) -> None:
    """After idling, the first send goes at once and at most one more follows it at once; the rest wait their
    slots. Ten idle seconds (2,560 slots) are not saved up."""
    for _ in range(2):  # a fresh pacer, then the same one after a busy run and ten idle seconds
        sends = [await start(pacer, Lane.PEOPLE) for _ in range(5)]
        at_once = done(sends)
        assert sends[0].done()
        assert at_once <= 2
        assert pacer.waiting(Lane.PEOPLE) == 5 - at_once
        for already in range(at_once, 5):
            await clock.advance(INTERVAL)
            assert done(sends) == already + 1, "one interval, one more send"
        await clock.advance(2 * INTERVAL)
        assert done(sends) == 5
        await clock.advance(10.0)


async def test_a_late_send_keeps_the_grid(pacer: Pacer, clock: FakeClock) -> None:
    """A slot used late does not push the later ones back: the average stays at the rate."""
    await saturate(pacer, clock)  # the next slot is due within an interval
    await clock.advance(0.75 * INTERVAL)
    late = await start(pacer, Lane.PEOPLE)
    assert late.done()
    await clock.advance(INTERVAL * 0.75)  # only three quarters of an interval later, but the next slot is due
    assert (await start(pacer, Lane.PEOPLE)).done()
    waiting = await start(pacer, Lane.PEOPLE)
    assert not waiting.done(), "and then the rate applies again"
    await clock.advance(INTERVAL)
    assert waiting.done()


# --------------------------------------------------------------------------------------------- the lanes


async def test_people_go_before_queued_bulk_sends(pacer: Pacer, clock: FakeClock) -> None:
    """A reply to a person takes the next slot, ahead of a broadcast's sends that were waiting before it."""
    await saturate(pacer, clock)
    log: list[str] = []
    bulk = [await start(pacer, Lane.BULK, log, f"bulk {k}") for k in range(4)]
    await clock.advance(INTERVAL)
    assert log == ["bulk 0"]
    person = await start(pacer, Lane.PEOPLE, log, "person")
    assert not person.done(), "the slot was just used: the person waits for the next one, not for the broadcast"
    assert pacer.waiting(Lane.BULK) == 3
    await clock.advance(INTERVAL)
    assert log == ["bulk 0", "person"]
    for _ in range(3):
        await clock.advance(INTERVAL)
    assert log == ["bulk 0", "person", "bulk 1", "bulk 2", "bulk 3"]
    assert done(bulk) == 4


async def test_bulk_sends_wait_behind_every_queued_person(pacer: Pacer, clock: FakeClock) -> None:
    """While people wait, no bulk send goes, even one that was queued first; each lane keeps its own order."""
    await saturate(pacer, clock)
    log: list[str] = []
    await start(pacer, Lane.BULK, log, "bulk")
    for k in range(3):
        await start(pacer, Lane.PEOPLE, log, f"person {k}")
    for _ in range(4):
        await clock.advance(INTERVAL)
    assert log == ["person 0", "person 1", "person 2", "bulk"]


@pytest.mark.parametrize(
    ("waiting", "late"),
    [(Lane.PEOPLE, Lane.BULK), (Lane.BULK, Lane.BULK), (Lane.PEOPLE, Lane.PEOPLE)],
    ids=["bulk behind a person", "bulk behind bulk", "person behind a person"],
)
async def test_a_free_slot_goes_to_whoever_waited_first(clock: FakeClock, waiting: Lane, late: Lane) -> None:
    """A send that asks the moment a slot falls free, before the pump has served the waiting ones, does not jump
    the queue: not a broadcast send ahead of a waiting person, nor anyone ahead of an earlier send of their lane.

    At 8 a second the pump sleeps long enough in real time that it surely has not looked again when the late send
    asks."""
    pacer = Pacer(8.0, clock=clock)
    pump = pacer.interval + 0.05
    await saturate(pacer, clock)
    log: list[str] = []
    await start(pacer, waiting, log, "waiting")
    for _ in range(3):  # the pump looks once, and sleeps (for half an interval of real time) until the slot
        await asyncio.sleep(0)
    clock.now += pacer.interval  # the slot is free now
    assert not (await start(pacer, late, log, "late")).done()
    await settle(pump)
    assert log == ["waiting"]
    await clock.advance(pacer.interval, pump=pump)
    assert log == ["waiting", "late"]


async def test_a_hold_stops_bulk_sends_but_not_people(pacer: Pacer, clock: FakeClock) -> None:
    """After a 429 on a broadcast send, no bulk slot until the hold ends; replies to people carry on meanwhile."""
    pacer.hold(8 * INTERVAL)
    bulk = await start(pacer, Lane.BULK)
    assert not bulk.done(), "the slot is free, but the bulk lane is held"
    assert (await start(pacer, Lane.PEOPLE)).done()
    for _ in range(6):
        await clock.advance(INTERVAL)
        assert (await start(pacer, Lane.PEOPLE)).done(), "people get a slot every interval throughout the hold"
        assert not bulk.done()
    await clock.advance(INTERVAL)
    pacer.hold(INTERVAL / 2)  # a shorter hold does not cut the longer one short
    await clock.advance(INTERVAL / 2)
    assert not bulk.done()
    await clock.advance(INTERVAL)  # the hold is over
    assert bulk.done()


async def test_a_hold_pauses_bulk_sends_already_waiting(pacer: Pacer, clock: FakeClock) -> None:
    """A hold given while a broadcast's sends queue stops them where they are; they resume in order after it."""
    await saturate(pacer, clock)
    log: list[str] = []
    for k in range(3):
        await start(pacer, Lane.BULK, log, f"bulk {k}")
    await clock.advance(INTERVAL)
    assert log == ["bulk 0"]
    pacer.hold(4 * INTERVAL)
    for _ in range(3):
        await clock.advance(INTERVAL)
    assert log == ["bulk 0"]
    for _ in range(3):
        await clock.advance(INTERVAL)
    assert log == ["bulk 0", "bulk 1", "bulk 2"]


async def test_a_cancelled_waiter_leaves_the_queue(pacer: Pacer, clock: FakeClock) -> None:
    """A send given up while waiting (its task cancelled) stops counting at once and takes no slot from others."""
    await saturate(pacer, clock)
    log: list[str] = []
    first = await start(pacer, Lane.PEOPLE, log, "first")
    gone = await start(pacer, Lane.PEOPLE, log, "gone")
    last = await start(pacer, Lane.PEOPLE, log, "last")
    gone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert pacer.waiting(Lane.PEOPLE) == 2
    await clock.advance(INTERVAL)
    assert log == ["first"]
    await clock.advance(INTERVAL)
    assert log == ["first", "last"], "the next slot went to the one behind the cancelled send"
    assert first.done()
    assert last.done()


async def test_a_cancelled_person_does_not_hold_back_the_bulk_lane(pacer: Pacer, clock: FakeClock) -> None:
    """The only person waiting gives up: the broadcast's next send gets the very next slot."""
    await saturate(pacer, clock)
    log: list[str] = []
    await start(pacer, Lane.BULK, log, "bulk")
    person = await start(pacer, Lane.PEOPLE, log, "person")
    person.cancel()
    with pytest.raises(asyncio.CancelledError):
        await person
    assert pacer.waiting(Lane.PEOPLE) == 0
    await clock.advance(INTERVAL)
    assert log == ["bulk"]


async def test_a_waiter_cancelled_as_the_pump_wakes_is_skipped(pacer: Pacer, clock: FakeClock) -> None:
    """The pump may reach a cancelled waiter before its task has left the queue: it skips it, and serves the next."""
    await saturate(pacer, clock)
    log: list[str] = []
    gone = await start(pacer, Lane.PEOPLE, log, "gone")
    await start(pacer, Lane.PEOPLE, log, "next")
    clock.now += INTERVAL
    pacer.hold(0)  # wakes the pump (a hold ending now changes nothing for people)...
    gone.cancel()  # ...which runs before the cancelled task does
    await settle()
    assert gone.cancelled()
    assert log == ["next"]
    assert pacer.waiting(Lane.PEOPLE) == 0


def test_the_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        Pacer(0)
    assert Pacer(30).rate == pytest.approx(30)


# --------------------------------------------------------------------------------------------- the middleware


class FakeTelegram:
    """The next step of the request chain: records what reached Telegram."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def __call__(self, bot: Bot, method: TelegramMethod[Any]) -> Response[Any]:
        self.calls.append(method.__api_method__)
        return Response[Any](ok=True, result=True)


async def call(middleware: PaceSends, telegram: FakeTelegram, method: TelegramMethod[Any]) -> asyncio.Task[Any]:
    """Send `method` through the middleware in a task of its own; a call that waits for nothing is done on return."""
    task = asyncio.create_task(middleware(telegram, BOT, method))
    await asyncio.sleep(0)
    return task


UNMETERED: list[TelegramMethod[Any]] = [
    GetUpdates(timeout=30),
    AnswerCallbackQuery(callback_query_id="1"),
    GetMe(),
    DeleteMessage(chat_id=1, message_id=2),
]
METERED_CALLS: list[TelegramMethod[Any]] = [
    SendMessage(chat_id=1, text="x"),
    SendPhoto(chat_id=1, photo="file-id"),
    EditMessageText(chat_id=1, message_id=2, text="x"),
    CopyMessage(chat_id=1, from_chat_id=2, message_id=3),
]


@pytest.mark.parametrize("method", UNMETERED, ids=lambda m: m.__api_method__)
async def test_calls_that_put_nothing_in_a_chat_pass_straight_through(
    pacer: Pacer, clock: FakeClock, method: TelegramMethod[Any]
) -> None:
    """Polling and answering button taps never wait for a send slot, even when every slot is taken."""
    await saturate(pacer, clock)
    telegram = FakeTelegram()
    task = await call(PaceSends(pacer), telegram, method)
    assert task.done()
    assert task.result().result is True
    assert telegram.calls == [method.__api_method__]
    assert method.__api_method__ not in METERED
    assert pacer.waiting(Lane.PEOPLE) == 0


@pytest.mark.parametrize("method", METERED_CALLS, ids=lambda m: m.__api_method__)
async def test_calls_that_put_content_in_a_chat_wait_for_a_slot(
    pacer: Pacer, clock: FakeClock, method: TelegramMethod[Any]
) -> None:
    """A send, a copy or an edit reaches Telegram only once the pacer grants it a slot."""
    await saturate(pacer, clock)
    telegram = FakeTelegram()
    task = await call(PaceSends(pacer), telegram, method)
    assert not task.done()
    assert telegram.calls == []
    assert pacer.waiting(Lane.PEOPLE) == 1
    await clock.advance(INTERVAL)
    assert task.done()
    assert telegram.calls == [method.__api_method__]


async def test_paid_broadcast_messages_use_the_paid_pacer(clock: FakeClock) -> None:
    """allow_paid_broadcast=True is metered by the paid pacer: a busy free pacer does not hold it up."""
    free, paid = Pacer(RATE, clock=clock), Pacer(RATE, clock=clock)
    middleware, telegram = PaceSends(free, paid), FakeTelegram()
    await saturate(free, clock)
    paid_send = await call(middleware, telegram, SendMessage(chat_id=1, text="x", allow_paid_broadcast=True))
    assert paid_send.done()
    free_send = await call(middleware, telegram, SendMessage(chat_id=2, text="x", allow_paid_broadcast=False))
    assert not free_send.done()
    assert (free.waiting(Lane.PEOPLE), paid.waiting(Lane.PEOPLE)) == (1, 0)
    await clock.advance(INTERVAL)
    assert free_send.done()


async def test_other_sends_do_not_wait_for_the_paid_pacer(clock: FakeClock) -> None:
    """A busy paid pacer holds up only paid broadcast messages."""
    free, paid = Pacer(RATE, clock=clock), Pacer(RATE, clock=clock)
    middleware, telegram = PaceSends(free, paid), FakeTelegram()
    await saturate(paid, clock)
    paid_send = await call(middleware, telegram, SendMessage(chat_id=1, text="x", allow_paid_broadcast=True))
    assert not paid_send.done()
    assert (await call(middleware, telegram, SendMessage(chat_id=2, text="x"))).done()
    assert (paid.waiting(Lane.PEOPLE), free.waiting(Lane.PEOPLE)) == (1, 0)
    await clock.advance(INTERVAL)
    assert paid_send.done()
    assert telegram.calls == ["sendMessage", "sendMessage"]


async def test_without_a_paid_pacer_paid_messages_share_the_free_one(pacer: Pacer, clock: FakeClock) -> None:
    await saturate(pacer, clock)
    task = await call(PaceSends(pacer), FakeTelegram(), SendMessage(chat_id=1, text="x", allow_paid_broadcast=True))
    assert not task.done()
    assert pacer.waiting(Lane.PEOPLE) == 1
    await clock.advance(INTERVAL)
    assert task.done()


async def test_prepaced_calls_are_not_metered_twice(pacer: Pacer, clock: FakeClock) -> None:
    """A sender that took its slot itself (`prepaced`) is let through, even with every slot taken; not after."""
    await saturate(pacer, clock)
    middleware, telegram = PaceSends(pacer), FakeTelegram()
    with prepaced():
        assert (await call(middleware, telegram, SendMessage(chat_id=1, text="broadcast"))).done()
    assert pacer.waiting(Lane.PEOPLE) == 0
    after = await call(middleware, telegram, SendMessage(chat_id=2, text="reply"))
    assert not after.done()
    await clock.advance(INTERVAL)
    assert after.done()
    assert telegram.calls == ["sendMessage", "sendMessage"]


async def test_in_lane_puts_a_block_and_its_tasks_in_the_bulk_lane(pacer: Pacer, clock: FakeClock) -> None:
    """Sends made inside `in_lane(BULK)`, and by tasks created there, queue as bulk; outside, as people."""
    await saturate(pacer, clock)
    middleware, telegram = PaceSends(pacer), FakeTelegram()
    with in_lane(Lane.BULK):
        bulk = await call(middleware, telegram, SendMessage(chat_id=1, text="broadcast"))
    person = await call(middleware, telegram, SendMessage(chat_id=2, text="reply"))
    assert (pacer.waiting(Lane.BULK), pacer.waiting(Lane.PEOPLE)) == (1, 1)
    await clock.advance(INTERVAL)
    assert person.done()
    assert not bulk.done(), "the reply, queued later, went first"
    await clock.advance(INTERVAL)
    assert bulk.done()


# --------------------------------------------------------------------------------------------- each private chat

#: The per-chat limit in these tests: Telegram's burst of 3, at a rate fast enough that the real sleeps stay short.
CHAT_RATE = 64.0
CHAT_INTERVAL = 1 / CHAT_RATE


class SlowTelegram(FakeTelegram):
    """Answers a call only once the test lets it (`answer`), to hold a call in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.go = asyncio.Event()

    async def __call__(self, bot: Bot, method: TelegramMethod[Any]) -> Response[Any]:
        await self.go.wait()
        return await super().__call__(bot, method)


@pytest.fixture
def chats(clock: FakeClock) -> ChatPace:
    return ChatPace(CHAT_RATE, 3, clock=clock)


def paced(chats: ChatPace) -> PaceSends:
    """The middleware with a global pacer too fast to matter, so what waits, waits for its chat."""
    return PaceSends(Pacer(1e6), chats=chats)


def send(chat_id: int) -> SendMessage:
    return SendMessage(chat_id=chat_id, text="x")


async def test_a_chat_gets_a_burst_of_three_then_the_rate(chats: ChatPace, clock: FakeClock) -> None:
    """Three calls into one private chat go at once, the fourth and fifth one interval apart, in order."""
    middleware, telegram = paced(chats), FakeTelegram()
    calls = [await call(middleware, telegram, SendMessage(chat_id=1, text=str(k))) for k in range(5)]
    await settle()
    assert done(calls) == 3
    await clock.advance(CHAT_INTERVAL * 0.9)
    assert done(calls) == 3
    await clock.advance(CHAT_INTERVAL * 0.1)
    assert done(calls) == 4
    await clock.advance(CHAT_INTERVAL)
    assert done(calls) == 5


async def test_a_chat_waiting_for_its_pace_holds_up_nobody_else(chats: ChatPace, clock: FakeClock) -> None:
    """One person's burst makes their fourth message wait; another person's message goes at once meanwhile, and
    the waiting one holds no global slot (nothing queues at the pacer)."""
    pacer = Pacer(RATE, clock=clock)
    middleware, telegram = PaceSends(pacer, chats=chats), FakeTelegram()
    burst = [await call(middleware, telegram, send(1)) for _ in range(3)]
    await clock.advance(2 * INTERVAL)  # the global pacer lets two go at once, then one an interval
    assert done(burst) == 3
    fourth = await call(middleware, telegram, send(1))
    assert not fourth.done()
    assert chats.wait(1) > 0
    assert pacer.waiting(Lane.PEOPLE) == 0, "waiting for its chat's token, it has not asked for a global slot"
    other = await call(middleware, telegram, send(2))
    assert other.done(), "another person's message does not wait behind the first person's pace"
    assert not fourth.done()
    await clock.advance(CHAT_INTERVAL)
    assert fourth.done()


async def test_a_call_is_charged_when_telegram_has_answered(chats: ChatPace, clock: FakeClock) -> None:
    """Calls into one chat go one at a time, in order, and the chat's pace counts from when each was answered:
    a call that took long to arrive does not leave the next one closer to it than the limit allows."""
    middleware, telegram = paced(ChatPace(CHAT_RATE, 1, clock=clock)), SlowTelegram()
    first = await call(middleware, telegram, SendMessage(chat_id=1, text="first"))
    second = await call(middleware, telegram, SendMessage(chat_id=1, text="second"))
    await clock.advance(5 * CHAT_INTERVAL)  # the first is still in flight: the second has not been sent
    assert telegram.calls == []
    telegram.go.set()
    await settle()
    assert first.done()
    assert not second.done(), "one interval after the first was answered, not after it was sent"
    await clock.advance(CHAT_INTERVAL)
    assert second.done()
    assert len(telegram.calls) == 2


@pytest.mark.parametrize("method", [send(-100123), SendMessage(chat_id="@channel", text="x"), GetMe()])
async def test_groups_channels_and_other_calls_have_no_per_chat_pace(
    chats: ChatPace, method: TelegramMethod[Any]
) -> None:
    """Groups have their own limit (the staff outbox keeps it); channels by username and calls without a chat pass."""
    middleware, telegram = paced(chats), FakeTelegram()
    calls = [await call(middleware, telegram, method) for _ in range(6)]
    await settle()
    assert done(calls) == 6
    assert len(chats) == 0


async def test_a_broadcast_send_waiting_for_a_bulk_slot_keeps_no_reply_waiting(
    pacer: Pacer, chats: ChatPace, clock: FakeClock
) -> None:
    """A bulk send takes its global slot before its chat's turn: held by a 429, it does not keep the person's own
    replies waiting behind it."""
    middleware, telegram = PaceSends(pacer, chats=chats), FakeTelegram()
    pacer.hold(8 * INTERVAL)
    with in_lane(Lane.BULK):
        bulk = await call(middleware, telegram, SendMessage(chat_id=1, text="news"))
    reply = await call(middleware, telegram, SendMessage(chat_id=1, text="reply"))
    await settle()
    assert reply.done()
    assert not bulk.done()
    await clock.advance(9 * INTERVAL)
    assert bulk.done()
    assert telegram.calls == ["sendMessage", "sendMessage"]


async def test_a_call_given_up_while_waiting_for_its_chat_costs_nothing(chats: ChatPace, clock: FakeClock) -> None:
    """A call cancelled while it waits for its chat's token is not charged: the next one goes when it would have."""
    middleware, telegram = paced(chats), FakeTelegram()
    for _ in range(3):
        assert (await call(middleware, telegram, send(1))).done()
    gone = await call(middleware, telegram, send(1))
    last = await call(middleware, telegram, send(1))
    gone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gone
    await clock.advance(CHAT_INTERVAL)
    assert last.done()
    assert len(telegram.calls) == 4


async def test_idle_chats_are_forgotten(chats: ChatPace, clock: FakeClock) -> None:
    """Writing to 1,000 people one after another keeps the buckets of only the last few dozen: memory stays flat."""
    middleware, telegram = paced(chats), FakeTelegram()
    for chat_id in range(1, 1001):
        await (await call(middleware, telegram, send(chat_id)))
        clock.now += CHAT_INTERVAL / 8
    assert len(chats) <= 128
    assert len(telegram.calls) == 1000


def test_the_per_chat_rate_and_burst_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        ChatPace(0, 3)
    with pytest.raises(ValueError, match="burst"):
        ChatPace(1, 0)
