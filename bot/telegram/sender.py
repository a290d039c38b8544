"""Delivers replies through the Bot API: the button's toast, the tapped message's edit, then the messages.

It is also the connector's Messenger: cards into organisations' intake chats, and news to people.
"""

from __future__ import annotations

import logging

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError
from aiogram.types import BufferedInputFile, CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from bot.logs import hashed
from bot.outgoing import Outgoing, Reply
from bot.telegram.callbacks import pack

log = logging.getLogger(__name__)


def keyboard(message: Outgoing) -> InlineKeyboardMarkup | None:
    if not message.buttons:
        return None
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=b.label, callback_data=pack(b.intent)) for b in row] for row in message.buttons
        ]
    )


class TelegramSender:
    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def deliver(self, chat_id: int, reply: Reply, *, query: CallbackQuery | None = None) -> None:
        if query is not None:
            await self._answer(query, reply.toast)
            if reply.edit_source and isinstance(query.message, Message):
                await self._edit(chat_id, query.message.message_id, reply.edit_source)
        try:
            for message in reply.messages:
                await self._send(chat_id, message)
        except TelegramForbiddenError:
            # They blocked the bot or left: nothing to deliver; their saved state stays until they /delete.
            log.info("recipient unreachable", extra={"user": hashed(chat_id)})

    # ---- Messenger (bot.connect)

    async def send(self, chat_id: int, message: Outgoing) -> int | None:
        try:
            return await self._send(chat_id, message)
        except (TelegramForbiddenError, TelegramBadRequest) as exc:  # blocked, left, chat gone
            log.warning("message not delivered", extra={"chat": hashed(chat_id), "reason": exc.message[:80]})
            return None

    async def remove_buttons(self, chat_id: int, message_id: int) -> None:
        try:
            await self.bot.edit_message_reply_markup(chat_id=chat_id, message_id=message_id, reply_markup=None)
        except (TelegramForbiddenError, TelegramBadRequest) as exc:
            log.info("buttons not removed", extra={"reason": exc.message[:80]})

    # ---- plumbing

    async def _send(self, chat_id: int, message: Outgoing) -> int:
        if message.attachment is not None:
            file = BufferedInputFile(message.attachment.content, filename=message.attachment.filename)
            sent = await self.bot.send_document(chat_id, file, caption=message.text, reply_markup=keyboard(message))
        else:
            sent = await self.bot.send_message(chat_id, message.text, reply_markup=keyboard(message))
        return sent.message_id

    async def _answer(self, query: CallbackQuery, toast: str | None) -> None:
        try:
            await query.answer(text=toast)
        except TelegramBadRequest as exc:  # an old query (more than ~15 minutes): the tap still counts
            log.info("callback answer refused", extra={"reason": exc.message[:80]})

    async def _edit(self, chat_id: int, message_id: int, text: str) -> None:
        try:
            await self.bot.edit_message_text(text=text, chat_id=chat_id, message_id=message_id, reply_markup=None)
        except TelegramBadRequest as exc:  # not modified, too old, deleted: the new messages matter more
            log.info("edit skipped", extra={"reason": exc.message[:80]})
