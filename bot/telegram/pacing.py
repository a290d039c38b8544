"""One pace for everything the bot sends: Telegram's global limit, with people's replies ahead of broadcasts.

Telegram lets a bot send about 30 messages a second in all (up to 1,000 with paid broadcasts) and answers 429 past
that. Every Bot API call that puts content into a chat goes through one `Pacer` per process, as a request
middleware on every Bot session, so a broadcast, the staff outbox and the questionnaire's replies share one budget.

Sends are spaced on a grid (one slot every 1/rate seconds): the average stays exactly at the rate even when the
event loop wakes a little late (one missed slot is made up at once, so at most two sends go back to back, well
inside Telegram's one-second burst), and idle time is never saved up into a burst. Two lanes wait for slots:

- `Lane.PEOPLE` (the default): replies to someone who just wrote, staff relays, admin screens. They take the next
  free slot before anything in the bulk lane, so a broadcast never queues them behind itself.
- `Lane.BULK`: broadcasts. They get the slots nobody in the people lane wants, and stop altogether while a 429
  given to a bulk send is being honoured (`hold`).

A task picks its lane with `in_lane` (a context variable, inherited by the tasks it creates). Paid broadcasts
(`allow_paid_broadcast`, up to 1,000 a second) are metered by a pacer of their own.

Telegram also lets one private chat receive only about one message a second, after a burst of about three. `ChatPace`
keeps that limit, a token bucket per private chat: a call first waits for its own chat's token, and only then for a
global slot, so a person waiting on their own chat's pace holds no slot and nobody else waits behind them. Calls
to one chat go one at a time, in order, and each is charged when Telegram has answered it: a call spends its token
no earlier than Telegram received it, whatever the network and the global queue did to its timing.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field

from aiogram import Bot
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.methods import TelegramMethod
from aiogram.methods.base import Response, TelegramType


class Lane(enum.IntEnum):
    """Lower goes first."""

    PEOPLE = 0
    BULK = 1


_lane: ContextVar[Lane] = ContextVar("puente_lane", default=Lane.PEOPLE)
_prepaced: ContextVar[bool] = ContextVar("puente_prepaced", default=False)

#: The calls Telegram's flood control meters: the ones that put content into a chat.
METERED = frozenset(
    {
        "sendMessage", "sendPhoto", "sendDocument", "sendVideo", "sendAudio", "sendVoice", "sendAnimation",
        "sendSticker", "sendLocation", "sendContact", "sendMediaGroup", "copyMessage", "copyMessages",
        "forwardMessage", "forwardMessages", "editMessageText", "editMessageCaption", "editMessageReplyMarkup",
        "editMessageMedia",
    }
)  # fmt: skip


@contextlib.contextmanager
def in_lane(lane: Lane) -> Iterator[None]:
    """Send in `lane` for the rest of this block (and in the tasks created inside it)."""
    token = _lane.set(lane)
    try:
        yield
    finally:
        _lane.reset(token)


def current_lane() -> Lane:
    """The lane a send made here would go in (for metrics)."""
    return _lane.get()


@contextlib.contextmanager
def prepaced() -> Iterator[None]:
    """The calls in this block already hold a slot (taken with `Pacer.slot`): the middleware lets them through.

    For a sender that must decide at the last moment whether to send at all (a broadcast paused meanwhile).
    """
    token = _prepaced.set(True)
    try:
        yield
    finally:
        _prepaced.reset(token)


class Pacer:
    """Hands out send slots `1/rate` seconds apart: the people lane first, first come first served in a lane.

    A send that finds its lane empty and a slot free goes at once; others queue, and one pump task grants the
    slots in order (waking only the waiter whose turn it is).
    """

    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0:
            raise ValueError("the send rate must be positive")
        self.interval = 1.0 / rate
        self._clock = clock
        self._next = -math.inf  # when the next slot may be used
        self._bulk_held_until = -math.inf
        self._queues: dict[Lane, deque[asyncio.Future[None]]] = {lane: deque() for lane in Lane}
        self._changed = asyncio.Event()
        self._pump: asyncio.Task[None] | None = None

    @property
    def rate(self) -> float:
        return 1.0 / self.interval

    def hold(self, seconds: float) -> None:
        """Telegram said 429 to a bulk send: no bulk slot for `seconds` (the people lane carries on)."""
        self._bulk_held_until = max(self._bulk_held_until, self._clock() + seconds)
        self._changed.set()

    def waiting(self, lane: Lane) -> int:
        return len(self._queues[lane])

    async def slot(self, lane: Lane) -> None:
        """Wait for this lane's turn and a free slot, then take it."""
        now = self._clock()
        if not any(self._queues[other] for other in Lane if other <= lane) and self._ready_at(lane) <= now:
            self._take(now)
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queues[lane].append(turn)
        self._changed.set()
        if self._pump is None or self._pump.done():
            self._pump = asyncio.create_task(self._grant(), name="pacer")
        try:
            await turn
        except asyncio.CancelledError:
            if turn in self._queues[lane]:  # still queued: leave the queue (a granted slot is simply not used)
                self._queues[lane].remove(turn)
            raise

    def _ready_at(self, lane: Lane) -> float:
        return max(self._next, self._bulk_held_until) if lane is Lane.BULK else self._next

    def _take(self, now: float) -> None:
        # On the grid: a slot missed by a late wake-up is made up at once, an idle stretch is not saved up.
        self._next = max(self._next, now - self.interval) + self.interval

    async def _grant(self) -> None:
        while True:
            lane = next((lane for lane in Lane if self._queues[lane]), None)
            if lane is None:
                return
            queue = self._queues[lane]
            if queue[0].done():  # cancelled while waiting
                queue.popleft()
                continue
            now = self._clock()
            ready = self._ready_at(lane)
            if ready <= now:
                self._take(now)
                queue.popleft().set_result(None)
                continue
            # Sleep until the slot, or until a person's send arrives or a hold changes the picture.
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(ready - now):
                    await self._changed.wait()


@dataclass
class _ChatBucket:
    """One private chat's bucket, as the time its next token is due (GCRA's "theoretical arrival time")."""

    due: float = -math.inf
    turn: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0  # calls holding or waiting for the turn: a bucket in use is never forgotten


class ChatPace:
    """Telegram's per-chat limit: `burst` calls at once into one private chat, then `rate` a second.

    A token bucket per chat (chat_id > 0), kept as the moment its next token is due: a call may go once that moment
    is no more than `burst - 1` intervals away. Calls to one chat take turns (first come, first served), and each
    is charged when it is over. Buckets of idle chats (full again, nobody waiting) are forgotten now and then, so
    memory follows the chats active in the last few seconds, not every chat ever written to.
    """

    def __init__(self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("the per-chat rate must be positive and the burst at least 1")
        self.interval = 1.0 / rate
        self.burst = burst
        self._slack = (burst - 1) * self.interval
        self._clock = clock
        self._chats: dict[int, _ChatBucket] = {}
        self._sweep_at = 64

    def __len__(self) -> int:
        """How many chats' buckets are kept."""
        return len(self._chats)

    def wait(self, chat_id: int) -> float:
        """Seconds until `chat_id` has a token (0: now), not counting calls queued for its turn."""
        chat = self._chats.get(chat_id)
        return 0.0 if chat is None else max(0.0, chat.due - self._slack - self._clock())

    @contextlib.asynccontextmanager
    async def turn(self, chat_id: int) -> AsyncIterator[None]:
        """Wait for this chat's turn and token; the block is the call, charged to the chat when the block ends.

        Groups, channels and usernames (chat_id <= 0 or not a number) are not metered here.
        """
        if chat_id <= 0:
            yield
            return
        chat = self._chats.get(chat_id)
        if chat is None:
            if len(self._chats) >= self._sweep_at:
                self._forget_idle()
            chat = self._chats[chat_id] = _ChatBucket()
        chat.users += 1
        try:
            async with chat.turn:
                # A time on the clock, not a condition another task sets: sleep until it, and look again (a sleep
                # may end a hair early, and tests run a clock of their own).
                while (delay := chat.due - self._slack - self._clock()) > 0:  # noqa: ASYNC110
                    await asyncio.sleep(delay)
                try:
                    yield
                finally:
                    chat.due = max(chat.due, self._clock()) + self.interval
        finally:
            chat.users -= 1

    def _forget_idle(self) -> None:
        now = self._clock()
        for chat_id in [c for c, chat in self._chats.items() if not chat.users and chat.due <= now]:
            del self._chats[chat_id]
        self._sweep_at = max(64, 2 * len(self._chats))


class PaceSends(BaseRequestMiddleware):
    """The request middleware that makes every metered call wait for its chat's token, then a global slot.

    Paid broadcast messages (`allow_paid_broadcast`) take their slot from `paid`, Telegram's separate, higher
    limit; everything else from `free`. The per-chat limit (`chats`) holds for both.
    """

    def __init__(self, free: Pacer, paid: Pacer | None = None, chats: ChatPace | None = None) -> None:
        self.free = free
        self.paid = paid
        self.chats = chats

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        if method.__api_method__ not in METERED or _prepaced.get():
            return await make_request(bot, method)
        paid = self.paid is not None and getattr(method, "allow_paid_broadcast", None) is True
        pacer = self.paid if paid and self.paid is not None else self.free
        chat_id = getattr(method, "chat_id", None)
        if self.chats is None or not isinstance(chat_id, int) or chat_id <= 0:
            await pacer.slot(_lane.get())
            return await make_request(bot, method)
        lane = _lane.get()
        if lane is Lane.BULK:
            # A bulk slot can be long in coming (people first, holds after a 429): waiting for it while holding the
            # chat's turn would keep that person's replies waiting on the broadcast. The slot is a moment, so
            # taking it first and then waiting for the chat costs nobody anything but that one slot.
            await pacer.slot(lane)
            async with self.chats.turn(chat_id):
                return await make_request(bot, method)
        async with self.chats.turn(chat_id):
            await pacer.slot(lane)
            return await make_request(bot, method)
