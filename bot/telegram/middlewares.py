"""Update and request middlewares: strangers and floods kept out, one person's updates in order, and Telegram's
limits and hiccups honoured."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from aiogram import BaseMiddleware, Bot
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.exceptions import TelegramAPIError, TelegramNetworkError, TelegramRetryAfter, TelegramServerError
from aiogram.methods import GetUpdates, TelegramMethod
from aiogram.methods.base import Response, TelegramType
from aiogram.types import Chat, TelegramObject, Update, User

from bot.logs import hashed

log = logging.getLogger(__name__)

_R = TypeVar("_R")

#: Chats the bot can be added to. It stays only in the configured ones.
GROUP_TYPES = frozenset({"group", "supergroup", "channel"})


class KnownChats:
    """The group chats the bot belongs in: the staff group and the organisations' intake chats; it leaves the others.

    Intake chats come from the directory (`load`). A chat not known yet is looked up afresh, so an organisation
    added while the bot runs is recognised at once; known chats are trusted for `ttl` seconds between reads.
    """

    def __init__(
        self,
        staff_chat_id: int | None,
        load: Callable[[], Awaitable[Iterable[int]]],
        *,
        ttl: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.staff_chat_id = staff_chat_id
        self._load = load
        self._ttl = ttl
        self._clock = clock
        self._intake: frozenset[int] = frozenset()
        self._read_at = -math.inf
        #: When the bot last left each chat (Unix time), so a burst of updates from one chat leaves it once.
        self._left: dict[int, float] = {}

    async def configured(self, chat_id: int) -> bool:
        if chat_id == self.staff_chat_id:
            return True
        now = self._clock()
        if chat_id in self._intake and now - self._read_at < self._ttl:
            return True
        self._intake = frozenset(await self._load())
        self._read_at = now
        return chat_id in self._intake

    async def leave(self, bot: Bot, chat: Chat, *, reason: str, since: float | None = None) -> None:
        """Leave a chat the bot was not configured for, unless it already did at or after `since` (Unix time).

        `since` is when the bot was added (a my_chat_member's date); by default, `ttl` seconds ago. The chat's title
        is never logged, its id only hashed.
        """
        now = self._clock()
        if self._left.get(chat.id, -math.inf) >= (now - self._ttl if since is None else since):
            return
        if len(self._left) > 1024:
            self._left = {chat_id: at for chat_id, at in self._left.items() if now - at < self._ttl}
        self._left[chat.id] = now  # before the call: updates handled meanwhile see it
        log.warning(
            "leaving a chat it was not configured for",
            extra={"chat": hashed(chat.id), "type": chat.type, "reason": reason},
        )
        try:
            await bot.leave_chat(chat.id)
        except TelegramAPIError as exc:  # already out, or Telegram is down: the next update from there tries again
            self._left.pop(chat.id, None)
            log.warning("could not leave", extra={"chat": hashed(chat.id), "reason": exc.message[:80]})


class Handling(BaseMiddleware):
    """Outer update middleware, first of all: knows which updates are being handled, so that shutting down lets
    them finish. aiogram's polling returns while its handler tasks still run, and a reply sent after the HTTP
    session closed would open a new one that nobody closes (or be lost)."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        task = asyncio.current_task()
        if task is None:  # not in a task (never, under asyncio): nothing to wait for later
            return await handler(event, data)
        self._tasks.add(task)
        try:
            return await handler(event, data)
        finally:
            self._tasks.discard(task)

    async def finish(self, grace: float = 10.0) -> None:
        """Wait up to `grace` seconds for the updates being handled, then cancel what is left."""
        if not self._tasks:
            return
        _, late = await asyncio.wait(set(self._tasks), timeout=grace)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late)
            log.warning("updates cancelled at shutdown", extra={"count": len(late)})


class IgnoreStrangers(BaseMiddleware):
    """Outer update middleware: what the bot must not read reaches no handler.

    Channel posts are dropped (the bot reads no channel), and so is whatever another bot sends (a loop, or someone
    else's data relayed). An update from a group or channel that is not configured is dropped and the bot leaves
    it. Changes to the bot's own membership (my_chat_member) go on to their handler, which decides.
    """

    def __init__(self, chats: KnownChats) -> None:
        self.chats = chats

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        assert isinstance(event, Update)  # registered on updates
        if event.channel_post is not None or event.edited_channel_post is not None:
            return UNHANDLED
        if event.my_chat_member is not None:
            return await handler(event, data)
        user: User | None = data.get("event_from_user")
        if user is not None and user.is_bot:
            return UNHANDLED
        chat: Chat | None = data.get("event_chat")
        if chat is not None and chat.type in GROUP_TYPES and not await self.chats.configured(chat.id):
            await self.chats.leave(data["bot"], chat, reason=event.event_type)
            return UNHANDLED
        return await handler(event, data)


#: Telegram's largest album: its photos arrive as separate messages sharing a media_group_id.
ALBUM_MAX = 10


@dataclass(slots=True)
class _Allowance:
    """One person's token bucket."""

    tokens: float
    at: float
    noticed_at: float = -math.inf
    album: str | None = None
    album_items: int = 0
    album_passed: bool = False


class FloodControl(BaseMiddleware):
    """Outer update middleware: one person's flood is cut short before it costs anything, and slows nobody else.

    A token bucket per person: `burst` messages or taps go through at once, then `rate` a second. Past that an update
    is dropped before any handler, lock or database sees it, so nothing of it is stored; the person is told once to
    slow down (`notify`, at most every `notice_every` seconds, in private chats), and each dropped update empties the
    bucket, so a flood meets silence until it pauses for 1/`rate` seconds. An album counts as one message. The
    chats in `exempt` (the staff group) are not limited. People are forgotten after `forget_after` seconds without an
    update (by then their bucket is full again), and at most `max_people` are remembered, so memory stays bounded.
    """

    def __init__(
        self,
        burst: int,
        rate: float,
        notify: Callable[[User, int], Awaitable[None]],
        *,
        exempt: Iterable[int] = (),
        notice_every: float = 60.0,
        max_people: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if burst < 1 or rate <= 0:
            raise ValueError("flood control needs a burst of at least 1 and a positive rate")
        self.burst = burst
        self.rate = rate
        self.notify = notify
        self.exempt = frozenset(exempt)
        self.notice_every = notice_every
        self.forget_after = max(burst / rate, notice_every)
        self.max_people = max_people
        self.clock = clock
        #: Least recently active first.
        self._people: OrderedDict[int, _Allowance] = OrderedDict()

    @property
    def remembered(self) -> int:
        return len(self._people)

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        assert isinstance(event, Update)  # registered on updates
        user: User | None = data.get("event_from_user")
        chat: Chat | None = data.get("event_chat")
        if user is None or event.my_chat_member is not None or (chat is not None and chat.id in self.exempt):
            return await handler(event, data)
        album = event.message.media_group_id if event.message is not None else None
        passed, warn = self._admit(user.id, album)
        if passed:
            return await handler(event, data)
        if warn:
            log.info("flood: updates dropped", extra={"user": hashed(user.id)})
            if chat is not None and chat.type == "private":
                await self.notify(user, chat.id)
        return UNHANDLED

    def _admit(self, user_id: int, album: str | None) -> tuple[bool, bool]:
        """Whether this update goes through, and whether to tell the person to slow down."""
        now = self.clock()
        self._forget_idle(now)
        state = self._people.get(user_id)
        if state is None:
            state = self._people[user_id] = _Allowance(tokens=float(self.burst), at=now)
            if len(self._people) > self.max_people:
                self._people.popitem(last=False)
        else:
            self._people.move_to_end(user_id)
            state.tokens = min(float(self.burst), state.tokens + (now - state.at) * self.rate)
            state.at = now
        if album is not None and album == state.album and state.album_items < ALBUM_MAX:
            state.album_items += 1  # the rest of an album follows its first photo, free
            return state.album_passed, False
        if state.tokens >= 1:
            state.tokens -= 1
            passed = True
        else:
            state.tokens = 0.0
            passed = False
        if album is not None:
            state.album, state.album_items, state.album_passed = album, 1, passed
        warn = not passed and now - state.noticed_at >= self.notice_every
        if warn:
            state.noticed_at = now
        return passed, warn

    def _forget_idle(self, now: float) -> None:
        while self._people:
            oldest = next(iter(self._people.values()))
            if now - oldest.at < self.forget_after:
                return
            self._people.popitem(last=False)


class OnePersonAtATime(BaseMiddleware):
    """Handles one person's updates strictly in arrival order (two quick taps), others' in parallel.

    Outer middleware on updates: the lock spans handling *and* sending, so replies keep their order too.
    asyncio locks wake waiters first come, first served, and polling starts update tasks in update order.
    """

    def __init__(self) -> None:
        self._locks: dict[int, asyncio.Lock] = {}
        self._holders: dict[int, int] = {}

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        user: User | None = data.get("event_from_user")
        if user is None:
            return await handler(event, data)
        return await self.run(user.id, lambda: handler(event, data))

    async def run(self, key: int, work: Callable[[], Awaitable[_R]]) -> _R:
        """Do `work` in turn with everything else for person `key` (also used for notices sent outside handlers)."""
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._holders[key] = self._holders.get(key, 0) + 1
        try:
            async with lock:
                return await work()
        finally:
            self._holders[key] -= 1
            if not self._holders[key]:  # nobody waits: forget the lock, memory stays flat
                del self._holders[key], self._locks[key]


class RetryRequests(BaseRequestMiddleware):
    """Retries a Bot API call on 429 (after retry_after), 5xx and network errors, with a bounded backoff.

    getUpdates is left to aiogram's poller, which has its own backoff.
    """

    def __init__(self, attempts: int = 5, base_delay: float = 0.5, max_delay: float = 30.0) -> None:
        self.attempts = attempts
        self.base_delay = base_delay
        self.max_delay = max_delay

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        if method.__api_method__ == GetUpdates.__api_method__:  # aiogram's poller backs off on its own
            return await make_request(bot, method)
        for attempt in range(1, self.attempts + 1):
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as exc:
                if attempt == self.attempts or exc.retry_after > self.max_delay:
                    raise
                delay = float(exc.retry_after)
            except (TelegramServerError, TelegramNetworkError):
                if attempt == self.attempts:
                    raise
                delay = min(self.base_delay * 2 ** (attempt - 1), self.max_delay)
            log.warning(
                "bot api call retried",
                extra={"method": type(method).__name__, "attempt": attempt, "delay": delay},
            )
            await asyncio.sleep(delay)
        raise AssertionError("unreachable: the last attempt returns or raises")
