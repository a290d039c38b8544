"""Scripted users: the human side of a private chat with the bot under test.

A :class:`FakeUser` types and taps (which enqueues updates on the fake server) and reads what
the bot sent back (which the server records in the user's private :class:`~tests.fakebotapi.chat.Chat`).
Reading and waiting come from :class:`~tests.fakebotapi.chat.ChatReader`, typing and sending
media from :class:`ChatSender`; a group member (:class:`~tests.fakebotapi.group.FakeMember`)
sends the same way into a group.

The chat model (``ChatMessage``, ``Button``, ``Signal``...) lives in :mod:`tests.fakebotapi.chat`
and is re-exported here for code written before groups existed.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tests.fakebotapi.chat import (
    Button,
    CallbackAnswer,
    Chat,
    ChatMessage,
    ChatReader,
    Document,
    MessageVersion,
    Photo,
    Placement,
    PrivateChat,
    Signal,
    ThreadError,
    new_file_ids,
    preview,
)

if TYPE_CHECKING:
    from tests.fakebotapi.server import FakeBotAPI

__all__ = [
    "Button",
    "CallbackAnswer",
    "ChatMessage",
    "ChatSender",
    "FakeUser",
    "MessageVersion",
    "PrivateChat",
    "Signal",
]

_COMMAND_RE = re.compile(r"/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,64})?")


class ChatSender:
    """The typing side of a person: text, media and contacts sent into :meth:`outbox`.

    Subclasses provide the person (``server``, ``api``, ``id``, ``first_name``,
    ``phone_number``) and the chat their messages land in.

    Every sending method takes ``thread_id=`` (post in that forum topic) and ``reply_to=`` (a
    :class:`ChatMessage` of the same chat to reply to, which also puts the message in that
    message's topic) and returns the update_id of the enqueued ``message`` update. Everything
    sent is recorded in the chat with its content, so the bot can copy it (copyMessage).
    """

    server: FakeBotAPI
    api: dict[str, Any]
    """The Bot API ``User`` object of the person sending."""
    id: int
    first_name: str
    phone_number: str

    def outbox(self) -> Chat:
        """The chat this sender's messages are posted to."""
        raise NotImplementedError

    @property
    def last_sent(self) -> ChatMessage:
        """The latest message this person posted in :meth:`outbox` that still exists, e.g. to copy or reply to."""
        chat = self.outbox()
        message = next((m for m in reversed(chat.log) if m.sender.get("id") == self.id and not m.deleted), None)
        if message is None:
            raise AssertionError(f"{self.first_name} has not sent anything (still there) to chat {chat.id}")
        return message

    async def send(self, text: str, *, thread_id: int | None = None, reply_to: ChatMessage | None = None) -> int:
        """Type ``text``; a leading ``/command`` gets its bot_command entity, as Telegram adds it."""
        return await self.send_content(_text_content(text), thread_id=thread_id, reply_to=reply_to)

    async def reply(self, text: str, *, to: ChatMessage, thread_id: int | None = None) -> int:
        """Reply to ``to`` (any message of this chat, the bot's or a person's) with ``text``.

        The update carries ``reply_to_message``; in a forum topic, also the topic's thread id.
        """
        return await self.send(text, thread_id=thread_id, reply_to=to)

    async def send_sticker(
        self, emoji: str = "👍", *, thread_id: int | None = None, reply_to: ChatMessage | None = None
    ) -> int:
        sticker = {
            **new_file_ids("Sticker"),
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": emoji,
            "set_name": "PuenteFakeStickers",
            "file_size": 24_576,
        }
        return await self.send_content({"sticker": sticker}, thread_id=thread_id, reply_to=reply_to)

    async def send_photo(
        self, caption: str | None = None, *, thread_id: int | None = None, reply_to: ChatMessage | None = None
    ) -> int:
        """Send a camera photo (three sizes, 1280x960 the largest); the bot can send it again by any size's file_id."""
        photo = Photo.of_sizes((90, 68, 1_342), (320, 240, 18_221), (1280, 960, 141_930))
        content: dict[str, Any] = {"photo": photo.to_api()}
        if caption:
            content["caption"] = caption
        self.server.register_photo(photo)
        return await self.send_content(content, thread_id=thread_id, reply_to=reply_to, photo=photo)

    async def send_voice(
        self, duration: int = 3, *, thread_id: int | None = None, reply_to: ChatMessage | None = None
    ) -> int:
        voice = {
            **new_file_ids("Voice"),
            "duration": duration,
            "mime_type": "audio/ogg",
            "file_size": 6_000 * duration,
        }
        return await self.send_content({"voice": voice}, thread_id=thread_id, reply_to=reply_to)

    async def send_document(
        self,
        file_name: str = "documento.pdf",
        content: bytes = b"%PDF-1.4 fake document",
        *,
        mime_type: str | None = None,
        caption: str | None = None,
        thread_id: int | None = None,
        reply_to: ChatMessage | None = None,
    ) -> int:
        """Send a file; its bytes are kept (``message.document.content``), also in copies the bot makes.

        The bot can send the file again by its ``file_id``, as with files it receives from Telegram.
        """
        guessed, _ = mimetypes.guess_type(file_name, strict=False)
        document = Document.upload(file_name, content, mime_type or guessed or "application/octet-stream")
        fields: dict[str, Any] = {"document": document.to_api()}
        if caption:
            fields["caption"] = caption
        self.server.register_document(document)
        return await self.send_content(fields, thread_id=thread_id, reply_to=reply_to, document=document)

    async def send_location(
        self,
        latitude: float = 10.4806,
        longitude: float = -66.9036,
        *,
        horizontal_accuracy: float | None = None,
        thread_id: int | None = None,
        reply_to: ChatMessage | None = None,
    ) -> int:
        """Share a location (default: Caracas), as the attachment menu's "Location" does."""
        location: dict[str, Any] = {"latitude": latitude, "longitude": longitude}
        if horizontal_accuracy is not None:
            location["horizontal_accuracy"] = horizontal_accuracy
        return await self.send_content({"location": location}, thread_id=thread_id, reply_to=reply_to)

    async def send_contact(self, *, thread_id: int | None = None, reply_to: ChatMessage | None = None) -> int:
        """Share the person's own phone number (what a ``request_contact`` button does)."""
        contact = {"phone_number": self.phone_number, "first_name": self.first_name, "user_id": self.id}
        return await self.send_content({"contact": contact}, thread_id=thread_id, reply_to=reply_to)

    async def send_content(
        self,
        content: Mapping[str, Any],
        *,
        thread_id: int | None = None,
        reply_to: ChatMessage | None = None,
        document: Document | None = None,
        photo: Photo | None = None,
    ) -> int:
        """Send a message with arbitrary Message content fields; the escape hatch for other media.

        Fails the test (AssertionError) where a Telegram client would not let the person post:
        an unknown, deleted or closed topic, a reply to a message of another chat, or an
        account that :meth:`FakeBotAPI.deactivate` deleted.
        """
        if self.server.is_deactivated(self.id):
            raise AssertionError(f"{self.first_name}'s account was deleted (deactivate); they cannot send anything")
        chat = self.outbox()
        placement = self._placement(chat, thread_id, reply_to)
        message = chat.post(self.api, content, placement=placement, document=document, photo=photo)
        return self.server.push_update("message", message.to_api(), chat=chat)

    async def forward(self, message: ChatMessage, *, thread_id: int | None = None) -> int:
        """Forward ``message`` (of this sender's chat) into it again, e.g. from one forum topic into another.

        The copy carries ``forward_origin`` (who wrote the original, and when) as Telegram adds it. Fails the
        test (AssertionError) for a message sent with ``protect_content``: Telegram apps offer no Forward then.
        """
        chat = self.outbox()
        if chat.get(message.message_id) is not message:
            raise AssertionError(f"{message!r} is not a (still existing) message in chat {chat.id}")
        if message.protected:
            raise AssertionError(f"{message!r} was sent with protect_content: Telegram apps cannot forward it")
        origin: dict[str, Any] = {"type": "user", "date": message.date, "sender_user": dict(message.sender)}
        content = {**message.content, "forward_origin": origin}
        placement = self._placement(chat, thread_id, None)
        posted = chat.post(self.api, content, placement=placement, document=message.document, photo=message.photo)
        return self.server.push_update("message", posted.to_api(), chat=chat)

    async def edit(self, message: ChatMessage, new_text: str) -> int:
        """Edit one of this person's own messages: new text, or new caption for media.

        Enqueues an ``edited_message`` update (``edit_date`` set) and returns its update_id.
        """
        chat = self.outbox()
        if chat.get(message.message_id) is not message:
            raise AssertionError(f"{message!r} is not a (still existing) message in {self.first_name}'s chat {chat.id}")
        if message.from_bot or message.sender.get("id") != self.id:
            raise AssertionError(f"{self.first_name} can only edit their own messages, not {message!r}")
        if "text" in message.content:
            content = _text_content(new_text)
        elif _CAPTIONED.isdisjoint(message.content):
            raise AssertionError(f"{message!r} has neither text nor caption; Telegram cannot edit it into text")
        else:
            content = {k: v for k, v in message.content.items() if k not in ("caption", "caption_entities")}
            if new_text:
                content["caption"] = new_text
        if content == message.content:
            raise AssertionError(f"editing {message!r} to the same text changes nothing; Telegram sends no update")
        message.apply_edit(content, message.reply_markup, None)
        chat.changed.fire()
        return self.server.push_update("edited_message", message.to_api(), chat=chat)

    def _placement(self, chat: Chat, thread_id: int | None, reply_to: ChatMessage | None) -> Placement:
        if reply_to is not None and chat.get(reply_to.message_id) is not reply_to:
            raise AssertionError(
                f"{self.first_name} cannot reply to {reply_to!r}: it is not (or no longer) in chat {chat.id}"
            )
        try:
            return chat.place(thread_id, reply_to)
        except ThreadError as error:
            topics = {t.thread_id: t.name for t in chat.topics.values() if not t.deleted}
            aimed_at = thread_id or (reply_to.thread_id if reply_to else None)
            raise AssertionError(
                f"{self.first_name} cannot post in thread {aimed_at} of chat {chat.id} ({error}); "
                f"its open and closed topics: {topics}"
            ) from None


_CAPTIONED = frozenset({"photo", "document", "voice", "audio", "video", "animation"})


def _text_content(text: str) -> dict[str, Any]:
    content: dict[str, Any] = {"text": text}
    if match := _COMMAND_RE.match(text):
        content["entities"] = [{"type": "bot_command", "offset": 0, "length": len(match.group())}]
    return content


class FakeUser(ChatSender, ChatReader):
    """A scripted Telegram user in a private chat with the bot (chat id == user id).

    Acting (``send``, ``tap``...) enqueues updates for the bot to fetch via getUpdates. Reading
    (``messages``, ``next_message``...) looks at what the bot sent to this private chat. A user
    may also tap buttons on group messages, member or not (see :meth:`tap`); what the bot sends
    to the group is read through :class:`~tests.fakebotapi.group.FakeGroup`.
    """

    def __init__(
        self,
        server: FakeBotAPI,
        user_id: int,
        first_name: str,
        language_code: str | None = None,
        *,
        last_name: str | None = None,
        username: str | None = None,
        phone_number: str | None = None,
        is_bot: bool = False,
    ) -> None:
        self.server = server
        self.id = user_id
        self.first_name = first_name
        self.phone_number = phone_number or f"+1555{user_id % 10**7:07d}"
        self.api = {"id": user_id, "is_bot": is_bot, "first_name": first_name}
        chat: dict[str, Any] = {"id": user_id, "type": "private", "first_name": first_name}
        for key, value in (("last_name", last_name), ("username", username)):
            if value:
                self.api[key] = chat[key] = value
        if language_code:
            self.api["language_code"] = language_code
        self.chat = Chat(chat)
        self._cursor = 0

    def __repr__(self) -> str:
        return f"<FakeUser {self.first_name} id={self.id}>"

    @property
    def chat_name(self) -> str:
        return f"the chat with {self.first_name}"

    def outbox(self) -> Chat:
        return self.chat

    # -- what the user sees ----------------------------------------------------------------------

    @property
    def language_code(self) -> str | None:
        """The language the user's Telegram app reports (``None``: it reports none)."""
        code = self.api.get("language_code")
        return code if isinstance(code, str) else None

    def menu(self) -> list[str]:
        """The commands in this user's menu in their chat with the bot, as their app shows it (in menu order)."""
        return [command["command"] for command in self.server.menu(self.id, self.language_code)]

    def menu_descriptions(self) -> list[str]:
        """What the menu says of each command, in menu order: the language a person reads their commands in."""
        return [command["description"] for command in self.server.menu(self.id, self.language_code)]

    @property
    def reply_keyboard(self) -> list[list[str]] | None:
        """The reply keyboard currently shown under the input field, if any."""
        for message in reversed(self.chat.bot_log):
            markup = message.reply_markup or {}
            if "keyboard" in markup:
                return message.reply_keyboard
            if markup.get("remove_keyboard"):
                return None
        return None

    # -- what the user does ------------------------------------------------------------------------

    async def press(self, label: str) -> int:
        """Press a button of the current *reply* keyboard, which sends its label (or the contact)."""
        keyboard = self.reply_keyboard
        if keyboard is None:
            raise AssertionError(f"{self.first_name} has no reply keyboard to press {label!r} on")
        for row in self._current_reply_keyboard_buttons():
            for button in row:
                text = button["text"] if isinstance(button, dict) else str(button)
                if text == label:
                    if isinstance(button, dict) and button.get("request_contact"):
                        return await self.send_contact()
                    return await self.send(text)
        raise AssertionError(f"No reply keyboard button {label!r}; available: {[t for r in keyboard for t in r]}")

    async def tap(
        self,
        label: str | None = None,
        *,
        data: str | None = None,
        message: ChatMessage | None = None,
        forge: bool = False,
    ) -> str:
        """Tap an inline button, found by exact label or by callback_data; returns the query id.

        ``message`` defaults to the latest bot message with an inline keyboard in the user's
        private chat; pass an older one to tap a stale keyboard, as real users do. It may also
        be a message in *any* group, member or not: anyone can open a public supergroup and tap,
        and the bot must not assume the tapper belongs there. The update is then attributed to
        the group (its ``wait_idle`` and ``callback_answers``).

        ``forge=True`` sends ``data`` as is, even if no button on the message carries it: what a
        modified client can send, and what a genuine client sends when it taps a keyboard the bot
        has just edited away. Only a message in another user's private chat is out of reach.
        """
        if (label is None) == (data is None):
            raise TypeError("tap() needs exactly one of label= or data=")
        if forge and data is None:
            raise TypeError("tap(forge=True) needs data=, the callback_data to forge")
        target = self._tap_target(message, self.first_name)
        if target.chat["id"] != self.id and target.chat["type"] == "private":
            raise AssertionError(
                f"message #{target.message_id} is in the private chat of user {target.chat['id']}; "
                f"{self.first_name} cannot see it"
            )
        if target.deleted:
            raise AssertionError(f"message #{target.message_id} was deleted; its buttons cannot be tapped")
        if self.server.is_deactivated(self.id):
            raise AssertionError(f"{self.first_name}'s account was deleted (deactivate); they cannot tap anything")
        callback_data = data if forge and data is not None else _callback_data_of(target, label, data)
        return self.server.push_callback_query(self.api, target, callback_data)

    def block_bot(self) -> None:
        """Block the bot: from now on its sends to this chat get 403."""
        self.server.block(self.id)

    def unblock_bot(self) -> None:
        self.server.unblock(self.id)

    def _current_reply_keyboard_buttons(self) -> list[list[Any]]:
        for message in reversed(self.chat.bot_log):
            if message.reply_markup and "keyboard" in message.reply_markup:
                rows: list[list[Any]] = message.reply_markup["keyboard"]
                return rows
        return []


def _callback_data_of(target: ChatMessage, label: str | None, data: str | None) -> str:
    """The callback_data of the button on ``target`` with that label (or data); fails the test if none."""
    wanted = ("text", label) if label is not None else ("callback_data", data)
    button = next((b for row in target.inline_keyboard for b in row if b.get(wanted[0]) == wanted[1]), None)
    if button is None:
        available = [f"{b.label} ({b.data})" if data is not None else b.label for row in target.buttons for b in row]
        raise AssertionError(
            f"No button with {'label' if label is not None else 'callback_data'} {wanted[1]!r} "
            f"on message #{target.message_id} {preview(target.text)!r}. Available buttons: {available}"
            + (" (tap(..., forge=True) sends callback_data that is on no button)" if data is not None else "")
        )
    if "callback_data" not in button:
        kind = next(k for k in button if k != "text")
        raise AssertionError(f"Button {button['text']!r} is a {kind} button; tapping it sends nothing to the bot")
    return str(button["callback_data"])
