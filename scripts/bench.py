"""Puente's speed figures: prints them, asserts nothing (the issue's targets are read off this output).

Run `make bench`, or `.venv/bin/python scripts/bench.py --users 100 --rounds 3`.

1. Engine: questionnaire steps per second, pure `flows` (no I/O).
2. Store: one tap's load and save (SqlStore), wall and CPU, on SQLite and on the machine's PostgreSQL.
3. Saturation: `python -m bot` as its own process (aiogram, real HTTP) against the fake Bot API, with N scripted
   people tapping through the questionnaire at once, each tapping the moment a reply arrives: updates per second,
   p50/p99 reply latency (from the tap reaching the server's update queue to the next question arriving back at
   the server) and the bot's CPU per update; on SQLite, on PostgreSQL, and for a bare aiogram echo bot
   (scripts/echo_bot.py, on Python's own event loop as aiogram comes, then on uvloop as Puente runs) on the same
   fake server with the same N people, with the ratio between the two; then
   for a bare aiogram bot making the two calls a tap cannot do without (edit the tapped message, answer the tap),
   with Puente's ratio to it. Each line also gives the CPU of this process (the fake and the people) per update.
4. Below saturation (`--think-ms`, 2 s by default): the same N people pausing between a reply and their next tap,
   for Puente and the echo bot (on either loop), and the ratio of their p99 latencies.
5. Webhook workers (`--workers`, 1 and 2 by default; needs PostgreSQL and Redis): the saturation run with the bot
   as that many `python -m bot serve --webhook` processes on one port, one PostgreSQL database and Redis, beside
   long polling on SQLite; CPU is the workers' sum.

The bot's own send pace (`SEND_RATE`, Telegram's 30 messages a second, and `PRIVATE_CHAT_RATE`, one a second per
person) and its per-person flood control are lifted, as the echo bot has neither: this measures what the bot
itself can do. With `--telegram-pace` they stay, and the figure is what Telegram lets through (about 30 sends a
second, some 12 taps a second; scripted people tap far faster than one message a second each). `--profile FILE`
runs the bot under cProfile in the saturation run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import gc
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: The baselines (scripts/echo_bot.py), run as their own process like the bot.
ECHO_BOT = [str(ROOT / "scripts" / "echo_bot.py")]
#: Their event loops, each with what its line adds to the name: aiogram as it comes (Python's own loop, the
#: baseline the ratios are read against), and uvloop, the loop Puente runs on.
ECHO_LOOPS = (("asyncio", ""), ("uvloop", ", uvloop"))
sys.path.insert(0, str(ROOT))

from sqlalchemy.engine import make_url  # noqa: E402

from bot.app import load_core  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.insights import tally  # noqa: E402
from bot.storage import Participant, open_store  # noqa: E402
from flows import engine  # noqa: E402
from tests.e2e.conftest import ELIGIBLE, begin  # noqa: E402
from tests.fakebotapi import FakeBotAPI  # noqa: E402

TODAY = dt.date(2026, 11, 22)
#: The machine's PostgreSQL (a database of this name is dropped and made again for each run).
POSTGRES_URL = os.environ.get("PUENTE_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/puente_bench")
REDIS_URL = os.environ.get("PUENTE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
WEBHOOK_SECRET = "puente-bench-secret"
ANSWERS = dict(ELIGIBLE)


def bench_engine(seconds: float = 3.0) -> tuple[int, float]:
    program = load_core(Settings(_env_file=None)).program  # type: ignore[call-arg]
    steps, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        session = engine.new_session(program)
        while not session.finished:
            assert session.node is not None
            session, _ = engine.step(program, session, engine.Choose(session.node, ANSWERS[session.node]), TODAY)
            steps += 1
    return steps, time.perf_counter() - started


async def bench_store(url: str, taps: int = 3000, *, counting: bool = True) -> tuple[float, float]:
    """Microseconds (wall, and CPU of this process) of one tap's storage work, as the bot does it: load the person
    (with the update-id check), then save the new session with its answer, the update id and the anonymous counts
    (bot.insights.tally; `counting=False` leaves them out, to see what they cost) in one transaction.
    One person after another, so it is the cost of the calls, not of waiting for the single writer."""
    program = load_core(Settings(_env_file=None)).program  # type: ignore[call-arg]
    store = await open_store(url)
    now = dt.datetime.now(dt.UTC)
    people = 50
    try:
        for user_id in range(1, people + 1):
            participant = Participant(user_id, user_id, "es", now, engine.new_session(program))
            await store.save(participant, previous=None, update_id=None, now=now)
        started, cpu = time.perf_counter(), time.process_time()
        for tap in range(taps):
            user_id = tap % people + 1
            update_id = 10_000_000 + tap
            loaded = (await store.load_for(user_id, update_id=update_id)).participant
            assert loaded is not None
            session = loaded.session
            if session.finished:
                session, _ = engine.step(program, session, engine.Restart(), TODAY)
            else:
                assert session.node is not None
                choice = engine.Choose(session.node, ANSWERS[session.node])
                session, _ = engine.step(program, session, choice, TODAY)
            changed, counts = (
                tally(loaded, replace(loaded, session=session), now)
                if counting
                else (replace(loaded, session=session), [])
            )
            await store.save(changed, previous=loaded, update_id=update_id, now=now, counts=counts)
        return (time.perf_counter() - started) / taps * 1e6, (time.process_time() - cpu) / taps * 1e6
    finally:
        await store.close()


#: Settings that measure the bot rather than Telegram's limits: no send pace, no flood control (scripted users
#: tap the moment a reply arrives, faster than any person).
UNPACED = {"SEND_RATE": "100000", "PRIVATE_CHAT_RATE": "100000", "FLOOD_BURST": "1000000"}


def start_process(
    args: list[str], server: FakeBotAPI, database_url: str, settings: dict[str, str]
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "BOT_TOKEN": server.token,
        "TELEGRAM_API_URL": server.base_url,
        "DATABASE_URL": database_url,
        "POLLING_TIMEOUT": "2",
        "LOG_LEVEL": "ERROR",
        **settings,
    }
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL)


async def timed(act: Callable[[], Awaitable[object]], arrived: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await act()
    await arrived()
    return time.perf_counter() - started


async def questionnaire_user(server: FakeBotAPI, rounds: int, latencies: list[float], think: float = 0.0) -> int:
    """One person through the questionnaire `rounds` times, tapping the moment each question arrives, or after
    `think` seconds (arriving at a random moment within the first of them, so people neither start nor tap in
    step: a hundred people all sending /start in the same instant is a flood of its own, not this load)."""
    user = server.user(language_code="es")
    if think:
        await asyncio.sleep(random.uniform(0, think))
    await begin(user, "es")
    if think:
        await asyncio.sleep(think)
    updates = 0
    for _ in range(rounds):
        node = "nationality"
        while True:
            option = ANSWERS[node]
            last = node == "flight"

            async def arrived(last: bool = last) -> None:
                await user.wait_for(lambda m: "Pregunta" in m.text or (last and "✅" in m.text), timeout=60)

            latencies.append(await timed(lambda n=node, o=option: user.tap(data=f"a:{n}:{o}"), arrived))
            updates += 1
            await asyncio.sleep(think)
            if last:
                break
            node = next(b.data for row in user.last_message.buttons for b in row if b.data).split(":")[1]
        await user.wait_idle(quiet=0.2)
        await user.send("/restart")
        await user.wait_for(lambda m: "Pregunta 1 " in m.text, timeout=60)
        updates += 1
    return updates


async def echo_user(server: FakeBotAPI, count: int, latencies: list[float], think: float = 0.0) -> int:
    user = server.user(language_code="es")
    if think:
        await asyncio.sleep(random.uniform(0, think))
    for n in range(count):
        text = f"hola {user.id} {n}"
        latencies.append(
            await timed(lambda t=text: user.send(t), lambda t=text: user.wait_for(lambda m: m.text == t, timeout=60))
        )
        await asyncio.sleep(think)
    return count


async def tapping_user(server: FakeBotAPI, count: int, latencies: list[float]) -> int:
    """One person tapping the two-call baseline's button `count` times, each the moment the last tap shows."""
    user = server.user(language_code="es")
    await user.send("hola")
    shown = await user.wait_for(lambda m: bool(m.buttons), timeout=60)
    for step in range(count):

        async def moved_on(step: int = step) -> None:
            await user.wait_until(lambda: shown.text == f"step {step + 1}", timeout=60)

        latencies.append(await timed(lambda s=step: user.tap(data=str(s), message=shown), moved_on))
    return count + 1


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc), to compare the bots' cost per update."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No garbage collection in this process (the fake Bot API and the scripted people) while it measures.

    The fake stands in for Telegram, which does not stop for our collector; left on, a full collection here paused
    every reply for 200-400 ms once a run and was read as the bot's latency (more for the bot that sends more).
    """
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def webhook_settings() -> dict[str, str]:
    """Settings for webhook workers sharing one port (and Redis)."""
    port = free_port()
    return {
        "WEBHOOK_URL": f"http://127.0.0.1:{port}/telegram",
        "WEBHOOK_LISTEN": f"127.0.0.1:{port}",
        "WEBHOOK_SECRET": WEBHOOK_SECRET,
        "REDIS_URL": REDIS_URL,
    }


async def run_load(
    script: list[str],
    users: int,
    make: Callable[[FakeBotAPI, list[float]], Awaitable[int]],
    settings: dict[str, str] | None = None,
    database_url: str | None = None,
    workers: int = 0,
) -> tuple[int, float, list[float], float, float]:
    """Start `script` against a fresh fake Bot API and database (SQLite in a temporary folder unless
    `database_url`), run `users` people made by `make`, and return updates, seconds, latencies, the bot's CPU and
    this process's own (the fake Bot API and the scripted people: it shares the machine with the bot, and a bot
    that makes more calls a tap makes its load cost more).

    `workers` > 0: that many webhook workers of the bot on one port instead (`script` gets `serve --webhook`).
    """
    # A bot id of each run's own: webhook workers name their Redis keys after it.
    async with FakeBotAPI(f"{random.randrange(10**8, 10**9)}:BENCH-token") as server:
        with tempfile.TemporaryDirectory() as folder:
            url = database_url or f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
            if workers:
                settings = {**(settings or {}), **webhook_settings()}
                processes = [
                    start_process([*script, "serve", "--webhook"], server, url, settings) for _ in range(workers)
                ]
            else:
                processes = [start_process(script, server, url, settings or {})]
            try:
                while workers and len(server.calls_to("setWebhook")) < workers:  # noqa: ASYNC110 (processes)
                    await asyncio.sleep(0.1)
                warm = server.user(language_code="es")
                await warm.send("/start")
                await warm.wait_for(timeout=60)
                latencies: list[float] = []
                with collector_paused():
                    cpu_before, started = sum(cpu_seconds(p.pid) for p in processes), time.perf_counter()
                    own_before = time.process_time()
                    counts = await asyncio.gather(*(make(server, latencies) for _ in range(users)))
                    elapsed = time.perf_counter() - started
                    cpu = sum(cpu_seconds(p.pid) for p in processes) - cpu_before
                    own = time.process_time() - own_before
            finally:
                for process in processes:
                    process.terminate()
                for process in processes:
                    process.wait(timeout=20)
    return sum(counts), elapsed, latencies, cpu, own


async def fresh_postgres(url: str) -> str | None:
    """An empty database for one run on the PostgreSQL server of `url` (its database is dropped and made again),
    or None when no server answers there."""
    import asyncpg  # the postgres extra, installed with the dev tools

    target = make_url(url)
    admin = target.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    try:
        conn = await asyncpg.connect(admin, timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return None
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{target.database}"')
    finally:
        await conn.close()
    return url


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


def report(name: str, updates: int, elapsed: float, latencies: list[float], cpu: float, load_cpu: float) -> float:
    rate = updates / elapsed
    print(
        f"{name:<34} {updates:>6} updates in {elapsed:6.1f} s = {rate:7.1f} updates/s   "
        f"p50 {percentile(latencies, 50) * 1000:6.1f} ms   p99 {percentile(latencies, 99) * 1000:7.1f} ms   "
        f"bot CPU {cpu * 1000 / updates:5.2f} ms/update   (fake and people {load_cpu * 1000 / updates:4.2f})"
    )
    return rate


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2, help="questionnaires per user")
    parser.add_argument("--telegram-pace", action="store_true", help="keep SEND_RATE and flood control as deployed")
    parser.add_argument(
        "--think-ms", type=int, default=2000, help="the second run's pause between a reply and the next tap (0: skip)"
    )
    parser.add_argument("--postgres", default=POSTGRES_URL, help="PostgreSQL for the same run ('' to skip)")
    parser.add_argument(
        "--workers", default="1,2", help="webhook worker counts to run on PostgreSQL and Redis ('' to skip)"
    )
    parser.add_argument("--profile", type=Path, help="run the bot under cProfile and write its profile here")
    args = parser.parse_args()

    steps, seconds = bench_engine()
    print(f"{'engine (pure flows)':<34} {steps:>6} steps   in {seconds:6.1f} s = {steps / seconds:9.0f} steps/s")
    with tempfile.TemporaryDirectory() as folder:
        wall, cpu = await bench_store(f"sqlite+aiosqlite:///{Path(folder) / 'store.db'}")
    print(f"{'store, SQLite (load + save a tap)':<34} {wall:9.0f} µs a tap, {cpu:6.0f} µs of CPU")
    postgres = await fresh_postgres(args.postgres) if args.postgres else None
    if postgres:
        wall, cpu = await bench_store(postgres)
        print(f"{'store, PostgreSQL':<34} {wall:9.0f} µs a tap, {cpu:6.0f} µs of CPU")

    per_user = args.rounds * (len(ANSWERS) + 1)
    bot_args = ["-m", "cProfile", "-o", str(args.profile), "-m", "bot"] if args.profile else ["-m", "bot"]
    settings = {} if args.telegram_pace else UNPACED
    paced = ", Telegram's pace" if args.telegram_pace else ""

    def saturating(server: FakeBotAPI, latencies: list[float]) -> Awaitable[int]:
        return questionnaire_user(server, args.rounds, latencies)

    print(f"-- saturation: {args.users} people tapping the moment each reply arrives")
    puente = await run_load(bot_args, args.users, saturating, settings)
    ours = report(f"puente, SQLite{paced}", *puente)
    if postgres:
        on_postgres = await run_load(
            ["-m", "bot"], args.users, saturating, settings, database_url=await fresh_postgres(postgres)
        )
        report(f"puente, PostgreSQL{paced}", *on_postgres)
    for loop, named in ECHO_LOOPS:
        echo = await run_load(
            ECHO_BOT, args.users, lambda server, lat: echo_user(server, per_user, lat), {"EVENT_LOOP": loop}
        )
        rate = report(f"aiogram echo baseline{named}", *echo)
        print(f"{f'ratio puente / echo{named}':<34} {ours / rate:6.2f} of that baseline's updates per second")
    taps = await run_load(
        ECHO_BOT,
        args.users,
        lambda server, lat: tapping_user(server, per_user - 1, lat),
        {"ECHO_TAPS": "1", "EVENT_LOOP": "asyncio"},
    )
    floor = report("aiogram edit + answer a tap", *taps)
    print(f"{'ratio puente / edit + answer':<34} {ours / floor:6.2f} of a bare bot making a tap's two calls")

    counts = [int(n) for n in args.workers.split(",") if n.strip()]
    if postgres and counts:
        print(f"-- webhook workers on PostgreSQL and Redis: {args.users} people tapping as replies arrive")
        print(f"{'(beside) long polling, SQLite':<34} {ours:7.1f} updates/s")
        for workers in counts:
            database_url = await fresh_postgres(postgres)
            on_workers = await run_load(["-m", "bot"], args.users, saturating, settings, database_url, workers)
            report(f"puente, {workers} webhook worker{'s' if workers > 1 else ''}", *on_workers)

    if args.think_ms:
        think = args.think_ms / 1000
        print(f"-- below saturation: {args.users} people, {args.think_ms} ms between a reply and their next tap")
        calm = await run_load(
            ["-m", "bot"], args.users, lambda server, lat: questionnaire_user(server, 1, lat, think), settings
        )
        report(f"puente, SQLite{paced}", *calm)
        for loop, named in ECHO_LOOPS:
            calm_echo = await run_load(
                ECHO_BOT,
                args.users,
                lambda server, lat: echo_user(server, len(ANSWERS) + 1, lat, think),
                {"EVENT_LOOP": loop},
            )
            report(f"aiogram echo baseline{named}", *calm_echo)
            ratio = percentile(calm[2], 99) / percentile(calm_echo[2], 99)
            print(f"{f'p99 puente / echo{named}':<34} {ratio:6.2f} times that baseline's p99 reply latency")


if __name__ == "__main__":
    asyncio.run(main())
