"""`python -m bot web`: the console on its own (no Telegram needed), on the bot's database.

It prints a one-time sign-in link at start, for whoever started it on this machine; admins can also get one from
the bot with /web when both use the same database.
"""

from __future__ import annotations

import asyncio
import sys

from bot import logs
from bot.app import load_core, until_stopped, utc_now, web_base_url, web_console_for
from bot.config import Settings
from bot.storage import open_store
from bot.web import app as web_console
from bot.web.links import SignInLinks, console_url


async def run_console(settings: Settings, listen: str | None, *, stop: asyncio.Event | None = None) -> int:
    logs.configure(settings.log_level)
    try:
        core = load_core(settings)
    except Exception as exc:
        print(f"Puente cannot start: {exc}", file=sys.stderr)
        return 4
    address = listen or settings.web_listen or web_console.DEFAULT_LISTEN
    store = await open_store(settings.database_url)
    try:
        console = web_console_for(settings, core, store)
        runner = await web_console.start(console, address)
        try:
            base = console_url(settings.web_public_url, address, address) if listen else web_base_url(settings)
            token = await SignInLinks(store, utc_now).issue()
            print(f"Puente web console on http://{address}/preview", flush=True)
            print(f"Sign in once (within 10 minutes) with: {base}/login/{token}", flush=True)
            await until_stopped(stop, handle_signals=stop is None)
        finally:
            await runner.cleanup()
    finally:
        await store.close()
    return 0
