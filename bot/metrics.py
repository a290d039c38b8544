"""Prometheus metrics: what the bot handled and sent, and how much waits. No label ever carries a person.

Every label value comes from a fixed set (update types, Bot API method names, outcomes, lanes), never from an
update: no chat or user ids, no usernames, no text.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.exceptions import TelegramAPIError, TelegramNetworkError, TelegramRetryAfter, TelegramServerError
from aiogram.methods import TelegramMethod
from aiogram.methods.base import Response, TelegramType
from aiogram.types import TelegramObject, Update
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.storage.broadcasts import ENDED, RecipientStatus
from bot.storage.tables import broadcast_recipients, broadcasts, outbox, tickets
from bot.storage.tickets import OPEN as OPEN_TICKETS
from bot.telegram.pacing import current_lane

log = logging.getLogger(__name__)

#: Update types a label may name; anything else (a type newer than this list) is "other".
UPDATE_TYPES = frozenset(Update.model_fields) - {"update_id"}
#: 5 ms to 10 s: a reply that waits on nothing takes a few ms, one behind a 429 several seconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CALL_OUTCOMES = ("ok", "retry_after", "client_error", "server_error", "network")

Depth = Callable[[], Awaitable[int] | int]


class Metrics:
    """The bot's metrics, in a registry of their own (not prometheus_client's global one, which every import shares).

    `depths` name the queue gauges (outbox, broadcast recipients, open tickets) and how to read each; they are read by
    `refresh` (run it every few seconds with `run`) because a scrape is synchronous and must not wait on the database.
    """

    def __init__(self, depths: Mapping[str, Depth] | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.updates = Counter(
            "puente_updates_handled",
            "Telegram updates handled, by type and outcome (ok or error).",
            ["type", "outcome"],
            registry=self.registry,
        )
        self.update_seconds = Histogram(
            "puente_update_handling_seconds",
            "Time from an update's arrival in the dispatcher to the end of its handling.",
            ["type"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.calls = Counter(
            "puente_bot_api_calls",
            "Bot API call attempts (each retry counts), by method and outcome.",
            ["method", "outcome"],
            registry=self.registry,
        )
        self.too_many = Counter(
            "puente_bot_api_429",
            "429 Too Many Requests answers from the Bot API, by send lane (people or bulk).",
            ["lane"],
            registry=self.registry,
        )
        self.depths = QueueDepths(depths or {})
        self.registry.register(self.depths)

    async def refresh(self) -> None:
        await self.depths.refresh()

    async def run(self, every: float = 5.0) -> None:
        """Refresh the queue gauges every `every` seconds until cancelled; a failed read keeps the last value."""
        while True:
            await self.refresh()
            await asyncio.sleep(every)


#: The help line of each queue gauge.
DEPTH_HELP = {
    "outbox": "Outbox messages neither sent nor given up on.",
    "broadcast_recipients": "Recipients of unfinished broadcasts still to be sent to.",
    "open_tickets": "Tickets waiting, claimed, escalated or assigned.",
}


class QueueDepths(Collector):
    """Gauges served from the last values read, so a scrape never touches the database."""

    def __init__(self, readers: Mapping[str, Depth]) -> None:
        self._readers = dict(readers)
        self.values: dict[str, float] = {}

    async def refresh(self) -> None:
        for name, read in self._readers.items():
            try:
                value = read()
                if inspect.isawaitable(value):
                    value = await value
            except Exception as exc:  # a gauge that is not refreshed is better than a loop that stops
                log.warning("queue depth not read", extra={"gauge": name, "error": type(exc).__name__})
                continue
            self.values[name] = float(value)

    def collect(self) -> Iterable[Metric]:
        for name in self._readers:
            gauge = GaugeMetricFamily(f"puente_{name}_depth", DEPTH_HELP.get(name, name))
            if name in self.values:
                gauge.add_metric([], self.values[name])
            yield gauge


class CountUpdates(BaseMiddleware):
    """Counts each update and times its handling. Register it as the dispatcher's first update outer middleware, so
    the time covers everything after it (the flood check, the wait for the person's turn, the handler) and an
    exception from any of them is counted before aiogram's error handler sees it."""

    def __init__(self, metrics: Metrics, clock: Callable[[], float] = time.perf_counter) -> None:
        self.metrics = metrics
        self.clock = clock

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        kind = event.event_type if isinstance(event, Update) else "other"
        kind = kind if kind in UPDATE_TYPES else "other"
        started = self.clock()
        outcome = "error"
        try:
            result = await handler(event, data)
            outcome = "ok"
            return result
        finally:
            self.metrics.update_seconds.labels(kind).observe(self.clock() - started)
            self.metrics.updates.labels(kind, outcome).inc()


def call_outcome(error: Exception) -> str:
    """The outcome label of one Bot API attempt that failed."""
    if isinstance(error, TelegramRetryAfter):
        return "retry_after"
    if isinstance(error, TelegramServerError):
        return "server_error"
    if isinstance(error, TelegramNetworkError):
        return "network"
    if isinstance(error, TelegramAPIError):
        return "client_error"
    return "network"  # aiohttp's own errors and timeouts that aiogram did not wrap


class CountCalls(BaseRequestMiddleware):
    """Counts every Bot API attempt by method and outcome, and 429s by lane.

    Register it on each Bot's session *after* RetryRequests and PaceSends (the innermost request middleware): then
    it sees each HTTP attempt (a call retried twice counts three times, each 429 once), and a call waiting for its
    send slot is not yet an attempt. Outermost, it would see one call per retried sequence and hide the 429s.
    """

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        name = method.__api_method__  # aiogram's fixed method names: no data from the call
        try:
            response = await make_request(bot, method)
        except Exception as exc:  # not a cancellation: that is no outcome of the call
            outcome = call_outcome(exc)
            self.metrics.calls.labels(name, outcome).inc()
            if outcome == "retry_after":
                self.metrics.too_many.labels(current_lane().name.lower()).inc()
            raise
        self.metrics.calls.labels(name, "ok").inc()
        return response


# ---- the queue depths, read through the store's engine (SQLite and PostgreSQL alike)


async def outbox_depth(engine: AsyncEngine) -> int:
    """Outbox entries not sent and not given up on."""
    query = select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None), outbox.c.failed.is_(None))
    async with engine.connect() as conn:
        return int((await conn.execute(query)).scalar_one())


async def broadcast_depth(engine: AsyncEngine) -> int:
    """Recipients still to be sent to, in broadcasts not cancelled or done."""
    query = (
        select(func.count())
        .select_from(broadcast_recipients.join(broadcasts, broadcasts.c.id == broadcast_recipients.c.broadcast_id))
        .where(broadcast_recipients.c.status == RecipientStatus.PENDING, broadcasts.c.status.not_in(ENDED))
    )
    async with engine.connect() as conn:
        return int((await conn.execute(query)).scalar_one())


async def open_tickets(engine: AsyncEngine) -> int:
    """Tickets not closed."""
    query = select(func.count()).select_from(tickets).where(tickets.c.status.in_(OPEN_TICKETS))
    async with engine.connect() as conn:
        return int((await conn.execute(query)).scalar_one())


def store_depths(engine: AsyncEngine) -> dict[str, Depth]:
    """The three queue gauges, read from the store's engine."""
    return {
        "outbox": lambda: outbox_depth(engine),
        "broadcast_recipients": lambda: broadcast_depth(engine),
        "open_tickets": lambda: open_tickets(engine),
    }
