"""A durable, rate-limited outbox: messages to one chat go out in order, at the pace Telegram allows, across restarts.

Telegram takes about 20 messages a minute into one group, about one a second into one private chat and 30 a second
overall; beyond that it answers 429. Relaying a person's burst of messages into a staff group therefore has to queue,
and the queue has to be in the database: what was acknowledged to the person must arrive even if the bot is killed.

How it works:

- `put` inserts a pending row, in the caller's transaction when given one (enqueued atomically with the caller's
  own writes, or not at all), and wakes the worker.
- The worker keeps, per chat, the oldest pending row (its "head") and when that chat may send next: a sliding window
  for groups (chat_id < 0), an interval for private chats, and holds after a 429 or a transient error. It sends a
  chat's head only when the previous one of that chat is finished (strict FIFO per chat), starts sends for different
  chats concurrently (a chat waiting or hanging never blocks another), spaces all sends by the global rate, and
  sleeps until the earliest moment something can go or until `put` wakes it.
- Database work on the hot path: one SELECT (the heads of the chats that changed) per wake-up that needs one, one
  UPDATE per sent row. The full SELECT of every chat's head runs only when the worker starts.

Delivery is at least once: a row is marked sent after Telegram answered, so a row in flight when the process dies
(or whose UPDATE fails) is sent again on the next start. `stop()` lets sends in flight finish first.

Several workers (webhook processes on one PostgreSQL database) may each run an outbox: before a row is sent it is
claimed with a lease (bot.claims), only a chat's head is ever claimed, and a head another live worker holds keeps
its whole chat to that worker until it is finished, so each chat still goes out in order. Every `poll` seconds a
worker reads every chat's head again, which is how it sees rows other workers put (and rows a dead worker's lease
left). The pace limits are kept per worker: two workers sending into one group can together exceed its window.

Notices (`notice`) are the other lane: short texts that matter less than any row, such as telling someone in the
staff group that they may not answer people. They live in memory only, go to a chat only when it has no row
pending and at most half its window is used, and a chat keeps only its latest few. So nobody writing into a group
can push its rows back, and a restart may drop a notice, never a row.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import math
import re
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, cast, get_args

from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNotFound,
    TelegramRetryAfter,
)
from sqlalchemy import Select, event, func, insert, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from bot import claims
from bot.logs import hashed
from bot.storage.sql import SqlStore
from bot.storage.tables import outbox

log = logging.getLogger(__name__)

Kind = Literal["text", "copy"]
#: A text entry's payload key: send it with protect_content (nobody can forward or save it in Telegram's apps).
PROTECT = "protect"
KINDS: tuple[str, ...] = get_args(Kind)

#: Refusals that retrying the same row cannot fix: bad text, chat gone, bot blocked or removed, file too big.
#: (TelegramEntityTooLarge is a TelegramNetworkError, so this is checked before the transient ones.)
PERMANENT = (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNotFound,
    TelegramEntityTooLarge,
    TelegramMigrateToChat,
)

_QUOTED = re.compile(r'"[^"]*"')
_PENDING = (outbox.c.sent_at.is_(None), outbox.c.failed.is_(None))


@dataclass(frozen=True)
class Entry:
    """One queued message; `payload` is {"text": str}, or {"from_chat_id": int, "message_id": int} for a copy."""

    id: int
    chat_id: int
    thread_id: int | None
    kind: Kind
    payload: Mapping[str, Any]
    attempts: int
    created_at: dt.datetime


@dataclass(frozen=True)
class ChatLimits:
    """Telegram's pace: `group_per_window` messages per `group_window` seconds into one group, and so on."""

    group_per_window: int = 20
    group_window: float = 60.0
    private_per_second: float = 1.0
    global_per_second: float = 30.0

    def window(self, chat_id: int) -> tuple[int, float]:
        """How many sends a chat may make per how many seconds (a private chat's interval is a window of one)."""
        if chat_id < 0:
            return self.group_per_window, self.group_window
        return 1, 1.0 / self.private_per_second


#: Sends one entry and returns the message id Telegram gave it; raises aiogram's exceptions.
Deliver = Callable[[Entry], Awaitable[int]]
OnSent = Callable[[Entry, int], Awaitable[None]]
#: Told of a row Telegram refused for good (after it is recorded as failed), with Telegram's error.
OnRefused = Callable[[Entry, TelegramAPIError], Awaitable[None]]


def bot_deliver(bot: Bot) -> Deliver:
    """A `Deliver` over a Bot: sendMessage for "text", copyMessage for "copy", into the entry's topic if any."""

    async def deliver(entry: Entry) -> int:
        if entry.kind == "text":
            sent = await bot.send_message(
                entry.chat_id,
                entry.payload["text"],
                message_thread_id=entry.thread_id,
                protect_content=True if entry.payload.get(PROTECT) else None,
            )
            return sent.message_id
        copied = await bot.copy_message(
            entry.chat_id,
            entry.payload["from_chat_id"],
            entry.payload["message_id"],
            message_thread_id=entry.thread_id,
        )
        return copied.message_id

    return deliver


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class _Chat:
    """When one chat may send next: the times of its recent sends (its window) and any hold (429, backoff)."""

    recent: deque[float] = field(default_factory=deque)
    held_until: float = -math.inf

    def ready_at(self, now: float, per_window: int, window: float) -> float:
        while self.recent and self.recent[0] <= now - window:
            self.recent.popleft()
        ready = self.held_until
        if len(self.recent) >= per_window:
            ready = max(ready, self.recent[-per_window] + window)
        return ready

    def finished(self, now: float) -> None:
        # The window counts from when Telegram may have received the message, at the latest when it answered:
        # replacing the send's start time with its end time errs on the slow side. One send per chat at a time,
        # so the last time is this send's.
        if self.recent:
            self.recent[-1] = max(self.recent[-1], now)

    def unstarted(self) -> None:
        """The send just counted did not happen (the row was another worker's): give its place back."""
        if self.recent:
            self.recent.pop()

    def idle(self, now: float, window: float) -> bool:
        return self.held_until <= now and (not self.recent or self.recent[-1] <= now - window)


#: Notices kept per chat while rows go first; older ones are dropped.
NOTICES_PER_CHAT = 3


@dataclass(frozen=True)
class _Notice:
    chat_id: int
    thread_id: int | None
    text: str


class Outbox:
    """The queue (rows in `outbox`) and its worker; one per process, any number per database (see claims above).

    `worker_id` names this worker in the rows it claims (unique per process by default), `lease` is how long a claim
    holds without renewal, and `poll` how often every chat's head is read again (None: only at start and on
    `reload()`, enough when this is the database's only worker).
    """

    def __init__(
        self,
        store: SqlStore,
        deliver: Deliver,
        *,
        limits: ChatLimits = ChatLimits(),
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], dt.datetime] = _utc_now,
        on_sent: OnSent | None = None,
        on_refused: OnRefused | None = None,
        max_attempts: int = 8,
        base_delay: float = 1.0,
        max_delay: float = 60.0,
        worker_id: str | None = None,
        lease: float = claims.DEFAULT_LEASE,
        poll: float | None = 1.0,
    ) -> None:
        if lease <= 0 or (poll is not None and poll <= 0):
            raise ValueError("lease and poll must be positive")
        self._store = store
        self.worker_id = worker_id or claims.new_worker_id()
        self._lease = lease
        self._poll = poll
        self._deliver = deliver
        self._limits = limits
        self._clock = clock
        self._now = now
        self._on_sent = on_sent
        self._on_refused = on_refused
        self._max_attempts = max_attempts
        self._base_delay = base_delay
        self._max_delay = max_delay

        self._wakeup = asyncio.Event()
        self._progress = asyncio.Event()  # replaced at every finished send; drain() waits on the one it saw
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._grace = 10.0

        self._heads: dict[int, Entry] = {}  # chat -> oldest pending row (stale while the chat is busy)
        self._notices: dict[int, deque[_Notice]] = {}  # chat -> notices waiting for the chat to have no row
        self._chats: dict[int, _Chat] = {}
        self._busy: dict[int, asyncio.Task[None]] = {}  # chats with a send in flight, until their head is re-read
        self._in_flight = 0  # sends not yet finished (recorded and on_sent awaited)
        self._finished: set[int] = set()  # busy chats whose send ended: re-read their head, then free them
        self._touched: set[int] = set()  # chats that got new rows
        self._reload_all = True
        self._global_next = -math.inf
        self._sweep_at = 64
        self._loaded = False  # whether this run has read every chat's head yet
        self._poll_at = math.inf  # when every chat's head is read again (clock time)
        self._renew_at = math.inf  # when this worker's leases are next extended
        # Rows put in a caller's transaction become visible only once it commits: the worker is woken when that
        # connection goes back to the pool (after commit or rollback), keyed by the DBAPI connection's id.
        self._uncommitted: dict[int, set[int]] = {}
        ref = weakref.ref(self)

        def checked_in(dbapi_connection: Any, _record: Any) -> None:
            outbox = ref()
            if outbox is not None and outbox._uncommitted:
                outbox._connection_returned(dbapi_connection)

        event.listen(store.engine.sync_engine, "checkin", checked_in)

    # ------------------------------------------------------------------ the queue

    async def put(
        self,
        chat_id: int,
        kind: Kind,
        payload: Mapping[str, Any],
        *,
        thread_id: int | None = None,
        conn: AsyncConnection | None = None,
    ) -> int:
        """Queue one message and return its row id.

        With `conn` (from this store's engine, e.g. `store.writing()`), the row is part of the caller's transaction
        and the worker is woken when that connection is returned to the pool. Inside `store.writing()` always pass
        its connection: on SQLite a second `writing()` would wait for the first forever.
        """
        _check(kind, payload)
        values = {
            "chat_id": chat_id,
            "thread_id": thread_id,
            "kind": kind,
            "payload": dict(payload),
            "created_at": self._now(),
            "attempts": 0,
        }
        if conn is not None:
            row_id = await _insert(conn, values)
            raw = await conn.get_raw_connection()
            self._uncommitted.setdefault(id(raw.dbapi_connection), set()).add(chat_id)
            return row_id
        async with self._store.writing() as own:
            row_id = await _insert(own, values)
        self._touched.add(chat_id)
        self._wakeup.set()
        return row_id

    def notice(self, chat_id: int, text: str, *, thread_id: int | None = None) -> None:
        """Queue a notice (see the module's docstring): after every row of the chat, best effort, never durable."""
        if not text:
            raise ValueError("a notice needs a text")
        waiting = self._notices.setdefault(chat_id, deque(maxlen=NOTICES_PER_CHAT))
        waiting.append(_Notice(chat_id, thread_id, text))
        self._wakeup.set()

    def reload(self) -> None:
        """Rows were deleted behind the worker's back (a person erased): read every chat's head again, so nothing
        it had read of theirs is sent or kept in memory. A send already in flight still finishes."""
        self._reload_all = True
        self._wakeup.set()

    async def in_flight(self, chat_id: int) -> None:
        """Wait until the send in flight to `chat_id`, if any, is delivered and recorded (`on_sent` included)."""
        task = self._busy.get(chat_id)
        if task is not None:
            await asyncio.wait({task})  # not `await task`: a cancelled caller must not cancel the send

    async def pending(self, chat_id: int | None = None) -> int:
        """Rows neither sent nor failed (in one chat, or everywhere)."""
        query = select(func.count()).select_from(outbox).where(*_PENDING)
        if chat_id is not None:
            query = query.where(outbox.c.chat_id == chat_id)
        async with self._store.engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    # ------------------------------------------------------------------ the worker's life

    async def start(self) -> None:
        """Run the worker in a task (rows left pending by a previous process are picked up first thing)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run(), name="outbox")

    async def stop(self, grace: float = 10.0) -> None:
        """Stop sending: sends in flight get `grace` seconds to finish and be recorded, then are cancelled."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping, self._grace = True, grace
        self._wakeup.set()
        await asyncio.wait({task})  # not `await task`: cancelling stop() must not cancel the worker's settling
        self._stopping = False
        if not task.cancelled() and (exc := task.exception()) is not None:
            raise exc

    async def drain(self, timeout: float) -> None:  # noqa: ASYNC109 (a deadline is the point of this test helper)
        """Wait until no row is pending and no send is in flight; TimeoutError after `timeout` seconds."""
        async with asyncio.timeout(timeout):
            while True:
                progress = self._progress
                if await self.pending() == 0 and not self._in_flight:
                    return
                await progress.wait()

    async def run(self) -> None:
        """The worker loop, until `stop()` or cancellation."""
        self._reload_all = True
        self._touched.clear()
        failures = 0
        freed = self._loaded = False
        started = self._clock()
        self._renew_at = started + self._lease / 3
        self._poll_at = math.inf if self._poll is None else started + self._poll
        try:
            while not self._stopping:
                self._wakeup.clear()
                try:
                    if not freed:
                        await self._free_dead_claims()
                        freed = True
                    await self._keep_claims(self._clock())
                    await self._refresh()
                except Exception:
                    # The database hiccuped (locked, connection lost): try again later rather than die silently.
                    failures += 1
                    delay = self._backoff(failures)
                    log.exception("outbox read failed", extra={"attempt": failures, "delay": delay})
                    await self._sleep(delay)
                    continue
                failures = 0
                if self._stopping:  # stop() came during the read: start nothing new
                    break
                now = self._clock()
                await self._sleep(min(self._dispatch(now), max(0.0, min(self._poll_at, self._renew_at) - now)))
        finally:
            await self._settle()

    async def _sleep(self, delay: float) -> None:
        """Until `delay` has passed or something wakes the worker (a put, a finished send, stop)."""
        if self._stopping:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(None if math.isinf(delay) else delay):
                await self._wakeup.wait()

    async def _keep_claims(self, now: float) -> None:
        """Renew this worker's leases (freeing dead workers' on this host) and, when a poll is due, ask for every
        chat's head again."""
        if now >= self._poll_at:
            assert self._poll is not None
            self._poll_at = now + self._poll
            self._reload_all = True
        if now >= self._renew_at:
            self._renew_at = now + self._lease / 3
            await self._free_dead_claims()  # a worker on this host killed since: its chats need not wait a lease
            async with self._store.writing() as conn:
                await conn.execute(
                    update(outbox)
                    .where(outbox.c.claimed_by == self.worker_id, *_PENDING)
                    .values(lease_until=self._lease_end())
                )

    async def _free_dead_claims(self) -> None:
        """Release the pending rows of workers known dead (a previous run of this process): no lease to wait out."""
        async with self._store.engine.connect() as conn:
            holders = (
                (
                    await conn.execute(
                        select(outbox.c.claimed_by).where(*_PENDING, outbox.c.claimed_by.is_not(None)).distinct()
                    )
                )
                .scalars()
                .all()
            )
        gone = claims.dead(holders)
        if not gone:
            return
        async with self._store.writing() as conn:
            await conn.execute(
                update(outbox).where(outbox.c.claimed_by.in_(gone), *_PENDING).values(claimed_by=None, lease_until=None)
            )
        log.info("outbox claims freed", extra={"workers": len(gone)})

    def _lease_end(self) -> dt.datetime:
        return self._now() + dt.timedelta(seconds=self._lease)

    def _mine_or_free(self) -> Any:
        """SQL: a row this worker may claim (free, lease past, or already its own)."""
        return or_(claims.claimable(outbox, self._now()), outbox.c.claimed_by == self.worker_id)

    async def _claim(self, entry: Entry) -> bool:
        """Take the row for this worker, unless another one holds it or it is no longer pending.

        On PostgreSQL the row is locked first, skipping it if another worker is claiming it at this moment; SQLite
        has one writer at a time, so the conditional UPDATE alone decides (one statement less per row).
        """
        claimable = (outbox.c.id == entry.id, *_PENDING, self._mine_or_free())
        async with self._store.writing() as conn:
            if conn.dialect.name == "postgresql":
                locked = await conn.execute(select(outbox.c.id).where(*claimable).with_for_update(skip_locked=True))
                if locked.first() is None:
                    return False
            result = await conn.execute(
                update(outbox).where(*claimable).values(claimed_by=self.worker_id, lease_until=self._lease_end())
            )
        return bool(result.rowcount)

    async def _settle(self) -> None:
        """Let sends in flight finish (so they are recorded, not sent twice), then cancel what is left."""
        tasks = set(self._busy.values())
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=self._grace)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
                log.warning("outbox sends cancelled", extra={"count": len(late)})
        self._busy.clear()
        self._finished.clear()
        self._heads.clear()
        self._grace = 10.0
        await self._release_claims()

    async def _release_claims(self) -> None:
        """Hand this worker's pending rows back (a send cut off may have arrived: sent again, at least once)."""
        try:
            async with self._store.writing() as conn:
                await conn.execute(
                    update(outbox)
                    .where(outbox.c.claimed_by == self.worker_id, *_PENDING)
                    .values(claimed_by=None, lease_until=None)
                )
        except Exception:  # the database is gone: the lease frees them instead
            log.warning("outbox claims not released", extra={"worker": self.worker_id})

    # ------------------------------------------------------------------ choosing what to send

    async def _refresh(self) -> None:
        """Re-read the heads that may have changed, in one SELECT (every chat's only when the worker starts)."""
        everything = self._reload_all
        finished = self._finished
        # A new row matters only to a chat with no known head: otherwise it queues behind that head, and a busy
        # chat's head is re-read when its send ends.
        touched = {c for c in self._touched if c not in self._busy and c not in self._heads}
        self._touched = set()
        if not everything and not finished and not touched:
            return
        chats = finished | touched
        self._reload_all, self._finished = False, set()
        try:
            async with self._store.engine.connect() as conn:
                query = _heads_query(None if everything else chats).where(self._mine_or_free())
                rows = (await conn.execute(query)).all()
        except BaseException:
            self._reload_all |= everything
            self._finished |= finished
            self._touched |= touched
            raise
        if everything:
            self._heads.clear()
            if not self._loaded:  # once per run, not at every poll
                self._loaded = True
                log.info("outbox loaded", extra={"chats": len(rows)})
        else:
            for chat_id in chats:
                self._heads.pop(chat_id, None)
        for row in rows:
            entry = _entry(row)
            self._heads[entry.chat_id] = entry
        for chat_id in finished:
            del self._busy[chat_id]

    def _dispatch(self, now: float) -> float:
        """Start every send that may start now; return the seconds until the next one may."""
        next_at = math.inf
        for entry in sorted(self._heads.values(), key=lambda e: e.id):  # oldest first: fair between chats
            if entry.chat_id in self._busy:
                continue
            chat = self._chats.setdefault(entry.chat_id, _Chat())
            ready = chat.ready_at(now, *self._limits.window(entry.chat_id))
            if ready > now:
                next_at = min(next_at, ready)
                continue
            if self._global_next > now:
                next_at = min(next_at, self._global_next)
                break
            chat.recent.append(now)
            self._in_flight += 1
            self._global_next = now + 1.0 / self._limits.global_per_second
            self._busy[entry.chat_id] = asyncio.create_task(self._send(entry, chat), name="outbox send")
        next_at = min(next_at, self._dispatch_notices(now))
        if len(self._chats) > self._sweep_at:
            self._forget_idle(now)
        return max(0.0, next_at - now)

    def _dispatch_notices(self, now: float) -> float:
        """Start the notices of chats with no row pending; return when the next one may go (inf: none waits)."""
        next_at = math.inf
        for chat_id in [c for c in self._notices if c not in self._heads and c not in self._busy]:
            per_window, window = self._limits.window(chat_id)
            chat = self._chats.setdefault(chat_id, _Chat())
            ready = chat.ready_at(now, max(1, per_window // 2), window)  # half the window stays for rows
            if ready > now or self._global_next > now:
                next_at = min(next_at, max(ready, self._global_next))
                continue
            waiting = self._notices[chat_id]
            notice = waiting.popleft()
            if not waiting:
                del self._notices[chat_id]
            chat.recent.append(now)
            self._in_flight += 1
            self._global_next = now + 1.0 / self._limits.global_per_second
            self._busy[chat_id] = asyncio.create_task(self._send_notice(notice, chat), name="outbox notice")
        return next_at

    def _forget_idle(self, now: float) -> None:
        """Drop the pacing state of chats with nothing queued and nothing left to remember (memory stays flat)."""
        for chat_id in [c for c in self._chats if c not in self._heads and c not in self._busy]:
            if self._chats[chat_id].idle(now, self._limits.window(chat_id)[1]):
                del self._chats[chat_id]
        self._sweep_at = 2 * len(self._chats) + 64

    def _connection_returned(self, dbapi_connection: Any) -> None:
        chats = self._uncommitted.pop(id(dbapi_connection), None)
        if chats:
            self._touched |= chats
            self._wakeup.set()

    # ------------------------------------------------------------------ sending one row

    async def _send(self, entry: Entry, chat: _Chat) -> None:
        where = hashed(entry.chat_id)
        claimed = False
        try:
            claimed = await self._claim(entry)
            if not claimed:
                # Another worker took the chat's head since it was read: it is theirs; the head is read again.
                chat.unstarted()
                return
            try:
                message_id = await self._deliver(entry)
            except TelegramRetryAfter as exc:
                chat.held_until = self._clock() + exc.retry_after
                log.info("outbox chat held", extra={"chat": where, "retry_after": exc.retry_after})
            except PERMANENT as exc:
                log.warning("outbox message refused", extra={"chat": where, "error": type(exc).__name__})
                if await self._finish(entry, failed=failure_reason(exc)):
                    await self._tell_refused(entry, exc)  # once: a worker that lost the row leaves it to its owner
            except Exception as exc:  # 5xx, network, or anything unexpected: retried a bounded number of times
                await self._retry_later(entry, chat, exc)
            else:
                # on_sent even if another worker took the row over meanwhile: this copy is in the chat all the same
                # (the staff can reply to it), and the new owner's copy is told of by its own worker.
                await self._finish(entry, sent_message_id=message_id)
                await self._notify(entry, message_id)
        except Exception:
            # Recording failed (the database): the row stays pending and is sent again later (at least once).
            chat.held_until = self._clock() + self._base_delay
            log.exception("outbox bookkeeping failed", extra={"chat": where})
        finally:
            if claimed:
                chat.finished(self._clock())
            self._in_flight -= 1
            self._finished.add(entry.chat_id)
            self._wakeup.set()
            self._progress.set()
            self._progress = asyncio.Event()

    async def _send_notice(self, notice: _Notice, chat: _Chat) -> None:
        """Send a notice once; a refusal or a 429 drops it (the 429 also holds the chat's rows, as for a row)."""
        entry = Entry(
            0, notice.chat_id, notice.thread_id, "text", MappingProxyType({"text": notice.text}), 0, self._now()
        )
        try:
            await self._deliver(entry)
        except TelegramRetryAfter as exc:
            chat.held_until = self._clock() + exc.retry_after
            log.info("outbox notice dropped: chat held", extra={"chat": hashed(notice.chat_id)})
        except Exception as exc:
            log.warning("outbox notice dropped", extra={"chat": hashed(notice.chat_id), "error": type(exc).__name__})
        finally:
            chat.finished(self._clock())
            self._in_flight -= 1
            self._finished.add(notice.chat_id)
            self._wakeup.set()
            self._progress.set()
            self._progress = asyncio.Event()

    async def _retry_later(self, entry: Entry, chat: _Chat, exc: Exception) -> None:
        attempts = entry.attempts + 1
        if attempts >= self._max_attempts:
            reason = f"gave up: {failure_reason(exc)}"
            await self._finish(entry, failed=reason, attempts=attempts)
            log.warning("outbox gave up", extra={"chat": hashed(entry.chat_id), "attempts": attempts})
            return
        delay = self._backoff(attempts)
        async with self._store.writing() as conn:
            # The claim is kept through the backoff, so no other worker sends the row before it is due.
            held = dt.timedelta(seconds=delay + self._lease)
            await conn.execute(
                update(outbox)
                .where(outbox.c.id == entry.id, outbox.c.claimed_by == self.worker_id)
                .values(attempts=attempts, lease_until=self._now() + held)
            )
        chat.held_until = self._clock() + delay
        log.warning(
            "outbox send retried",
            extra={"chat": hashed(entry.chat_id), "attempt": attempts, "delay": delay, "error": type(exc).__name__},
        )

    async def _finish(self, entry: Entry, **values: Any) -> bool:
        """Record the row as sent or failed if this worker still holds it; False if another took it over."""
        if "sent_message_id" in values:
            values["sent_at"] = self._now()
        async with self._store.writing() as conn:
            result = await conn.execute(
                update(outbox)
                .where(outbox.c.id == entry.id, outbox.c.claimed_by == self.worker_id)
                .values(lease_until=None, **values)
            )
        if result.rowcount:
            return True
        log.warning("outbox claim lost", extra={"chat": hashed(entry.chat_id), "worker": self.worker_id})
        return False

    async def _notify(self, entry: Entry, message_id: int) -> None:
        if self._on_sent is None:
            return
        try:
            await self._on_sent(entry, message_id)
        except Exception:  # the row is sent either way; the caller's follow-up failing must not resend it
            log.exception("outbox on_sent failed", extra={"chat": hashed(entry.chat_id)})

    async def _tell_refused(self, entry: Entry, error: TelegramAPIError) -> None:
        if self._on_refused is None:
            return
        try:
            await self._on_refused(entry, error)
        except Exception:  # the row is failed either way; what the caller does about it is its own business
            log.exception("outbox on_refused failed", extra={"chat": hashed(entry.chat_id)})

    def _backoff(self, attempt: int) -> float:
        return float(min(self._base_delay * 2 ** (attempt - 1), self._max_delay))


async def _insert(conn: AsyncConnection, values: Mapping[str, Any]) -> int:
    result = await conn.execute(insert(outbox).values(**values))
    key = result.inserted_primary_key
    assert key is not None  # a single-row INSERT always has one
    return int(key[0])


def _heads_query(chats: Collection[int] | None) -> Select[Any]:
    """The oldest pending row of each chat (of the given chats), oldest first.

    The caller narrows it to the heads it may claim: a chat whose head another worker holds is left out entirely,
    never skipped to its next row, so its order stays.
    """
    first = select(func.min(outbox.c.id)).where(*_PENDING).group_by(outbox.c.chat_id)
    if chats is not None:
        first = first.where(outbox.c.chat_id.in_(chats))
    return select(outbox).where(outbox.c.id.in_(first)).order_by(outbox.c.id)


def _entry(row: Row[Any]) -> Entry:
    created = row.created_at
    return Entry(
        id=row.id,
        chat_id=row.chat_id,
        thread_id=row.thread_id,
        kind=cast(Kind, row.kind),
        payload=MappingProxyType(dict(row.payload)),
        attempts=row.attempts,
        created_at=created if created.tzinfo else created.replace(tzinfo=dt.UTC),  # SQLite hands back naive UTC
    )


def _check(kind: str, payload: Mapping[str, Any]) -> None:
    """Refuse a malformed entry at `put`, where the caller can see it, not at send time."""
    if kind not in KINDS:
        raise ValueError(f"unknown outbox kind {kind!r}")
    if kind == "text":
        if not isinstance(payload.get("text"), str) or not payload["text"]:
            raise ValueError("a text entry needs a non-empty 'text'")
    elif not all(isinstance(payload.get(k), int) for k in ("from_chat_id", "message_id")):
        raise ValueError("a copy entry needs integer 'from_chat_id' and 'message_id'")


def failure_reason(exc: BaseException) -> str:
    """Why a row failed, short: the error type and Telegram's description, minus anything it quotes.

    A description can quote a piece of the message ('Unsupported start tag "b"'); quoted parts are blanked.
    Anything but a Telegram error gives its type only, since its text could be anything.
    """
    if isinstance(exc, TelegramAPIError):
        description = _QUOTED.sub('"…"', exc.message)
        return f"{type(exc).__name__}: {description}"[:120]
    return type(exc).__name__
