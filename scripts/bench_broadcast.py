"""Broadcast figures: prints them, asserts nothing (the issue's targets are read off this output).

Run `make bench-broadcast`, or `.venv/bin/python scripts/bench_broadcast.py --recipients 10000`.

`python -m bot` runs as its own process (SQLite) against the fake Bot API in this process. People are seeded
straight into the database (a third each in es, ht, en) and a broadcast is queued before the bot starts.

1. Rate: the fake server enforcing Telegram's 30 messages a second; the rate achieved over all recipients, as a share
   of the limit, and the 429s the bot got after the first second.
2. Ceiling: the limit lifted (fake server unlimited, SEND_RATE very high): the sender's own messages per second.
3. kill -9: the same run as 1, killed three times and restarted at once; recipients who never got it, and how many
   got it twice, next to what could have been in flight.
4. People first: scripted people tapping through the questionnaire while a broadcast runs at 30 a second; reply
   latency p50/p99, next to the same people with no broadcast.
5. Workers (`--workers`, 3 by default; needs PostgreSQL and Redis): the rate of 1 from that many
   `python -m bot serve --webhook` processes on one PostgreSQL database and Redis, sharing the 30 a second, as a
   share of the limit.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert  # noqa: E402

from bot.storage import open_store  # noqa: E402
from bot.storage.broadcasts import Broadcasts, Version  # noqa: E402
from bot.storage.tables import participants  # noqa: E402
from tests.e2e.conftest import ELIGIBLE, begin  # noqa: E402
from tests.e2e.test_webhook_e2e import SECRET, free_port  # noqa: E402
from tests.e2e.test_workers_e2e import REDIS_URL, redis_reachable  # noqa: E402
from tests.fakebotapi import ChatMessage, FakeBotAPI, FakeUser  # noqa: E402
from tests.postgres import own_database  # noqa: E402
from tests.test_storage_contract import postgres_reachable  # noqa: E402

LANGUAGES = ("es", "ht", "en")
TEXTS = {"es": "Noticia del proceso.", "ht": "Nouvèl sou pwosesis la.", "en": "Program news."}
NEWS = frozenset(TEXTS.values())
ANSWERS = dict(ELIGIBLE)
#: How a result message starts (the last answer's reply has no question buttons).
RESULTS = ("✅", "❌", "🔎")
#: Broadcast sends in flight at once (the bot's default) and the seconds between outcome flushes (bot.broadcast).
CONCURRENCY = 16
FLUSH_EVERY = 0.2


def recipients(server: FakeBotAPI, count: int) -> list[FakeUser]:
    return [server.user(language_code=LANGUAGES[n % 3]) for n in range(count)]


def sqlite(folder: str, name: str) -> str:
    return f"sqlite+aiosqlite:///{Path(folder) / name}"


async def prepare(database_url: str, people: list[FakeUser]) -> None:
    """Seed the people (consented, mid-questionnaire) and queue one broadcast with a version per language."""
    store = await open_store(database_url)
    now = dt.datetime.now(dt.UTC)
    rows = [
        {
            "user_id": p.id,
            "chat_id": p.id,
            "language": LANGUAGES[n % 3],
            "consented_at": now,
            "program_id": "venezuela-2022",
            "node": "nationality",
            "outcome": None,
            "updated_at": now,
        }
        for n, p in enumerate(people)
    ]
    try:
        if not rows:  # the baseline of the people-first figure: no broadcast at all
            return
        async with store.writing() as conn:
            await conn.execute(insert(participants), rows)
        broadcasts = Broadcasts(store)
        draft = await broadcasts.new_draft(1, "en", "preview", now)
        await broadcasts.edit_draft(draft.id, versions={lang: Version(text) for lang, text in TEXTS.items()})
        await broadcasts.submit(draft.id)
    finally:
        await store.close()


def start_bot(server: FakeBotAPI, database_url: str, *args: str, **settings: str) -> subprocess.Popen[bytes]:
    """`python -m bot` with `args` (none: long polling) on `database_url`."""
    env = {
        **os.environ,
        "BOT_TOKEN": server.token,
        "TELEGRAM_API_URL": server.base_url,
        "DATABASE_URL": database_url,
        "POLLING_TIMEOUT": "2",
        "LOG_LEVEL": "ERROR",
        "ADMIN_IDS": "1",
        **settings,
    }
    profile = ["-m", "cProfile", "-o", os.environ["PROFILE_TO"]] if os.environ.get("PROFILE_TO") else []
    return subprocess.Popen(
        [sys.executable, *profile, "-m", "bot", *args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def is_news(message: ChatMessage) -> bool:
    return message.text in NEWS


def deliveries(server: FakeBotAPI, chats: set[int]) -> tuple[Counter[int], list[float]]:
    """How many broadcast messages each chat got, and when the server accepted each one."""
    per_chat = server.deliveries(is_news)
    return Counter({chat: n for chat, n in per_chat.items() if chat in chats}), server.delivery_times(is_news)


def rate_of(server: FakeBotAPI, chats: set[int]) -> tuple[float, float, int]:
    """Messages a second from the first delivery to the last, that span in seconds, and the 429s after the first
    second (a burst at the start is the bucket filling, not the sender going too fast)."""
    _, times = deliveries(server, chats)
    first, last = min(times), max(times)
    late_429 = sum(1 for c in server.calls if c.status == 429 and c.at > first + 1.0)
    return (len(times) - 1) / (last - first), last - first, late_429


async def wait_for_all(server: FakeBotAPI, chats: set[int], timeout: float) -> None:  # noqa: ASYNC109
    """Poll the server's ledger (twice a second: the bot is another process, there is nothing to await)."""
    async with asyncio.timeout(timeout):
        while len(deliveries(server, chats)[0]) < len(chats):  # noqa: ASYNC110 (the bot is another process: poll)
            await asyncio.sleep(0.5)


async def bench_rate(count: int) -> None:
    async with FakeBotAPI() as server:
        server.set_rate_limits(global_per_second=30)
        people = recipients(server, count)
        chats = {p.id for p in people}
        with tempfile.TemporaryDirectory() as folder:
            await prepare(sqlite(folder, "b.db"), people)
            bot = start_bot(server, sqlite(folder, "b.db"))
            try:
                await wait_for_all(server, chats, timeout=count / 30 * 2 + 60)
            finally:
                bot.terminate()
                bot.wait(timeout=20)
        rate, span, late_429 = rate_of(server, chats)
        print(
            f"rate, limit 30/s, {count} recipients: {rate:6.2f} msg/s = {rate / 30:6.1%} of the limit over "
            f"{span:5.1f} s; 429 after the first second: {late_429} (all 429s: {server.stats.rate_limited})"
        )


async def bench_ceiling(count: int, concurrency: int) -> None:
    async with FakeBotAPI() as server:
        people = recipients(server, count)
        chats = {p.id for p in people}
        with tempfile.TemporaryDirectory() as folder:
            await prepare(sqlite(folder, "c.db"), people)
            bot = start_bot(
                server,
                sqlite(folder, "c.db"),
                SEND_RATE="1000000",
                BROADCAST_CONCURRENCY=str(concurrency),
            )
            try:
                # Start-up done once the first message is out.
                while not deliveries(server, chats)[1]:  # noqa: ASYNC110 (the bot is another process: poll)
                    await asyncio.sleep(0.05)
                bot_cpu, fake_cpu = cpu_seconds(bot.pid), time.process_time()
                await wait_for_all(server, chats, timeout=300)
                bot_cpu, fake_cpu = cpu_seconds(bot.pid) - bot_cpu, time.process_time() - fake_cpu
            finally:
                bot.terminate()
                bot.wait(timeout=20)
        rate, span, _ = rate_of(server, chats)
        print(
            f"ceiling, no limit, {count} recipients: {rate:7.1f} msg/s over {span:5.1f} s "
            f"(concurrency {concurrency}); "
            f"CPU per message: bot {bot_cpu / count * 1000:.2f} ms, "
            f"fake server and this script {fake_cpu / count * 1000:.2f} ms"
        )


async def bench_kills(count: int, kills: int) -> None:
    async with FakeBotAPI() as server:
        server.set_rate_limits(global_per_second=30)
        people = recipients(server, count)
        chats = {p.id for p in people}
        with tempfile.TemporaryDirectory() as folder:
            await prepare(sqlite(folder, "k.db"), people)
            bot = start_bot(server, sqlite(folder, "k.db"))
            marks = sorted(random.uniform(0.1, 0.9) for _ in range(kills))
            try:
                for mark in marks:
                    while len(deliveries(server, chats)[0]) < mark * count:  # noqa: ASYNC110 (the bot is another process: poll)
                        await asyncio.sleep(0.2)
                    bot.kill()  # SIGKILL
                    bot.wait(timeout=20)
                    bot = start_bot(server, sqlite(folder, "k.db"))
                await wait_for_all(server, chats, timeout=count / 30 * 2 + 120)
            finally:
                bot.terminate()
                bot.wait(timeout=20)
        per_chat, _ = deliveries(server, chats)
        missing = len(chats) - len(per_chat)
        twice = sum(n - 1 for n in per_chat.values())
        bound = kills * (CONCURRENCY + int(30 * FLUSH_EVERY) + 1)
        print(
            f"kill -9 x{kills} at {', '.join(f'{m:.0%}' for m in marks)} of {count}: missing {missing}, "
            f"sent twice {twice} (at most in flight or unflushed at the kills: {bound})"
        )


async def questionnaire_latencies(server: FakeBotAPI, people: int, rounds: int, think: float) -> list[float]:
    latencies: list[float] = []

    async def one() -> None:
        user = server.user(language_code="es")
        await begin(user, "es")
        for _ in range(rounds):
            node = "nationality"
            while node in ANSWERS:
                await asyncio.sleep(think)  # people read before they tap; scripts tapping flat out fill 30/s alone
                started = time.perf_counter()
                await user.tap(data=f"a:{node}:{ANSWERS[node]}")
                message = await user.wait_for(lambda m: bool(m.buttons) or m.text.startswith(RESULTS), timeout=120)
                latencies.append(time.perf_counter() - started)
                nxt = next((b.data for row in message.buttons for b in row if b.data and b.data.startswith("a:")), "")
                node = nxt.split(":")[1] if nxt else ""
            await user.send("/restart")
            await user.wait_for(lambda m: "Pregunta 1 " in m.text, timeout=120)

    await asyncio.gather(*(one() for _ in range(people)))
    return latencies


async def bench_people_first(count: int, people: int, think: float) -> None:
    for with_broadcast in (False, True):
        async with FakeBotAPI() as server:
            server.set_rate_limits(global_per_second=30)
            crowd = recipients(server, count if with_broadcast else 0)
            with tempfile.TemporaryDirectory() as folder:
                await prepare(sqlite(folder, "p.db"), crowd)
                bot = start_bot(server, sqlite(folder, "p.db"))
                try:
                    warm = server.user(language_code="es")
                    await warm.send("/start")
                    await warm.wait_for(timeout=60)
                    latencies = await questionnaire_latencies(server, people, rounds=1, think=think)
                    reached = len(deliveries(server, {p.id for p in crowd})[0])
                finally:
                    bot.terminate()
                    bot.wait(timeout=20)
            p50 = statistics.median(latencies)
            p99 = statistics.quantiles(latencies, n=100, method="inclusive")[98]
            label = "alone"
            if with_broadcast:
                label = f"while a broadcast runs ({reached} of {count} reached meanwhile)"
            print(
                f"people first, {people} people {label}: {len(latencies)} replies, "
                f"p50 {p50 * 1000:6.1f} ms, p99 {p99 * 1000:7.1f} ms"
            )


async def bench_workers(count: int, workers: int) -> None:
    if not (postgres_reachable() and redis_reachable()):
        print(f"workers x{workers}: skipped (needs PostgreSQL on 127.0.0.1:5432 and Redis on :6379)")
        return
    # A bot id of the run's own: the workers' Redis keys (the shared pace among them) are named after it.
    token = f"{random.randrange(10**8, 10**9)}:BENCH-workers"
    async with own_database("bench_broadcast") as database_url, FakeBotAPI(token) as server:
        server.set_rate_limits(global_per_second=30)
        people = recipients(server, count)
        chats = {p.id for p in people}
        await prepare(database_url, people)
        port = free_port()
        webhook = {
            "WEBHOOK_URL": f"http://127.0.0.1:{port}/telegram",
            "WEBHOOK_LISTEN": f"127.0.0.1:{port}",
            "WEBHOOK_SECRET": SECRET,
            "REDIS_URL": REDIS_URL,
        }
        bots = [start_bot(server, database_url, "serve", "--webhook", **webhook) for _ in range(workers)]
        try:
            await wait_for_all(server, chats, timeout=count / 30 * 2 + 60)
        finally:
            for bot in bots:
                bot.terminate()
            for bot in bots:
                bot.wait(timeout=20)
        rate, span, late_429 = rate_of(server, chats)
        print(
            f"workers x{workers}, limit 30/s shared, {count} recipients: {rate:6.2f} msg/s = {rate / 30:6.1%} of "
            f"the limit over {span:5.1f} s; 429 after the first second: {late_429}"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--people", type=int, default=10, help="people in the questionnaire during a broadcast")
    parser.add_argument("--think", type=float, default=2.0, help="seconds each person takes before a tap")
    parser.add_argument("--concurrency", type=int, default=150, help="broadcast sends in flight, for the ceiling")
    parser.add_argument("--workers", type=int, default=3, help="webhook workers for the shared-rate figure (0: skip)")
    parser.add_argument("--only", choices=("rate", "ceiling", "kills", "people", "workers"), default=None)
    args = parser.parse_args()
    if args.only in (None, "ceiling"):
        await bench_ceiling(args.recipients, args.concurrency)
    if args.only in (None, "rate"):
        await bench_rate(args.recipients)
    if args.only in (None, "kills"):
        await bench_kills(args.recipients, args.kills)
    if args.only in (None, "people"):
        await bench_people_first(min(args.recipients, 3000), args.people, args.think)
    if args.only in (None, "workers") and args.workers:
        await bench_workers(args.recipients, args.workers)


if __name__ == "__main__":
    asyncio.run(main())
