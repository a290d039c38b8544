"""The benchmark's baselines: the smallest aiogram bots, polling the same fake Bot API.

By default it echoes every text (one sendMessage an update). With ECHO_TAPS=1 it is the smallest bot that moves a
person on by a button as Puente does: each tap edits the tapped message (a new text and a new button) and answers
the tap, the two calls a questionnaire tap cannot do without; a text gets a message with the first button.

Run by scripts/bench.py with BOT_TOKEN and TELEGRAM_API_URL set to the fake server's, on Python's own event loop
unless EVENT_LOOP=uvloop.
"""

from __future__ import annotations

import asyncio
import logging
import os

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message


def button(step: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text=f"step {step}", callback_data=str(step))]])


async def main() -> None:
    logging.basicConfig(level=logging.ERROR)
    session = AiohttpSession(api=TelegramAPIServer.from_base(os.environ["TELEGRAM_API_URL"]))
    bot = Bot(os.environ["BOT_TOKEN"], session=session)
    dispatcher = Dispatcher()

    if os.environ.get("ECHO_TAPS") == "1":

        @dispatcher.message()
        async def first(message: Message) -> None:
            await message.answer("step 0", reply_markup=button(0))

        @dispatcher.callback_query()
        async def tapped(query: CallbackQuery) -> None:
            step = int(query.data or 0) + 1
            if isinstance(query.message, Message):
                await query.message.edit_text(f"step {step}", reply_markup=button(step))
            await query.answer()

    else:

        @dispatcher.message()
        async def echo(message: Message) -> None:
            await message.answer(message.text or "?")

    await dispatcher.start_polling(bot, polling_timeout=2)


if __name__ == "__main__":
    # Python's own loop, as a bare aiogram bot runs; EVENT_LOOP=uvloop for the loop Puente runs on.
    if os.environ.get("EVENT_LOOP") == "uvloop":
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())
