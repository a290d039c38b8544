"""aiogram handlers: translate Telegram updates into intents, and replies back into Bot API calls.

People and staff are served in private chats; in groups the bot only answers Accept/Decline on the referral cards
it posted in organisations' intake chats, and it leaves any group or channel it was not configured for. Buttons are
routed on their callback data (ids), text on the questionnaire's parser, commands by name; nothing here knows what a
question means.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import Bot, F, Router
from aiogram.enums import ContentType
from aiogram.exceptions import TelegramAPIError
from aiogram.methods import AnswerCallbackQuery
from aiogram.types import (
    CallbackQuery,
    ChatMemberRestricted,
    ChatMemberUpdated,
    Message,
    TelegramObject,
    Update,
    User,
)
from aiogram.utils.magic_filter import MagicFilter

from bot.admin import ROUTED_COMMANDS, Admin, parse_command
from bot.broadcast import Broadcaster
from bot.compose import Composer, Draftable
from bot.connect import Connector
from bot.conversation import Conversation, Person, known_language
from bot.handoff import Handoff, StaffMessage
from bot.intents import (
    AskDelete,
    AskHuman,
    AskLanguage,
    ChooseLanguage,
    Compose,
    ConfirmDelete,
    ControlBroadcast,
    Decide,
    Help,
    Intent,
    LeaveHandoff,
    Media,
    ShowMyData,
    ShowPrivacy,
    Start,
    StopUpdates,
    Subscribe,
    SwitchProgram,
    Typed,
    command_intent,
)
from bot.logs import hashed
from bot.outgoing import FileRef, Outgoing, Reply
from bot.storage.broadcasts import Broadcast
from bot.switch import ProgramSwitch
from bot.telegram.callbacks import unpack
from bot.telegram.middlewares import GROUP_TYPES, KnownChats
from bot.telegram.sender import TelegramSender
from bot.texts import T

log = logging.getLogger(__name__)


#: What staff write that can reach a person: content, not the group's service messages (a topic closed, renamed or
#: pinned), which copyMessage refuses and which answer nobody.
RELAYABLE = frozenset(
    {
        ContentType.TEXT, ContentType.PHOTO, ContentType.DOCUMENT, ContentType.VIDEO, ContentType.ANIMATION,
        ContentType.VOICE, ContentType.AUDIO, ContentType.VIDEO_NOTE, ContentType.STICKER, ContentType.LOCATION,
        ContentType.VENUE, ContentType.CONTACT,
    }
)  # fmt: skip


def inline(magic: MagicFilter) -> Callable[[TelegramObject], Awaitable[Any]]:
    """A magic filter (`F.chat.type == "private"`) as a coroutine. aiogram runs a plain filter function in a thread
    (asyncio.to_thread) every time it is checked, a thread hop per filter per update; as a coroutine the same test
    runs inline, for a fraction of the cost."""

    async def check(event: TelegramObject) -> Any:
        return magic.resolve(event)

    return check


def build_routers(staff_chat_id: int | None) -> list[Router]:
    """In the order they are consulted: the bot's own membership, admin commands, the staff group, intake chats,
    then everyone's conversation."""
    membership = Router(name="membership")
    membership.my_chat_member.register(on_my_chat_member)

    admin = Router(name="admin")
    admin.message.filter(inline(F.chat.type == "private"), inline(F.from_user))
    admin.message.register(on_admin_command, inline(F.text), is_admin_command)
    admin.message.register(on_compose_message, is_composing)
    admin.callback_query.filter(inline(F.message.chat.type == "private"))
    admin.callback_query.register(on_admin_button, is_admin_button)

    staff = Router(name="staff")
    if staff_chat_id is not None:
        staff.message.filter(
            inline(F.chat.id == staff_chat_id), inline(F.from_user), inline(F.content_type.in_(RELAYABLE))
        )
        staff.message.register(on_staff_message)
        staff.edited_message.filter(inline(F.chat.id == staff_chat_id), inline(F.from_user), inline(F.text | F.caption))
        staff.edited_message.register(on_staff_edit)

    intake = Router(name="intake")
    intake.callback_query.filter(inline(F.message.chat.type.in_({"group", "supergroup"})))
    intake.callback_query.register(on_intake_button)

    questionnaire = Router(name="questionnaire")
    questionnaire.message.filter(inline(F.chat.type == "private"))
    questionnaire.callback_query.filter(inline(F.message.chat.type == "private"))
    questionnaire.message.register(on_message)
    questionnaire.callback_query.register(on_button)
    questionnaire.edited_message.filter(inline(F.chat.type == "private"), inline(F.text), inline(F.from_user))
    questionnaire.edited_message.register(on_edited_message)
    return [membership, admin, staff, intake, questionnaire]


def person_of(user: User, chat_id: int) -> Person:
    return Person(user_id=user.id, chat_id=chat_id, username=user.username, first_name=user.first_name)


def message_intent(message: Message) -> Intent:
    text = message.text
    if text is None:
        return Media()
    if text.startswith("/"):
        hint = message.from_user.language_code if message.from_user else None
        # An unknown command is read as text: the questionnaire re-asks with its buttons.
        return command_intent(text, hint) or Typed(text)
    return Typed(text)


#: What a person in a conversation with staff can still do: leave it, ask about privacy, erase their data.
_DURING_HANDOFF = (
    LeaveHandoff, AskDelete, ConfirmDelete, Help, ShowPrivacy, ShowMyData, AskLanguage, ChooseLanguage, AskHuman,
    StopUpdates, Subscribe,
)  # fmt: skip


async def on_message(
    message: Message,
    event_update: Update,
    conversation: Conversation,
    sender: TelegramSender,
    handoff: Handoff | None,
) -> None:
    if message.from_user is None or message.from_user.is_bot:
        return
    person = person_of(message.from_user, message.chat.id)
    intent = message_intent(message)
    if handoff is not None and not isinstance(intent, _DURING_HANDOFF):
        reply_to = message.reply_to_message.message_id if message.reply_to_message else None
        command = bool(message.text and message.text.startswith("/"))
        relayed = await handoff.intercept(person.user_id, person.chat_id, message.message_id, reply_to, command=command)
        if relayed is not None:
            await sender.deliver(person.chat_id, relayed)
            return
    reply = await conversation.handle(person, intent, update_id=event_update.update_id)
    await sender.deliver(person.chat_id, reply)


async def on_edited_message(message: Message, handoff: Handoff | None) -> None:
    """A person corrected a message they sent to staff: correct the copy in their topic."""
    if handoff is None or message.from_user is None or message.text is None:
        return
    ticket = await handoff.tickets.open_ticket_of(message.from_user.id)
    if ticket is not None:
        await handoff.relay_edit_in(ticket, message.message_id, message.text)


def staff_message(message: Message) -> StaffMessage:
    assert message.from_user is not None  # the router's filter
    replied = message.reply_to_message
    return StaffMessage(
        chat_id=message.chat.id,
        message_id=message.message_id,
        sender_id=message.from_user.id,
        sender_name=message.from_user.full_name,
        thread_id=message.message_thread_id if message.is_topic_message else None,
        reply_to_message_id=replied.message_id if replied else None,
        text=message.text,
        caption=message.caption,
        forwarded=message.forward_origin is not None,
        reply_to_bot=bool(replied and replied.from_user and replied.from_user.is_bot),
    )


async def on_staff_message(message: Message, handoff: Handoff | None) -> None:
    if handoff is None or (message.from_user is not None and message.from_user.is_bot):
        return
    written = staff_message(message)
    # Notices wait behind every relay into the group (Outbox.notice), so a flood of refusals delays nobody.
    notice = await handoff.from_staff(written)
    if notice is not None:
        handoff.outbox.notice(message.chat.id, notice, thread_id=written.thread_id)


async def on_staff_edit(message: Message, handoff: Handoff | None) -> None:
    if handoff is None:
        return
    written = staff_message(message)
    notice = await handoff.edited_by_staff(written)
    if notice is not None:
        handoff.outbox.notice(message.chat.id, notice, thread_id=written.thread_id)


async def on_button(
    query: CallbackQuery,
    event_update: Update,
    conversation: Conversation,
    sender: TelegramSender,
    handoff: Handoff | None,
) -> AnswerCallbackQuery | None:
    intent = unpack(query.data or "")
    if intent is None or isinstance(intent, (Compose, ControlBroadcast, SwitchProgram)):
        # Data this bot never issued (a forged or ancient button), or an admin's button in the hands of someone
        # who is not (or no longer) an admin: show the person where they are.
        log.warning("unexpected callback data", extra={"user": hashed(query.from_user.id)})
        intent = Start()
    waiting_for_staff = handoff is not None and not isinstance(intent, _DURING_HANDOFF)
    if waiting_for_staff and handoff and await handoff.tickets.open_ticket_of(query.from_user.id) is not None:
        busy = await handoff.busy_text(query.from_user.id)
        return await sender.deliver(query.from_user.id, Reply(toast=busy), query=query)
    chat_id = query.message.chat.id if query.message else query.from_user.id
    person = person_of(query.from_user, chat_id)
    reply = await conversation.handle(person, intent, update_id=event_update.update_id)
    return await sender.deliver(person.chat_id, reply, query=query)


async def is_admin_command(message: Message, admin: Admin) -> bool:
    """An admin command from an admin (checked now, against configuration): to others it is plain text."""
    assert message.text is not None
    assert message.from_user is not None
    return parse_command(message.text) is not None and admin.is_admin(message.from_user.id)


_PRESENT = frozenset({"creator", "administrator", "member"})


async def on_my_chat_member(change: ChatMemberUpdated, bot: Bot, known_chats: KnownChats) -> None:
    """The bot was added to a group or channel, or removed from one: it stays only where it is configured to be.

    In a private chat this is a person blocking or unblocking the bot; their next message tells.
    """
    chat = change.chat
    if chat.type not in GROUP_TYPES:
        return
    member = change.new_chat_member
    present = member.status in _PRESENT or (isinstance(member, ChatMemberRestricted) and member.is_member)
    configured = await known_chats.configured(chat.id)
    if present and not configured:
        await known_chats.leave(bot, chat, reason="added", since=change.date.timestamp())
    elif present:
        log.info("added to a configured chat", extra={"chat": hashed(chat.id), "type": chat.type})
    elif configured:
        log.warning("removed from a configured chat", extra={"chat": hashed(chat.id), "status": member.status})


async def tell_to_slow_down(user: User, chat_id: int, conversation: Conversation, sender: TelegramSender) -> None:
    """The one notice someone flooding the bot gets, in their language (see FloodControl)."""
    lang = await admin_language(user, conversation)  # the same rule: their questionnaire's, Telegram's, the default
    try:
        await sender.deliver(chat_id, Reply((Outgoing(conversation.tr.text(lang, T.SLOW_DOWN)),)))
    except TelegramAPIError as exc:
        log.warning("slow-down notice not sent", extra={"user": hashed(user.id), "reason": exc.message[:80]})


async def admin_language(user: User, conversation: Conversation) -> str:
    """The language admin screens use: the admin's own in the questionnaire, else Telegram's, else the default."""
    participant = await conversation.store.load(user.id)
    lang = participant.language if participant else known_language(user.language_code, conversation.tr.languages)
    return lang or conversation.default_language


async def on_admin_command(
    message: Message,
    admin: Admin,
    composer: Composer,
    switch: ProgramSwitch,
    conversation: Conversation,
    sender: TelegramSender,
) -> None:
    assert message.text is not None
    assert message.from_user is not None
    command = parse_command(message.text)
    assert command is not None
    lang = await admin_language(message.from_user, conversation)
    log.info("admin command", extra={"user": hashed(message.from_user.id), "command": command.name})
    match command.name:
        case "broadcast":
            reply = await composer.start(message.from_user.id, lang)
        case "broadcasts":
            reply = await composer.listing(lang)
        case "cancel":
            reply = await composer.cancel(message.from_user.id, lang)
        case "program":
            reply = await switch.show(lang)
        case _:
            assert command.name not in ROUTED_COMMANDS
            reply = await admin.handle(message.from_user.id, lang, command)
    await sender.deliver(message.chat.id, reply)


async def is_composing(message: Message, admin: Admin, composer: Composer) -> bool | dict[str, object]:
    """An admin's message while their broadcast draft waits for one (not a command): it goes to the composer."""
    assert message.from_user is not None
    if not admin.is_admin(message.from_user.id) or (message.text or "").startswith("/"):
        return False
    draft = await composer.waiting_for_message(message.from_user.id)
    return {"draft": draft} if draft is not None else False


async def on_compose_message(message: Message, draft: Broadcast, composer: Composer, sender: TelegramSender) -> None:
    file = None
    if message.photo:
        file = FileRef("photo", message.photo[-1].file_id)
    elif message.document:
        file = FileRef("document", message.document.file_id)
    visible = message.text or message.caption or ""
    content = Draftable(html=message.html_text if visible else None, length=utf16_len(visible), file=file)
    reply = await composer.message(draft, content)
    await sender.deliver(message.chat.id, reply)


async def is_admin_button(query: CallbackQuery, admin: Admin) -> bool:
    """A composer or broadcast-control button, tapped by someone who is an admin right now."""
    admin_button = isinstance(unpack(query.data or ""), (Compose, ControlBroadcast, SwitchProgram))
    return admin_button and admin.is_admin(query.from_user.id)


async def on_admin_button(
    query: CallbackQuery,
    composer: Composer,
    broadcaster: Broadcaster,
    switch: ProgramSwitch,
    conversation: Conversation,
    sender: TelegramSender,
) -> AnswerCallbackQuery | None:
    intent = unpack(query.data or "")
    lang = await admin_language(query.from_user, conversation)
    log.info("admin button", extra={"user": hashed(query.from_user.id)})
    if isinstance(intent, ControlBroadcast):
        changed = await broadcaster.control(intent.broadcast_id, intent.action)
        if changed is None:
            toast = conversation.tr.text(lang, T.BC_CONTROL_REFUSED)
        else:
            toast = conversation.tr.text(
                lang,
                T.BC_PROGRESS_TITLE,
                id=changed.id,
                state=conversation.tr.text(lang, f"bc.state.{changed.status.value}"),
            )
        return await sender.deliver(query.from_user.id, Reply(toast=toast), query=query)
    if isinstance(intent, SwitchProgram):
        reply = await switch.button(query.from_user.id, lang, intent)
        return await sender.deliver(query.from_user.id, reply, query=query)
    assert isinstance(intent, Compose)
    reply = await composer.button(query.from_user.id, intent)
    return await sender.deliver(query.from_user.id, reply, query=query)


def utf16_len(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


async def on_intake_button(
    query: CallbackQuery, connector: Connector, sender: TelegramSender
) -> AnswerCallbackQuery | None:
    """Accept or Decline on a referral card; anything else in a group is not for this bot."""
    intent = unpack(query.data or "")
    if not isinstance(intent, Decide) or not isinstance(query.message, Message):
        log.warning("unexpected button in a group", extra={"user": hashed(query.from_user.id)})
        return await sender.deliver(query.from_user.id, Reply(), query=query)  # the spinner stops; nothing else
    card = query.message.text or ""
    tapped = (query.message.chat.id, query.message.message_id)
    reply = await connector.decide(query.from_user.id, query.from_user.full_name, intent, card, tapped)
    return await sender.deliver(query.message.chat.id, reply, query=query)
