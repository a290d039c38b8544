"""The benchmark's baseline: the smallest aiogram bot (echo every text), polling the same fake Bot API.

Run by scripts/bench.py with BOT_TOKEN and TELEGRAM_API_URL set to the fake server's.
"""

from __future__ import annotations

import asyncio
import logging
import os

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import Message


async def main() -> None:
    logging.basicConfig(level=logging.ERROR)
    session = AiohttpSession(api=TelegramAPIServer.from_base(os.environ["TELEGRAM_API_URL"]))
    bot = Bot(os.environ["BOT_TOKEN"], session=session)
    dispatcher = Dispatcher()

    @dispatcher.message()
    async def echo(message: Message) -> None:
        await message.answer(message.text or "?")

    await dispatcher.start_polling(bot, polling_timeout=2)


if __name__ == "__main__":
    asyncio.run(main())
