"""Delivers replies through the Bot API: the messages, with the button's toast and the tapped message's edit
beside them.

A bot on a webhook answers the button in its answer to the webhook's POST instead (`answers_in_response`): that is
one HTTP call fewer a tap, and Telegram performs it as soon as the update has been handled.

It is also the connector's Messenger: cards into organisations' intake chats, and news to people.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Sequence
from typing import Any

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest, TelegramForbiddenError
from aiogram.methods import AnswerCallbackQuery, EditMessageText, SendDocument, SendMessage, SendPhoto
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    ReplyParameters,
    TelegramObject,
)

from bot.broadcast import SendVersion
from bot.handoff import StaffUnreachable
from bot.logs import hashed
from bot.outbox import PROTECT, Entry
from bot.outgoing import Button, Outgoing, Reply
from bot.storage.broadcasts import Version
from bot.telegram.callbacks import pack
from bot.telegram.menus import CommandMenus

log = logging.getLogger(__name__)


def keyboard(message: Outgoing) -> InlineKeyboardMarkup | None:
    if not message.buttons:
        return None
    return _markup(message.buttons)


@functools.lru_cache(maxsize=2048)
def _markup(rows: tuple[tuple[Button, ...], ...]) -> InlineKeyboardMarkup:
    """A question's buttons are the same for everyone who reads it in one language: built once, then reused (the
    markup is only ever read)."""
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=b.label, callback_data=pack(b.intent)) for b in row] for row in rows
        ]
    )


class TelegramSender:
    def __init__(self, bot: Bot, menus: CommandMenus | None = None, *, answers_in_response: bool = False) -> None:
        self.bot = bot
        self.menus = menus
        self.answers_in_response = answers_in_response

    async def deliver(
        self, chat_id: int, reply: Reply, *, query: CallbackQuery | None = None
    ) -> AnswerCallbackQuery | None:
        """Show `reply`; for a tapped button, also answer it, or return the answer when `answers_in_response`.

        A handler returns what this returns: aiogram puts that method in the webhook's answer.
        """
        if query is None:
            await self._show(chat_id, reply)
            return None
        # The tap's answer (the spinner on the button, or a toast) and the tapped message's edit go beside the
        # messages, not ahead of them: the next question waits for neither round trip. They change the tapped
        # message only, so in whatever order Telegram applies the three, the chat ends up the same.
        beside: list[asyncio.Future[None]] = []
        if not self.answers_in_response:
            beside.append(asyncio.ensure_future(self._answer(query, reply.toast)))
        if reply.edit_source and isinstance(query.message, Message):
            beside.append(asyncio.ensure_future(self._edit(chat_id, query.message.message_id, reply.edit_source)))
        try:
            await self._show(chat_id, reply)
        finally:
            if beside:
                await asyncio.wait(beside)
            # Seen either way; if the messages failed, theirs is the error that is raised.
            failures = [task.exception() for task in beside if not task.cancelled()]
        for failure in failures:
            if failure is not None:
                raise failure
        if self.answers_in_response:
            # Telegram performs it once the POST is answered, after the messages. Its outcome is never seen; a
            # refused answer (a query too old) is only logged in `_answer` either way.
            return AnswerCallbackQuery(callback_query_id=query.id, text=reply.toast)
        return None

    async def _show(self, chat_id: int, reply: Reply) -> None:
        try:
            for message in reply.messages:
                await self._send(chat_id, message)
        except TelegramForbiddenError:
            # They blocked the bot or left: nothing to deliver; their saved state stays until they /delete.
            log.info("recipient unreachable", extra={"user": hashed(chat_id)})
            return
        # After the messages, so the menu never holds up what the person reads.
        if self.menus is not None:
            if reply.menu_language is not None:
                await self.menus.show(chat_id, reply.menu_language)
            if reply.menu_cleared:
                await self.menus.clear(chat_id)

    # ---- Messenger (bot.connect)

    async def send(self, chat_id: int, message: Outgoing) -> int | None:
        try:
            return await self._send(chat_id, message)
        except (TelegramForbiddenError, TelegramBadRequest) as exc:  # blocked, left, chat gone
            log.warning("message not delivered", extra={"chat": hashed(chat_id), "reason": exc.message[:80]})
            return None

    # ---- plumbing

    async def _send(self, chat_id: int, message: Outgoing) -> int:
        return await send_outgoing(self.bot, chat_id, message)

    # ---- the admin's broadcast progress (bot.broadcast.Board) and cleared cards (bot.connect.Messenger)

    async def post(self, chat_id: int, message: Outgoing) -> int | None:
        return await self.send(chat_id, message)

    async def edit(self, chat_id: int, message_id: int, message: Outgoing) -> None:
        try:
            await self.bot.edit_message_text(
                text=message.text, chat_id=chat_id, message_id=message_id, reply_markup=keyboard(message)
            )
        except (TelegramForbiddenError, TelegramBadRequest) as exc:  # not modified, deleted, blocked
            log.info("edit skipped", extra={"reason": exc.message[:80]})

    async def _answer(self, query: CallbackQuery, toast: str | None) -> None:
        try:
            await query.answer(text=toast)
        except TelegramBadRequest as exc:  # an old query (more than ~15 minutes): the tap still counts
            log.info("callback answer refused", extra={"reason": exc.message[:80]})

    async def _edit(self, chat_id: int, message_id: int, text: str) -> None:
        try:
            await self.bot(_Edit(text=text, chat_id=chat_id, message_id=message_id))
        except (TelegramBadRequest, TelegramForbiddenError) as exc:
            # Not modified, too old, deleted, or they blocked the bot since tapping: the new messages matter more.
            log.info("edit skipped", extra={"reason": exc.message[:80]})


async def send_outgoing(bot: Bot, chat_id: int, message: Outgoing, *, paid: bool = False) -> int:
    """One message through the Bot API: a text, a file with its caption, or a file Telegram already has.

    Only the new message's id is read from Telegram's answer (`Delivered`)."""
    markup = keyboard(message)
    common: dict[str, Any] = {"chat_id": chat_id, "reply_markup": markup}
    if message.attachment is None:
        common |= {"parse_mode": "HTML" if message.html else None, "allow_paid_broadcast": True if paid else None}
    if message.file is not None and message.file.kind == "photo":
        sent = await bot(_SendPhoto(photo=message.file.file_id, caption=message.text, **common))
    elif message.file is not None:
        sent = await bot(_SendDocument(document=message.file.file_id, caption=message.text, **common))
    elif message.attachment is not None:
        file = BufferedInputFile(message.attachment.content, filename=message.attachment.filename)
        if message.attachment.mime_type.startswith("image/"):
            sent = await bot(_SendPhoto(photo=file, caption=message.text, **common))
        else:
            sent = await bot(_SendDocument(document=file, caption=message.text, **common))
    else:
        protect = True if message.protect else None
        sent = await bot(_SendText(text=message.text, protect_content=protect, **common))
    return sent.message_id


class Delivered(TelegramObject):
    """What the bot needs of Telegram's answer to a send or an edit: that it came, and the message id. The rest of
    the Message is kept unvalidated, which makes a send about a third cheaper at 1,000 a second."""

    message_id: int


class _Edit(EditMessageText):
    """An edit of a tapped message, whose answer (the whole message again) is not needed."""

    __returning__ = Delivered | bool


class _SendText(SendMessage):
    __returning__ = Delivered  # type: ignore[assignment]


class _SendPhoto(SendPhoto):
    __returning__ = Delivered  # type: ignore[assignment]


class _SendDocument(SendDocument):
    __returning__ = Delivered  # type: ignore[assignment]


def broadcast_sender(bot: Bot, *, paid: bool) -> SendVersion:
    """Sends a broadcast's version (bot.broadcast.SendVersion) on a Bot that leaves retries to the broadcaster."""
    paid_broadcast = True if paid else None

    async def send(chat_id: int, version: Version) -> None:
        common: dict[str, Any] = {"chat_id": chat_id, "parse_mode": "HTML", "allow_paid_broadcast": paid_broadcast}
        if version.photo:
            await bot(_SendPhoto(photo=version.photo, caption=version.text, **common))
        elif version.document:
            await bot(_SendDocument(document=version.document, caption=version.text, **common))
        else:
            await bot(_SendText(text=version.text, **common))

    return send


#: deleteMessages takes at most 100 ids a call.
DELETE_AT_ONCE = 100


class TelegramStaffApi:
    """Forum topics, edits and outbox deliveries for the handoff (bot.handoff.StaffApi, bot.outbox.Deliver).

    Uses a Bot whose session does not retry on its own: the outbox schedules retries per chat itself.
    """

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def create_topic(self, chat_id: int, name: str) -> int | None:
        try:
            topic = await self.bot.create_forum_topic(chat_id, name)
        except TelegramForbiddenError as exc:  # removed from the group
            raise StaffUnreachable(exc.message) from exc
        except TelegramBadRequest as exc:  # a plain group: staff answer by replying instead
            log.info("no forum topic", extra={"reason": exc.message[:80]})
            return None
        return topic.message_thread_id

    async def reopen_topic(self, chat_id: int, thread_id: int) -> bool:
        try:
            await self.bot.reopen_forum_topic(chat_id, thread_id)
        except TelegramForbiddenError as exc:
            raise StaffUnreachable(exc.message) from exc
        except TelegramBadRequest as exc:
            # Telegram refuses to reopen a topic that is open ("TOPIC_NOT_MODIFIED"): it is usable as it is.
            return "NOT_MODIFIED" in exc.message.upper()
        return True

    async def edit_text(self, chat_id: int, message_id: int, text: str) -> None:
        try:
            await self.bot.edit_message_text(text=text, chat_id=chat_id, message_id=message_id)
        except (TelegramBadRequest, TelegramForbiddenError) as exc:
            log.info("relayed edit skipped", extra={"reason": exc.message[:80]})

    async def delete_topic(self, chat_id: int, thread_id: int) -> bool:
        try:
            await self.bot.delete_forum_topic(chat_id, thread_id)
        except TelegramAPIError as exc:  # no right to delete, already gone, or Telegram unreachable
            log.warning("topic not deleted", extra={"reason": exc.message[:80]})
            return False
        return True

    async def delete_messages(self, chat_id: int, message_ids: Sequence[int]) -> None:
        for start in range(0, len(message_ids), DELETE_AT_ONCE):
            try:
                await self.bot.delete_messages(chat_id, list(message_ids[start : start + DELETE_AT_ONCE]))
            except TelegramAPIError as exc:  # older than 48 hours, no right to, or Telegram unreachable
                log.warning("messages not deleted", extra={"reason": exc.message[:80]})

    async def deliver(self, entry: Entry) -> int:
        """Send one outbox entry; errors propagate for the outbox to classify (retry, wait, or give up)."""
        payload = entry.payload
        if entry.kind == "copy":
            reply_to = payload.get("reply_to")
            copied = await self.bot.copy_message(
                chat_id=entry.chat_id,
                from_chat_id=int(payload["from_chat_id"]),
                message_id=int(payload["message_id"]),
                message_thread_id=entry.thread_id,
                reply_parameters=(
                    ReplyParameters(message_id=int(reply_to), allow_sending_without_reply=True) if reply_to else None
                ),
            )
            return copied.message_id
        sent = await self.bot.send_message(
            entry.chat_id,
            str(payload["text"]),
            message_thread_id=entry.thread_id,
            protect_content=True if payload.get(PROTECT) else None,
        )
        return sent.message_id
