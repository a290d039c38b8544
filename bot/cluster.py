"""What several worker processes of one bot share, through Redis: each person's turn, Telegram's send pace, and
which process runs the scheduled jobs.

One worker needs none of this (`REDIS_URL` empty): the in-process versions in `bot.telegram.middlewares` and
`bot.telegram.pacing` are the same ideas in memory. With webhook workers on one database, each of these must be
one thing for the bot, whichever process an update or a send lands on:

- **A person's turn** (`SharedTurns`): a Redis lock per person around the handling of each of their updates, on top
  of the in-process lock (which keeps a process's own updates in arrival order and asks Redis once per update, not
  once per waiter). The lock is a lease, renewed while the update is handled, so a killed worker frees the person
  within `lease` seconds. An update that cannot get the turn in `wait` seconds fails: its webhook POST is answered
  500 and Telegram sends it again later.
- **The send pace** (`SharedPacer`, `SharedChatPace`): Telegram's limits are per bot, so the slots are reserved in
  Redis, by small Lua scripts on Redis's own clock (`TIME`), which every worker reads alike: GCRA, the "generic
  cell rate algorithm", which keeps one number per limit (the time the next slot is free). People's replies
  reserve the next free slot at once; broadcasts take one only when it is free within one interval, so they get
  the slots nobody wants and never queue ahead of a reply on another worker. A 429 on a broadcast holds every
  worker's broadcasts for its `retry_after`. Why scripts and not a rate-limit library: PyrateLimiter and `limits`
  answer "may I, now?", and a sender that is told no must poll; here a reply must *reserve* a slot in a queue that
  several processes share, and a broadcast must yield to it. Thirty lines of Lua, each executed atomically by
  Redis, do exactly that and are tested against the real server (tests/test_cluster.py).
- **The leader** (`Leader`): the jobs that must run once for the bot (retention, reminders, the outbox and the
  broadcaster until their rows are claimed per worker) run in the one process holding a Redis lock, renewed every
  few seconds; another takes over within `lease` seconds when it dies.

Redis keeps nothing here that matters once the processes are gone: every lock and slot expires by itself, and the
database remains the only record. Keys are prefixed with the bot's id, so bots can share a Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.asyncio.lock import Lock
from redis.exceptions import LockError, RedisError

from bot.telegram.middlewares import OnePersonAtATime
from bot.telegram.pacing import ChatPace, Lane, Pacer

log = logging.getLogger(__name__)

_R = TypeVar("_R")


def key_prefix(token: str) -> str:
    """`puente:<bot id>:`: the bot's id is the token's public part, before the colon (the secret part never)."""
    return f"puente:{token.partition(':')[0]}:"


def connect(url: str) -> Redis:
    """A client for `REDIS_URL` (connections are made on first use)."""
    return Redis.from_url(url, decode_responses=True, health_check_interval=30)


class TurnUnavailable(Exception):
    """Another worker kept this person's turn too long (or Redis did not answer): handle the update later."""


# redis-py finishes a command it has sent even when the task awaiting it is cancelled, and returns or raises the
# command's outcome instead of the cancellation. The lock calls below raise a cancellation that came meanwhile, so a
# cancelled task does not go on as if nothing happened (a leader that keeps leading, a renewal that never ends).


def _cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _raise_if_cancelled() -> None:
    if _cancelling():
        raise asyncio.CancelledError


async def _acquire(lock: Lock, *, blocking: bool = True) -> bool:
    """`lock.acquire`; if the task was cancelled meanwhile, what was taken is released and the cancellation raised."""
    try:
        taken = await lock.acquire(blocking=blocking)
    except RedisError:
        _raise_if_cancelled()
        raise
    if taken and _cancelling():
        await _let_go(lock)  # raises the cancellation
    _raise_if_cancelled()
    return bool(taken)


async def _renew(lock: Lock) -> None:
    """`lock.reacquire` (the lease starts again); LockError when it was no longer ours."""
    try:
        await lock.reacquire()
    finally:
        _raise_if_cancelled()


async def _let_go(lock: Lock) -> bool:
    """Release `lock`; False when it was no longer ours (its lease ran out) or Redis did not answer."""
    try:
        await lock.release()
        released = True
    except (LockError, RedisError):
        released = False
    _raise_if_cancelled()
    return released


@contextlib.asynccontextmanager
async def _leased(lock: Lock, renew_every: float) -> AsyncIterator[None]:
    """Hold an acquired `lock` for the block, renewing its lease meanwhile; release it after."""

    async def renew() -> None:
        while True:
            await asyncio.sleep(renew_every)
            await _renew(lock)

    renewing = asyncio.create_task(renew())
    try:
        yield
    finally:
        renewing.cancel()
        with contextlib.suppress(asyncio.CancelledError, LockError, RedisError):
            await renewing
        if not await _let_go(lock):
            log.warning("a turn was not released (its lease ran out, or Redis did not answer): it expires by itself")


class SharedTurns(OnePersonAtATime):
    """Each person's updates one at a time across every worker (see the module's docstring)."""

    def __init__(self, redis: Redis, prefix: str, *, lease: float = 15.0, wait: float = 30.0) -> None:
        super().__init__()
        self._redis = redis
        self._prefix = f"{prefix}turn:"
        self._lease = lease
        self._wait = wait

    async def run(self, key: int, work: Callable[[], Awaitable[_R]]) -> _R:
        async def across_workers() -> _R:
            lock = self._redis.lock(
                f"{self._prefix}{key}",
                timeout=self._lease,
                sleep=0.005,
                blocking_timeout=self._wait,
                thread_local=False,
            )
            try:
                taken = await _acquire(lock)
            except RedisError as exc:
                raise TurnUnavailable("redis did not answer") from exc
            if not taken:
                raise TurnUnavailable(f"turn not free after {self._wait:g} s")
            async with _leased(lock, self._lease / 3):
                return await work()

        return await super().run(key, across_workers)


# KEYS[1]: when the next slot is free; KEYS[2]: until when broadcasts are held. ARGV[1]: the interval between
# slots; ARGV[2]: 1 for a broadcast. Returns {1, delay} (reserved: send in `delay` seconds) or {0, delay} (a
# broadcast, not reserved: ask again in `delay` seconds). Times are seconds on Redis's clock, as strings: Lua
# would cut a number returned to the client down to an integer.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = tonumber(ARGV[1])
local slot = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now)
if ARGV[2] == '1' then
  local held = tonumber(redis.call('GET', KEYS[2]) or '0')
  if held > now then return {0, string.format('%.6f', held - now)} end
  if slot - now > interval then return {0, string.format('%.6f', slot - now - interval)} end
end
local free = slot + interval
redis.call('SET', KEYS[1], string.format('%.6f', free), 'PX', math.ceil((free - now) * 1000) + 1000)
return {1, string.format('%.6f', slot - now)}
"""

# KEYS[1]: until when broadcasts are held; ARGV[1]: seconds from now. A hold is only ever lengthened.
_HOLD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local until_ = now + tonumber(ARGV[1])
if until_ > tonumber(redis.call('GET', KEYS[1]) or '0') then
  redis.call('SET', KEYS[1], string.format('%.6f', until_), 'PX', math.ceil(tonumber(ARGV[1]) * 1000) + 1000)
end
return 1
"""

# One private chat's bucket as GCRA: KEYS[1] holds when its next token is due; ARGV[1] the interval, ARGV[2] the
# burst's slack ((burst - 1) intervals). Returns '0' (token taken) or the seconds to wait for one.
_CHAT_TOKEN = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = tonumber(ARGV[1])
local due = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now)
local wait = due - tonumber(ARGV[2]) - now
if wait > 0 then return string.format('%.6f', wait) end
redis.call('SET', KEYS[1], string.format('%.6f', due + interval), 'PX', math.ceil((due + interval - now) * 1000) + 1000)
return '0'
"""


# KEYS[1]: as above; ARGV[1]: the interval. A call to the chat was just answered: its token counts from now, not
# from when it was taken (a send delayed on its way would otherwise arrive close to the next ones). Returns 1.
_CHAT_ANSWERED = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local due = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now + tonumber(ARGV[1]))
redis.call('SET', KEYS[1], string.format('%.6f', due), 'PX', math.ceil((due - now) * 1000) + 1000)
return 1
"""


class SharedPacer(Pacer):
    """`Pacer`'s lanes and rate, with the slots reserved in Redis for every worker of the bot.

    In a process, the waiters of a lane ask Redis one at a time, first come first served (so a process sends
    one Redis call per slot, not one per waiter); a reserved slot's wait happens outside that turn, so the next
    waiter can reserve the following slot meanwhile.
    """

    def __init__(self, redis: Redis, prefix: str, name: str, rate: float) -> None:
        super().__init__(rate)
        self._redis = redis
        self._keys = [f"{prefix}pace:{name}", f"{prefix}pace:{name}:held"]
        self._reserve = redis.register_script(_RESERVE)
        self._hold = redis.register_script(_HOLD)
        self._asking = {lane: asyncio.Lock() for lane in Lane}
        self._waiting = dict.fromkeys(Lane, 0)
        self._holds: set[asyncio.Task[None]] = set()

    def waiting(self, lane: Lane) -> int:
        return self._waiting[lane]

    def hold(self, seconds: float) -> None:
        """Telegram said 429 to a broadcast: every worker's broadcasts wait `seconds` (people's replies go on)."""
        super().hold(seconds)  # this process at once, the others as soon as Redis has it
        task = asyncio.create_task(self._share_hold(seconds))
        self._holds.add(task)
        task.add_done_callback(self._holds.discard)

    async def _share_hold(self, seconds: float) -> None:
        try:
            await self._hold(keys=self._keys[1:], args=[f"{seconds:.3f}"])
        except RedisError:
            log.warning("a broadcast hold was not shared with the other workers")

    async def slot(self, lane: Lane) -> None:
        self._waiting[lane] += 1
        try:
            async with self._asking[lane]:
                while True:
                    if lane is Lane.BULK and (held := self._bulk_held_until - self._clock()) > 0:
                        await asyncio.sleep(held)
                    reserved, delay = await self._reserve(
                        keys=self._keys, args=[f"{self.interval:.6f}", int(lane is Lane.BULK)]
                    )
                    if int(reserved):
                        break
                    await asyncio.sleep(float(delay))
        finally:
            self._waiting[lane] -= 1
        if (wait := float(delay)) > 0:
            await asyncio.sleep(wait)


class SharedChatPace(ChatPace):
    """`ChatPace` (one call at a time per chat, in order, in this process) with each private chat's tokens taken
    from one bucket in Redis, so replies from two workers to one person keep to Telegram's per-chat pace."""

    def __init__(self, redis: Redis, prefix: str, rate: float, burst: int) -> None:
        super().__init__(rate, burst)
        self._prefix = f"{prefix}chat:"
        self._token = redis.register_script(_CHAT_TOKEN)
        self._answered = redis.register_script(_CHAT_ANSWERED)
        self._args = [f"{self.interval:.6f}", f"{self._slack:.6f}"]

    @contextlib.asynccontextmanager
    async def turn(self, chat_id: int) -> AsyncIterator[None]:
        """The token is taken before the call and counted again from the call's answer, as `ChatPace` does: a
        call held up on its way (the global pace, a slow network) must not reach Telegram in a burst with the
        ones after it."""
        async with super().turn(chat_id):
            if chat_id <= 0:
                yield
                return
            # A time on Redis's clock, not a condition another task sets: sleep until it, and ask again.
            key = [f"{self._prefix}{chat_id}"]
            while (wait := float(await self._token(keys=key, args=self._args))) > 0:  # noqa: ASYNC110
                await asyncio.sleep(wait)
            try:
                yield
            finally:
                try:
                    await self._answered(keys=key, args=self._args[:1])
                except RedisError:  # the call itself went through: failing it now would have it sent twice
                    log.warning("a chat's pace was not updated in Redis")


class Leader:
    """Runs `duties` in the one worker holding the bot's leader lease, and hands them over when it ends.

    The lease is `lease` seconds, renewed every `renew_every`; a worker that cannot renew it (Redis gone, the
    process stalled past its lease) stops its duties before anyone else can have started them, give or take the
    time its event loop was stalled. The others try for the lease every `renew_every` seconds.
    """

    def __init__(self, redis: Redis, prefix: str, *, lease: float = 15.0, renew_every: float = 5.0) -> None:
        if renew_every >= lease:
            raise ValueError("the lease must outlast the time between renewals")
        self._redis = redis
        self._name = f"{prefix}leader"
        self._lease = lease
        self._renew_every = renew_every

    async def run(self, duties: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Until cancelled: lead when the lease is free, run `duties` while leading, cancel them when not."""
        while True:
            lock = self._redis.lock(self._name, timeout=self._lease, thread_local=False)
            try:
                taken = await _acquire(lock, blocking=False)
            except RedisError:
                log.warning("redis did not answer: not leading")
                taken = False
            if taken:
                await self._lead(lock, duties)
            await asyncio.sleep(self._renew_every)

    async def _lead(self, lock: Lock, duties: Callable[[], Coroutine[Any, Any, None]]) -> None:
        log.info("leading: scheduled jobs run in this worker")
        work = asyncio.create_task(duties(), name="leader duties")
        try:
            while not work.done():
                await asyncio.wait({work}, timeout=self._renew_every)
                if work.done():
                    break
                try:
                    await _renew(lock)
                except (LockError, RedisError):
                    log.warning("lost the leader lease: scheduled jobs stop here")
                    break
        finally:
            work.cancel()
            await asyncio.wait({work})
            await _let_go(lock)
        if not work.cancelled() and (exc := work.exception()) is not None:
            log.error("leader duties failed", extra={"error": type(exc).__name__}, exc_info=exc)
