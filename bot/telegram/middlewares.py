"""Update and request middlewares: one person's updates in order, and Telegram's limits and hiccups honoured."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.exceptions import TelegramNetworkError, TelegramRetryAfter, TelegramServerError
from aiogram.methods import GetUpdates, TelegramMethod
from aiogram.methods.base import Response, TelegramType
from aiogram.types import TelegramObject, User

log = logging.getLogger(__name__)


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
        key = user.id
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._holders[key] = self._holders.get(key, 0) + 1
        try:
            async with lock:
                return await handler(event, data)
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
