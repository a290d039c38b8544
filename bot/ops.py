"""Operations endpoints: /healthz (alive), /readyz (database, Redis and Telegram answer) and /metrics.

Mount them on the webhook app (`add_routes`) or serve them on their own address (`serve`, OPS_LISTEN). The
readiness checks are async callables that return when their dependency answers and raise when it does not; this
module knows nothing of the store, only the helpers below build checks from an engine, a Redis client or a Bot.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping

from aiogram import Bot
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

Check = Callable[[], Awaitable[None]]
#: How long one readiness check may take before it counts as failed.
CHECK_TIMEOUT = 3.0


def database_check(engine: AsyncEngine) -> Check:
    async def database() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    return database


def redis_check(client: Redis) -> Check:
    async def redis() -> None:
        if not await client.ping():
            raise ConnectionError("no PONG")

    return redis


def telegram_check(bot: Bot, *, fresh_for: float = 30.0, clock: Callable[[], float] = time.monotonic) -> Check:
    """getMe, remembered for `fresh_for` seconds after it answered, so probes do not call the Bot API each time."""
    answered_at: float | None = None

    async def telegram() -> None:
        nonlocal answered_at
        if answered_at is not None and clock() - answered_at < fresh_for:
            return
        await bot.get_me()
        answered_at = clock()

    return telegram


def add_routes(app: web.Application, registry: CollectorRegistry, checks: Mapping[str, Check]) -> None:
    """Add /healthz, /readyz and /metrics to `app` (before it starts)."""
    checks = dict(checks)

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def readyz(request: web.Request) -> web.Response:
        failed = await _failing(checks)
        if failed:
            return web.json_response({"ready": False, "failed": failed}, status=503)
        return web.json_response({"ready": True})

    async def metrics(request: web.Request) -> web.Response:
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)


async def _failing(checks: Mapping[str, Check]) -> list[str]:
    """The names of the checks that raised or timed out. Only names: an error could quote a URL or a password."""

    async def one(name: str, check: Check) -> str | None:
        try:
            await asyncio.wait_for(check(), CHECK_TIMEOUT)
        except Exception as exc:
            log.warning("readiness check failed", extra={"check": name, "error": type(exc).__name__})
            return name
        return None

    results = await asyncio.gather(*(one(name, check) for name, check in checks.items()))
    return [name for name in results if name is not None]


def app(registry: CollectorRegistry, checks: Mapping[str, Check]) -> web.Application:
    application = web.Application()
    add_routes(application, registry, checks)
    return application


async def serve(listen: str, registry: CollectorRegistry, checks: Mapping[str, Check]) -> web.AppRunner:
    """Serve the endpoints on `listen` ("host:port"; port 0 picks a free one). Call `cleanup()` on the result."""
    return await serve_on(app(registry, checks), listen)


async def serve_on(served: web.Application, listen: str, *, reuse_port: bool = False) -> web.AppRunner:
    """Serve `served` on `listen` ("host:port", no host: 127.0.0.1), without an access log; a failed bind cleans
    up and raises. `reuse_port`: several processes may listen on the one port (SO_REUSEPORT). Call `cleanup()` on
    the result."""
    host, _, port = listen.rpartition(":")
    runner = web.AppRunner(served, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host or "127.0.0.1", int(port), reuse_port=reuse_port).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner
