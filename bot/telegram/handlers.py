"""aiogram handlers: translate Telegram updates into intents, and replies back into Bot API calls.

Only private chats are served. Buttons are routed on their callback data (ids), text on the questionnaire's
parser, commands by name; nothing here knows what a question means.
"""

from __future__ import annotations

import logging

from aiogram import F, Router
from aiogram.types import CallbackQuery, Message, Update

from bot.conversation import Conversation, Person
from bot.intents import Intent, Media, Start, Typed, command_intent
from bot.logs import hashed
from bot.telegram.callbacks import unpack
from bot.telegram.sender import TelegramSender

log = logging.getLogger(__name__)


def build_router() -> Router:
    router = Router(name="questionnaire")
    router.message.filter(F.chat.type == "private")
    router.callback_query.filter(F.message.chat.type == "private")
    router.message.register(on_message)
    router.callback_query.register(on_button)
    return router


def message_intent(message: Message) -> Intent:
    text = message.text
    if text is None:
        return Media()
    if text.startswith("/"):
        hint = message.from_user.language_code if message.from_user else None
        # An unknown command is read as text: the questionnaire re-asks with its buttons.
        return command_intent(text, hint) or Typed(text)
    return Typed(text)


async def on_message(
    message: Message, event_update: Update, conversation: Conversation, sender: TelegramSender
) -> None:
    if message.from_user is None or message.from_user.is_bot:
        return
    person = Person(user_id=message.from_user.id, chat_id=message.chat.id)
    reply = await conversation.handle(person, message_intent(message), update_id=event_update.update_id)
    await sender.deliver(person.chat_id, reply)


async def on_button(
    query: CallbackQuery, event_update: Update, conversation: Conversation, sender: TelegramSender
) -> None:
    intent = unpack(query.data or "")
    if intent is None:
        # Data this bot never issued (a forged or ancient button): show the person where they are.
        log.warning("unknown callback data", extra={"user": hashed(query.from_user.id)})
        intent = Start()
    chat_id = query.message.chat.id if query.message else query.from_user.id
    person = Person(user_id=query.from_user.id, chat_id=chat_id)
    reply = await conversation.handle(person, intent, update_id=event_update.update_id)
    await sender.deliver(person.chat_id, reply, query=query)
