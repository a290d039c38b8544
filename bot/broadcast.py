"""Sends broadcasts: one at a time, to every recipient once, at Telegram's pace, and across restarts.

The job and its recipients are rows (bot.storage.broadcasts). The runner takes the broadcast to work on (a running
one first: that is a restart), fixes its recipients if it is just starting, and pages through the pending ones in
user id order. Each recipient's send is a task, at most `concurrency` at a time, all paced by the process's one
`Pacer` in its bulk lane, so people in the questionnaire are answered first. A recipient who is being answered at
that moment gets the broadcast when their own chat's pace (`ChatPace`) allows: the slot is taken first, then the
chat's turn, so the broadcast never keeps their replies waiting for a bulk slot.

What a send can meet, and what happens:

- 429: the bulk lane holds for `retry_after` and the same recipient is tried again (not counted as an attempt);
- 403 (blocked the bot, account deactivated): "blocked", and they are left out of later broadcasts;
- another refusal (400 "chat not found", a file Telegram no longer has): "failed" with Telegram's reason;
- 5xx, a timeout, the network: tried again after 1, 2, 4… seconds, at most `max_attempts` times, then "failed".

Outcomes are written in batches every `flush_every` seconds. A message is sent at least once: after a kill -9 the
messages in flight and those sent in the last unflushed moment go again; nobody is skipped.

The admin who composed the broadcast sees one progress message, edited at most every `progress_every` seconds,
with Pause/Resume/Cancel buttons, and gets a final report.

Several workers (webhook processes on one PostgreSQL database) may each run a Broadcaster on the same broadcast.
Each claims its recipients in batches of `concurrency` with a lease (bot.claims, `Broadcasts.claim`), records only
the outcomes of rows it still holds, and reads the broadcast's status again before every batch, so a pause or a
cancel tapped on any worker stops them all within one batch. A worker killed mid-batch leaves its rows to the
others once its lease has passed (at once to a restart of the same process). Who talks to the admin:

- the progress message is posted and edited by one worker, the one holding the claim on the broadcast's row
  (taken when it starts working on it, renewed while it lives, taken over by another worker once it lapses);
  a worker built with `reports_progress=False` never takes it;
- the final report comes from the worker whose `finish` marked the broadcast done (exactly one), or for a pause or
  a cancel from the reporting worker (or from the worker that was tapped, when no live worker reports it).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
import zoneinfo
from collections.abc import Awaitable, Callable
from typing import Protocol

from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNotFound,
    TelegramRetryAfter,
)

from bot import claims
from bot.i18n import Translator
from bot.intents import ControlBroadcast
from bot.jobs import stop_if_cancelled
from bot.logs import hashed
from bot.outbox import failure_reason
from bot.outgoing import Button, Outgoing
from bot.storage.broadcasts import (
    Broadcast,
    Broadcasts,
    BroadcastStatus,
    Counts,
    Outcome,
    Recipient,
    RecipientStatus,
    Version,
)
from bot.telegram.pacing import ChatPace, Lane, Pacer, prepaced
from bot.texts import T

log = logging.getLogger(__name__)

#: Refusals that no retry can change (a 403 is handled before these: the person is unreachable).
REFUSED = (TelegramBadRequest, TelegramNotFound, TelegramEntityTooLarge, TelegramMigrateToChat)

#: The runner looks for work at least this often (seconds), e.g. a broadcast queued by another process.
POLL = 30.0

#: Sends one language version to one chat; raises aiogram's exceptions.
SendVersion = Callable[[int, Version], Awaitable[None]]


class Board(Protocol):
    """Where the admin watches a broadcast: a message the runner posts once and then edits."""

    async def post(self, chat_id: int, message: Outgoing) -> int | None: ...

    async def edit(self, chat_id: int, message_id: int, message: Outgoing) -> None: ...


class Broadcaster:
    """Runs broadcasts; one per process, any number per database (see the module's docstring).

    `worker_id` names this worker in the rows it claims (unique per process by default), `lease` is how long a
    claim holds without renewal, `poll` how often it looks again while the recipients left are other workers', and
    `reports_progress` whether it may be the one that shows the admin the progress.
    """

    def __init__(
        self,
        broadcasts: Broadcasts,
        send: SendVersion,
        board: Board,
        pacer: Pacer,
        translator: Translator,
        *,
        now: Callable[[], dt.datetime],
        timezone: str = "UTC",
        clock: Callable[[], float] = time.monotonic,
        concurrency: int = 16,
        progress_every: float = 5.0,
        flush_every: float = 0.2,
        page_size: int = 500,
        max_attempts: int = 5,
        base_delay: float = 1.0,
        max_delay: float = 30.0,
        chats: ChatPace | None = None,
        worker_id: str | None = None,
        lease: float = claims.DEFAULT_LEASE,
        poll: float = 1.0,
        reports_progress: bool = True,
    ) -> None:
        if lease <= 0 or poll <= 0:
            raise ValueError("lease and poll must be positive")
        self.broadcasts = broadcasts
        self.worker_id = worker_id or claims.new_worker_id()
        self._lease = lease
        self._poll = poll
        self._reports_progress = reports_progress
        self._reporting = False  # whether this worker holds the broadcast's progress message
        self._send = send
        self._board = board
        self._pacer = pacer
        self._chats = chats
        self._tr = translator
        self._now = now
        self._timezone = zoneinfo.ZoneInfo(timezone)  # the estimated finish is said in the NGO's time
        self._clock = clock
        self._concurrency = concurrency
        self._progress_every = progress_every
        self._flush_every = flush_every
        # Claimed at a time: enough to keep every slot busy, few enough that a killed worker strands few rows.
        self._batch = max(1, min(page_size, concurrency))
        self._max_attempts = max_attempts
        self._base_delay = base_delay
        self._max_delay = max_delay

        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._current: int | None = None  # the broadcast being sent
        self._halt = asyncio.Event()  # set when the current broadcast is paused or cancelled
        self._opted_out: set[int] = set()  # people who left while the current broadcast runs
        self._handled: set[int] = set()  # recipients this run has sent to (or tried): never twice, recorded or not
        self._outcomes: list[Outcome] = []
        self._rate = _RateMeter(clock)

    # ------------------------------------------------------------------ outside: lifecycle and controls

    async def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run(), name="broadcaster")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def wake(self) -> None:
        """Something may be ready to go (a broadcast submitted or resumed)."""
        self._wakeup.set()

    def opted_out(self, user_id: int) -> None:
        """A person sent /stop or deleted themselves: whatever runs now skips them."""
        if self._current is not None:
            self._opted_out.add(user_id)

    async def control(self, broadcast_id: int, action: str) -> Broadcast | None:
        """Pause, resume or cancel; None when the broadcast's state does not allow it (already done, say)."""
        now = self._now()
        match action:
            case "pause":
                changed = await self.broadcasts.transition(
                    broadcast_id, BroadcastStatus.PAUSED, allowed_from=(BroadcastStatus.RUNNING,), now=now
                )
            case "resume":
                changed = await self.broadcasts.transition(
                    broadcast_id, BroadcastStatus.RUNNING, allowed_from=(BroadcastStatus.PAUSED,), now=now
                )
            case "cancel":
                changed = await self.broadcasts.transition(
                    broadcast_id,
                    BroadcastStatus.CANCELLED,
                    allowed_from=(
                        BroadcastStatus.RUNNING,
                        BroadcastStatus.PAUSED,
                        BroadcastStatus.QUEUED,
                        BroadcastStatus.SCHEDULED,
                    ),
                    now=now,
                )
            case _:
                return None
        if changed is None:
            return None
        log.info("broadcast control", extra={"broadcast": broadcast_id, "action": action})
        if broadcast_id == self._current and changed.status != BroadcastStatus.RUNNING:
            self._halt.set()
        elif changed.status in (BroadcastStatus.CANCELLED, BroadcastStatus.PAUSED) and not changed.reported_by_another(
            self.worker_id, now
        ):  # a live reporting worker shows it itself when it halts
            await self._show(changed, final=changed.status == BroadcastStatus.CANCELLED)
        self.wake()
        return changed

    # ------------------------------------------------------------------ the runner

    async def run(self) -> None:
        failures = 0
        while True:
            self._wakeup.clear()
            try:
                job = await self.broadcasts.next_job(self._now())
                if job is None:
                    await self._sleep_until_next()
                    continue
                await self._work_on(job)
                failures = 0
            except Exception:
                stop_if_cancelled()
                failures += 1
                delay = min(self._base_delay * 2**failures, self._max_delay)
                log.exception("broadcast runner failed", extra={"attempt": failures, "delay": delay})
                await asyncio.sleep(delay)

    async def _sleep_until_next(self) -> None:
        """Until the next scheduled broadcast is due or `wake()`; a look every `POLL` seconds catches the rest."""
        due = await self.broadcasts.next_scheduled()
        delay = POLL if due is None else min(POLL, max(0.0, (due - self._now()).total_seconds()))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._wakeup.wait()

    async def _work_on(self, job: Broadcast) -> None:
        if job.status != BroadcastStatus.RUNNING:
            count = await self.broadcasts.begin(job, self._now())
            if count is None:
                return
            log.info("broadcast started", extra={"broadcast": job.id, "recipients": count})
            started = await self.broadcasts.get(job.id)
            if started is None:
                return
            job = started
        else:
            log.info("broadcast resumed", extra={"broadcast": job.id})
        self._current, self._opted_out, self._handled = job.id, set(), set()
        self._halt.clear()
        self._rate = _RateMeter(self._clock)
        await self._free_dead_claims(job.id)
        job = await self._take_reporting(job)
        progress = asyncio.create_task(self._progress_loop(job), name="broadcast progress")
        try:
            await self._send_all(job)
        finally:
            progress.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await progress
            await self._flush()
            self._current = None
        reporting, self._reporting = self._reporting, False
        # The rows left are anyone's; the progress message stays this worker's until the broadcast halts (a worker
        # taking it over now could edit "running" over the finished message).
        await self.broadcasts.release(job.id, [self.worker_id], reporting=False)
        latest = await self.broadcasts.get(job.id)
        if latest is not None and latest.status in (BroadcastStatus.PAUSED, BroadcastStatus.CANCELLED):
            await self.broadcasts.release(job.id, [self.worker_id])  # whoever resumes it reports it
        if latest is None or latest.status == BroadcastStatus.DONE:
            return  # another worker finished it, and reported it
        if latest.status == BroadcastStatus.RUNNING:
            if (await self.broadcasts.counts(job.id))[RecipientStatus.PENDING]:
                return  # resumed while winding down, or others still sending: the runner picks it up again
            counts = await self.broadcasts.finish(job.id, self._now())
            if counts is None:
                return  # another worker finished it first, and reports it
            log.info("broadcast done", extra={"broadcast": job.id, **{s.value: n for s, n in counts.by_status.items()}})
            latest = await self.broadcasts.get(job.id) or latest
        elif not reporting:
            return  # paused or cancelled: the reporting worker says so
        await self._show(latest, final=latest.status in (BroadcastStatus.DONE, BroadcastStatus.CANCELLED))

    async def _free_dead_claims(self, broadcast_id: int) -> None:
        """Release at once the claims of workers known dead (a previous run of this process), not after a lease."""
        gone = claims.dead(await self.broadcasts.holders(broadcast_id))
        if gone:
            await self.broadcasts.release(broadcast_id, gone)
            log.info("broadcast claims freed", extra={"broadcast": broadcast_id, "workers": len(gone)})

    async def _take_reporting(self, job: Broadcast) -> Broadcast:
        """Become the reporting worker if none lives, and post the progress message if nobody has yet."""
        if not self._reports_progress:
            return job
        self._reporting = await self.broadcasts.claim_reporting(
            job.id, self.worker_id, now=self._now(), until=self._lease_end()
        )
        if not self._reporting:
            return job
        latest = await self.broadcasts.get(job.id) or job
        if latest.progress_message_id is None:
            return await self._post_progress(latest)
        return latest

    def _lease_end(self) -> dt.datetime:
        return self._now() + dt.timedelta(seconds=self._lease)

    async def _still_running(self, broadcast_id: int) -> bool:
        """Read the status again (a pause or cancel may have come through another worker); halt if it changed."""
        latest = await self.broadcasts.get(broadcast_id)
        if latest is None or latest.status != BroadcastStatus.RUNNING:
            self._halt.set()
        return not self._halt.is_set()

    async def _send_all(self, job: Broadcast) -> None:
        slots = asyncio.Semaphore(self._concurrency)
        sending: set[asyncio.Task[None]] = set()
        flusher = asyncio.create_task(self._flush_loop(), name="broadcast flush")
        try:
            while await self._still_running(job.id):
                claimed = await self.broadcasts.claim(
                    job.id, self.worker_id, limit=self._batch, now=self._now(), until=self._lease_end()
                )
                batch = [r for r in claimed if r.user_id not in self._handled]
                if not batch:
                    if sending:
                        await asyncio.wait(sending)
                    await self._flush()
                    if self._outcomes:  # the database refuses them for now: wait, and never send twice
                        await asyncio.sleep(self._flush_every * 5)
                        continue
                    if not (await self.broadcasts.counts(job.id))[RecipientStatus.PENDING]:
                        break  # nothing pending at all: done
                    # The rest is held by other workers: look again soon (theirs come back if they die, at once if
                    # they died on this host).
                    await self._free_dead_claims(job.id)
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self._poll):
                            await self._halt.wait()
                    continue
                for recipient in batch:
                    if self._halt.is_set():
                        break
                    if recipient.user_id in self._handled:
                        continue
                    await slots.acquire()
                    if self._halt.is_set():
                        slots.release()
                        break
                    self._handled.add(recipient.user_id)
                    task = asyncio.create_task(self._deliver(job, recipient, slots), name="broadcast send")
                    sending.add(task)
                    task.add_done_callback(sending.discard)
            if sending:
                await asyncio.wait(sending)
        finally:
            for task in sending:
                task.cancel()
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher

    async def _deliver(self, job: Broadcast, recipient: Recipient, slots: asyncio.Semaphore) -> None:
        try:
            if recipient.user_id in self._opted_out:
                self._outcomes.append(Outcome(recipient.user_id, RecipientStatus.SKIPPED, recipient.attempts))
                return
            outcome = await self._try(job, recipient)
            if outcome is None:
                self._handled.discard(recipient.user_id)
                return
            self._outcomes.append(outcome)
            if outcome.status == RecipientStatus.SENT:
                self._rate.tick()
        finally:
            slots.release()

    async def _try(self, job: Broadcast, recipient: Recipient) -> Outcome | None:
        """Send to one recipient, retrying what can be retried; None if the broadcast was halted first."""
        version = job.versions[recipient.language]
        attempts = recipient.attempts
        who = hashed(recipient.user_id)
        while True:
            await self._pacer.slot(Lane.BULK)
            try:
                async with self._chat_turn(recipient.chat_id):
                    if self._halt.is_set():  # paused or cancelled while waiting: not sent, still pending
                        return None
                    with prepaced():
                        await self._send(recipient.chat_id, version)
            except TelegramRetryAfter as exc:
                self._pacer.hold(exc.retry_after)
                log.info("broadcast held", extra={"retry_after": exc.retry_after})
                await asyncio.sleep(exc.retry_after)
                continue
            except TelegramForbiddenError as exc:
                return Outcome(recipient.user_id, RecipientStatus.BLOCKED, attempts + 1, failure_reason(exc))
            except REFUSED as exc:
                log.info("broadcast message refused", extra={"user": who, "error": type(exc).__name__})
                return Outcome(recipient.user_id, RecipientStatus.FAILED, attempts + 1, failure_reason(exc))
            except Exception as exc:  # 5xx, timeouts, the network: bounded retries
                attempts += 1
                if attempts >= self._max_attempts:
                    log.warning("broadcast gave up", extra={"user": who, "error": type(exc).__name__})
                    return Outcome(
                        recipient.user_id, RecipientStatus.FAILED, attempts, f"gave up: {failure_reason(exc)}"
                    )
                delay = min(self._base_delay * 2 ** (attempts - 1), self._max_delay)
                log.info("broadcast send retried", extra={"user": who, "attempt": attempts, "delay": delay})
                await asyncio.sleep(delay)
                continue
            return Outcome(recipient.user_id, RecipientStatus.SENT, attempts + 1)

    def _chat_turn(self, chat_id: int) -> contextlib.AbstractAsyncContextManager[None]:
        return self._chats.turn(chat_id) if self._chats is not None else contextlib.nullcontext()

    # ------------------------------------------------------------------ bookkeeping

    async def _flush_loop(self) -> None:
        """Record outcomes every `flush_every` seconds, and renew this worker's claims every third of a lease."""
        renew_at = self._clock() + self._lease / 3
        while True:
            await asyncio.sleep(self._flush_every)
            await self._flush()
            if self._clock() >= renew_at and self._current is not None:
                renew_at = self._clock() + self._lease / 3
                try:
                    await self.broadcasts.renew(self._current, self.worker_id, self._lease_end())
                except Exception:  # the database hiccuped: the next round renews, well within the lease
                    stop_if_cancelled()
                    log.exception("broadcast claims not renewed", extra={"broadcast": self._current})

    async def _flush(self) -> None:
        if not self._outcomes or self._current is None:
            return
        batch, self._outcomes = self._outcomes, []
        try:
            await self.broadcasts.record(self._current, batch, self._now(), worker_id=self.worker_id)
        except Exception:
            # The database hiccuped: keep the outcomes for the next flush (at worst they are sent again).
            self._outcomes[:0] = batch
            log.exception("broadcast outcomes not recorded", extra={"count": len(batch)})
        except asyncio.CancelledError:
            # The flush loop stopped mid-write: the final flush writes them (again, harmlessly, if they were), so
            # a pause does not hand back rows that were sent as if they were not.
            self._outcomes[:0] = batch
            raise

    # ------------------------------------------------------------------ what the admin sees

    async def _post_progress(self, job: Broadcast) -> Broadcast:
        counts = await self.broadcasts.counts(job.id)
        message_id = await self._board.post(job.created_by, self.progress(job, counts, final=False))
        if message_id is None:
            return job
        await self.broadcasts.set_progress_message(job.id, message_id)
        return await self.broadcasts.get(job.id) or job

    async def _progress_loop(self, job: Broadcast) -> None:
        """Edit the progress message while this worker reports it; take that over when the reporter's claim lapses."""
        shown = ""
        while True:
            await asyncio.sleep(self._progress_every)
            try:
                if not self._reporting:
                    job = await self._take_reporting(job)
                    if not self._reporting:
                        continue
                latest = await self.broadcasts.get(job.id)
                if latest is None or latest.status != BroadcastStatus.RUNNING:
                    continue  # paused, cancelled or done, maybe by another worker: its final word must stay
                job = latest
                counts = await self.broadcasts.counts(job.id)
                message = self.progress(job, counts, final=False)
                if message.text != shown and job.progress_message_id is not None:
                    await self._board.edit(job.created_by, job.progress_message_id, message)
                    shown = message.text
            except Exception:
                log.exception("broadcast progress not shown", extra={"broadcast": job.id})

    async def _show(self, job: Broadcast, *, final: bool) -> None:
        counts = await self.broadcasts.counts(job.id)
        message = self.progress(job, counts, final=final)
        if job.progress_message_id is not None:
            await self._board.edit(job.created_by, job.progress_message_id, message)
        if final:
            await self._board.post(job.created_by, await self.report(job, counts))

    def progress(self, job: Broadcast, counts: Counts, *, final: bool) -> Outgoing:
        """The progress message: counts, estimated finish, and the buttons its state allows."""
        lang, tr = job.language, self._tr
        remaining = counts[RecipientStatus.PENDING]
        lines = [
            tr.text(lang, T.BC_PROGRESS_TITLE, id=job.id, state=tr.text(lang, f"bc.state.{job.status.value}")),
            tr.text(
                lang,
                T.BC_PROGRESS_COUNTS,
                sent=counts[RecipientStatus.SENT],
                failed=counts[RecipientStatus.FAILED],
                blocked=counts[RecipientStatus.BLOCKED],
                remaining=remaining,
            ),
        ]
        rate = self._rate.per_second() or self._pacer.rate
        if job.status == BroadcastStatus.RUNNING and remaining and not final:
            finish = (self._now() + dt.timedelta(seconds=remaining / max(rate, 0.1))).astimezone(self._timezone)
            lines.append(tr.text(lang, T.BC_PROGRESS_ETA, time=f"{finish:%H:%M:%S} ({self._timezone.key})"))
        buttons: list[Button] = []
        if job.status == BroadcastStatus.RUNNING:
            buttons.append(Button(tr.text(lang, T.BC_PAUSE), ControlBroadcast(job.id, "pause")))
        if job.status == BroadcastStatus.PAUSED:
            buttons.append(Button(tr.text(lang, T.BC_RESUME), ControlBroadcast(job.id, "resume")))
        if job.status not in (BroadcastStatus.DONE, BroadcastStatus.CANCELLED):
            buttons.append(Button(tr.text(lang, T.BC_CANCEL), ControlBroadcast(job.id, "cancel")))
        return Outgoing("\n".join(lines), (tuple(buttons),) if buttons else ())

    async def report(self, job: Broadcast, counts: Counts) -> Outgoing:
        lang, tr = job.language, self._tr
        lines = [
            tr.text(lang, T.BC_REPORT_TITLE, id=job.id, state=tr.text(lang, f"bc.state.{job.status.value}")),
            tr.text(
                lang,
                T.BC_REPORT_COUNTS,
                total=counts.total,
                sent=counts[RecipientStatus.SENT],
                failed=counts[RecipientStatus.FAILED],
                blocked=counts[RecipientStatus.BLOCKED],
                skipped=counts[RecipientStatus.SKIPPED],
                cancelled=counts[RecipientStatus.CANCELLED],
            ),
        ]
        reasons = await self.broadcasts.failure_reasons(job.id)
        if reasons:
            lines.append(tr.text(lang, T.BC_REPORT_REASONS))
            lines.extend(f"• {reason} × {n}" for reason, n in reasons)
        return Outgoing("\n".join(lines))


class _RateMeter:
    """Messages sent per second over the last minute or so, for the estimated finish."""

    def __init__(self, clock: Callable[[], float], span: float = 60.0) -> None:
        self._clock = clock
        self._span = span
        self._start = clock()
        self._count = 0

    def tick(self) -> None:
        now = self._clock()
        if now - self._start > self._span:  # start a new span, keeping the current pace as its seed
            self._count = int(self.per_second() * 5)
            self._start = now - 5
        self._count += 1

    def per_second(self) -> float:
        elapsed = self._clock() - self._start
        return self._count / elapsed if elapsed > 1.0 else 0.0


class Subscriptions:
    """/stop and /subscribe for people, and telling a running broadcast that someone left."""

    def __init__(self, broadcasts: Broadcasts, broadcaster: Broadcaster | None = None) -> None:
        self.broadcasts = broadcasts
        self.broadcaster = broadcaster

    async def stop(self, user_id: int, now: dt.datetime) -> None:
        await self.broadcasts.stop(user_id, now)
        self.left(user_id)

    async def subscribe(self, user_id: int, now: dt.datetime) -> bool:
        return await self.broadcasts.subscribe(user_id, now)

    def left(self, user_id: int) -> None:
        """They stopped the news or deleted themselves: a broadcast running now must not reach them."""
        if self.broadcaster is not None:
            self.broadcaster.opted_out(user_id)
