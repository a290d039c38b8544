"""Scripted users: the human side of a private chat with the bot under test.

A :class:`FakeUser` types and taps (which enqueues updates on the fake server) and reads what
the bot sent back (which the server records in the user's :class:`PrivateChat`). Waiting is
event-driven: every change to a chat fires a :class:`Signal`, so a test that waits for the
bot's reply wakes up the moment the reply lands and never sleeps in a polling loop.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from tests.fakebotapi.server import FakeBotAPI, RecordedCall

__all__ = ["Button", "CallbackAnswer", "ChatMessage", "FakeUser", "MessageVersion", "PrivateChat", "Signal"]


class Signal:
    """A broadcast "something changed" edge that plain code can fire and coroutines can await.

    Unlike ``asyncio.Condition`` it needs no lock, so the server can fire it from synchronous
    bookkeeping. Waiters check their predicate first and only then await the *current* event;
    with no ``await`` between the two, a change can never slip through unnoticed.
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def fire(self) -> None:
        """Wake everyone currently waiting; later waiters wait for the next change."""
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, within: float) -> bool:
        """Wait for the next :meth:`fire`, at most ``within`` seconds. True if it fired."""
        event = self._event
        try:
            async with asyncio.timeout(max(within, 0.0)):
                await event.wait()
        except TimeoutError:
            return False
        return True


class Button(NamedTuple):
    """An inline keyboard button as a user sees it: compare with plain tuples in assertions."""

    label: str
    data: str | None  # callback_data; None for url/web_app/... buttons


@dataclass(frozen=True, slots=True)
class MessageVersion:
    """A superseded state of an edited message."""

    content: dict[str, Any]
    reply_markup: dict[str, Any] | None
    edit_date: int | None

    @property
    def text(self) -> str:
        return str(self.content.get("text", self.content.get("caption", "")))


@dataclass(eq=False)
class ChatMessage:
    """One message in a private chat, from either side, as Telegram stores it.

    The object is updated in place when the bot edits the message, so a reference kept by a test
    always shows the current state, while :attr:`history` keeps every earlier version.
    """

    message_id: int
    date: int
    chat: dict[str, Any]
    sender: dict[str, Any]
    from_bot: bool
    content: dict[str, Any]
    """Telegram Message fields that carry content: ``text``/``entities``, ``photo``, ``caption``..."""
    reply_markup: dict[str, Any] | None = None
    """The markup as the bot sent it; may be a reply keyboard, which Telegram does not echo back."""
    source_text: str | None = None
    """The text exactly as the bot sent it, before ``parse_mode`` was applied (handy for HTML snapshots)."""
    edit_date: int | None = None
    history: list[MessageVersion] = field(default_factory=list)
    deleted: bool = False

    # -- reading -------------------------------------------------------------------------------

    @property
    def text(self) -> str:
        """The visible text (or caption) after entity parsing; empty for media without caption."""
        return str(self.content.get("text", self.content.get("caption", "")))

    @property
    def entities(self) -> list[dict[str, Any]]:
        return list(self.content.get("entities", self.content.get("caption_entities", [])))

    @property
    def edited(self) -> bool:
        return bool(self.history)

    @property
    def inline_keyboard(self) -> list[list[dict[str, Any]]]:
        """Raw inline keyboard rows, or ``[]`` when the message has none."""
        if self.reply_markup is None:
            return []
        rows = self.reply_markup.get("inline_keyboard")
        return rows if isinstance(rows, list) else []

    @property
    def buttons(self) -> list[list[Button]]:
        """Inline keyboard as rows of ``(label, callback_data)``."""
        return [[Button(b["text"], b.get("callback_data")) for b in row] for row in self.inline_keyboard]

    @property
    def labels(self) -> list[str]:
        """Inline button labels, flattened in reading order."""
        return [button.label for row in self.buttons for button in row]

    @property
    def reply_keyboard(self) -> list[list[str]] | None:
        """Labels of a ReplyKeyboardMarkup sent with this message, if any."""
        if self.reply_markup is None or "keyboard" not in self.reply_markup:
            return None
        return [[b["text"] if isinstance(b, dict) else str(b) for b in row] for row in self.reply_markup["keyboard"]]

    def to_api(self) -> dict[str, Any]:
        """The message as a Bot API ``Message`` object, as it is *now*."""
        data: dict[str, Any] = {
            "message_id": self.message_id,
            "from": dict(self.sender),
            "chat": dict(self.chat),
            "date": self.date,
            **copy.deepcopy(self.content),
        }
        if self.edit_date is not None:
            data["edit_date"] = self.edit_date
        if self.inline_keyboard:  # Telegram only ever echoes inline keyboards
            data["reply_markup"] = {"inline_keyboard": copy.deepcopy(self.inline_keyboard)}
        return data

    def __repr__(self) -> str:
        who = "bot" if self.from_bot else "user"
        flags = " edited" if self.edited else ""
        flags += " deleted" if self.deleted else ""
        keyboard = f" buttons={self.labels}" if self.labels else ""
        return f"<ChatMessage #{self.message_id} {who}{flags} {_preview(self.text)!r}{keyboard}>"

    # -- mutation (server side) ----------------------------------------------------------------

    def apply_edit(self, content: dict[str, Any], reply_markup: dict[str, Any] | None, source_text: str | None) -> None:
        """Replace content and keyboard, keeping the previous state in :attr:`history`."""
        self.history.append(MessageVersion(self.content, self.reply_markup, self.edit_date))
        self.content = content
        self.reply_markup = reply_markup
        if source_text is not None:
            self.source_text = source_text
        self.edit_date = int(time.time())


@dataclass(frozen=True, slots=True)
class CallbackAnswer:
    """What the bot answered to one of the user's button taps (answerCallbackQuery)."""

    query_id: str
    text: str | None
    show_alert: bool
    url: str | None


class PrivateChat:
    """Server-side state of one private chat: the message log and what the bot did in it.

    The server mutates it and reports activity (:meth:`delivered`, :meth:`bot_called`); users
    read it and wait on :attr:`changed`.
    """

    def __init__(self, api: dict[str, Any]) -> None:
        self.api = api
        self.id: int = api["id"]
        self.instance = str(-(10**18) - self.id)  # CallbackQuery.chat_instance: stable per chat
        self.log: list[ChatMessage] = []
        self.bot_log: list[ChatMessage] = []
        self._by_id: dict[int, ChatMessage] = {}
        self._message_ids = itertools.count(1)
        self.blocked = False
        self.chat_actions: list[str] = []
        self.callback_answers: list[CallbackAnswer] = []
        self.pending_update_ids: set[int] = set()
        """Updates from this chat that the bot has not fetched yet."""
        self.last_activity = 0.0
        """``time.monotonic()`` of the last bot call about this chat or delivery of its updates."""
        self.awaiting_reaction_since: float | None = None
        """When the bot fetched an update from this chat it has not reacted to with any call yet."""
        self.changed = Signal()

    def next_message_id(self) -> int:
        """Message ids are per chat and shared by both sides, as in Telegram private chats."""
        return next(self._message_ids)

    def add(self, message: ChatMessage) -> None:
        self.log.append(message)
        self._by_id[message.message_id] = message
        if message.from_bot:
            self.bot_log.append(message)
        self.changed.fire()

    def get(self, message_id: int) -> ChatMessage | None:
        """An existing, not deleted message of this chat."""
        message = self._by_id.get(message_id)
        return None if message is None or message.deleted else message

    def delivered(self, update_id: int, *, expect_reaction: bool = True) -> None:
        """The bot fetched one of this chat's updates (or it was dropped, ``expect_reaction=False``)."""
        self.pending_update_ids.discard(update_id)
        self.last_activity = time.monotonic()
        if expect_reaction and self.awaiting_reaction_since is None:
            self.awaiting_reaction_since = self.last_activity
        self.changed.fire()

    def bot_called(self) -> None:
        """The bot made an API call about this chat (successful or not)."""
        self.last_activity = time.monotonic()
        self.awaiting_reaction_since = None
        self.changed.fire()


_COMMAND_RE = re.compile(r"/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,64})?")
_file_counter = itertools.count(1)


def _file_ids(kind: str) -> dict[str, str]:
    n = next(_file_counter)
    return {"file_id": f"Fake{kind}FileId{n:06d}", "file_unique_id": f"Fake{kind}{n:06d}"}


def _preview(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class FakeUser:
    """A scripted Telegram user in a private chat with the bot (chat id == user id).

    Acting (``send``, ``tap``...) enqueues updates for the bot to fetch via getUpdates. Reading
    (``messages``, ``next_message``...) looks at what the bot sent to this chat. Each user keeps a
    read cursor over the bot's messages, so ``next_message`` returns every message exactly once,
    in order, however fast the bot bursts.
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
    ) -> None:
        self.server = server
        self.id = user_id
        self.first_name = first_name
        self.phone_number = phone_number or f"+1555{user_id % 10**7:07d}"
        self.api: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
        chat: dict[str, Any] = {"id": user_id, "type": "private", "first_name": first_name}
        for key, value in (("last_name", last_name), ("username", username)):
            if value:
                self.api[key] = chat[key] = value
        if language_code:
            self.api["language_code"] = language_code
        self.chat = PrivateChat(chat)
        self._cursor = 0  # index into chat.bot_log of the first message not yet consumed

    def __repr__(self) -> str:
        return f"<FakeUser {self.first_name} id={self.id}>"

    # -- what the user sees ----------------------------------------------------------------------

    @property
    def messages(self) -> list[ChatMessage]:
        """Every bot message in this chat that still exists, in the order it was sent."""
        return [m for m in self.chat.bot_log if not m.deleted]

    @property
    def last_message(self) -> ChatMessage:
        """The latest bot message still in the chat; fails the test if the bot sent nothing."""
        messages = self.messages
        if not messages:
            raise AssertionError(f"the bot has not sent anything (still visible) to {self.first_name}")
        return messages[-1]

    @property
    def unread(self) -> list[ChatMessage]:
        """Bot messages not yet returned by ``next_message``/``wait_for``/``drain``."""
        return self.chat.bot_log[self._cursor :]

    @property
    def callback_answers(self) -> list[CallbackAnswer]:
        return self.chat.callback_answers

    @property
    def chat_actions(self) -> list[str]:
        """Every sendChatAction the bot sent here (``"typing"``...), oldest first."""
        return self.chat.chat_actions

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

    def buttons(self, message: ChatMessage | None = None) -> list[str]:
        """Inline button labels of ``message`` (default: the latest message with a keyboard)."""
        target = message or self._latest_with_keyboard()
        return target.labels if target else []

    def drain(self) -> list[ChatMessage]:
        """Consume and return every unread bot message."""
        unread = self.unread
        self._cursor = len(self.chat.bot_log)
        return unread

    # -- what the user does ------------------------------------------------------------------------

    async def send(self, text: str) -> int:
        """Type ``text``; a leading ``/command`` gets its bot_command entity, as Telegram adds it.

        Returns the update_id of the enqueued update.
        """
        content: dict[str, Any] = {"text": text}
        if match := _COMMAND_RE.match(text):
            content["entities"] = [{"type": "bot_command", "offset": 0, "length": len(match.group())}]
        return await self.send_content(content)

    async def send_sticker(self, emoji: str = "👍") -> int:
        sticker = {
            **_file_ids("Sticker"),
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": emoji,
            "set_name": "PuenteFakeStickers",
            "file_size": 24_576,
        }
        return await self.send_content({"sticker": sticker})

    async def send_photo(self, caption: str | None = None) -> int:
        sizes = [(90, 68, 1_342), (320, 240, 18_221), (1280, 960, 141_930)]
        photo = [{**_file_ids("Photo"), "width": w, "height": h, "file_size": size} for w, h, size in sizes]
        content: dict[str, Any] = {"photo": photo}
        if caption:
            content["caption"] = caption
        return await self.send_content(content)

    async def send_voice(self, duration: int = 3) -> int:
        voice = {
            **_file_ids("Voice"),
            "duration": duration,
            "mime_type": "audio/ogg",
            "file_size": 6_000 * duration,
        }
        return await self.send_content({"voice": voice})

    async def send_contact(self) -> int:
        """Share the user's own phone number (what a ``request_contact`` button does)."""
        contact = {"phone_number": self.phone_number, "first_name": self.first_name, "user_id": self.id}
        return await self.send_content({"contact": contact})

    async def send_content(self, content: Mapping[str, Any]) -> int:
        """Send a message with arbitrary Message content fields; the escape hatch for other media."""
        message = ChatMessage(
            message_id=self.chat.next_message_id(),
            date=int(time.time()),
            chat=self.chat.api,
            sender=self.api,
            from_bot=False,
            content=dict(content),
        )
        self.chat.add(message)
        return self.server.push_update("message", message.to_api(), chat=self.chat)

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
        self, label: str | None = None, *, data: str | None = None, message: ChatMessage | None = None
    ) -> str:
        """Tap an inline button, found by exact label or by callback_data; returns the query id.

        ``message`` defaults to the latest bot message with an inline keyboard; pass an older one
        to tap a stale keyboard, as real users do.
        """
        if (label is None) == (data is None):
            raise TypeError("tap() needs exactly one of label= or data=")
        target = message or self._latest_with_keyboard()
        if target is None:
            raise AssertionError(f"{self.first_name} has no message with an inline keyboard to tap.\n{self.describe()}")
        if target.chat["id"] != self.id:
            raise AssertionError(f"message #{target.message_id} belongs to chat {target.chat['id']}, not {self.id}")
        if target.deleted:
            raise AssertionError(f"message #{target.message_id} was deleted; its buttons cannot be tapped")
        wanted = ("text", label) if label is not None else ("callback_data", data)
        button = next((b for row in target.inline_keyboard for b in row if b.get(wanted[0]) == wanted[1]), None)
        if button is None:
            available = [
                f"{b.label} ({b.data})" if data is not None else b.label for row in target.buttons for b in row
            ]
            raise AssertionError(
                f"No button with {'label' if label is not None else 'callback_data'} {wanted[1]!r} "
                f"on message #{target.message_id} {_preview(target.text)!r}. Available buttons: {available}"
            )
        if "callback_data" not in button:
            kind = next(k for k in button if k != "text")
            raise AssertionError(f"Button {button['text']!r} is a {kind} button; tapping it sends nothing to the bot")
        query_id = self.server.new_callback_query_id(self.chat)
        query = {
            "id": query_id,
            "from": self.api,
            "message": target.to_api(),
            "chat_instance": self.chat.instance,
            "data": button["callback_data"],
        }
        self.server.push_update("callback_query", query, chat=self.chat)
        return query_id

    def block_bot(self) -> None:
        """Block the bot: from now on its sends to this chat get 403."""
        self.server.block(self.id)

    def unblock_bot(self) -> None:
        self.server.unblock(self.id)

    # -- waiting -----------------------------------------------------------------------------------
    # These take ``timeout=`` (hence the ASYNC109 waivers) instead of leaning on asyncio.timeout(),
    # because on deadline they raise a TimeoutError that describes the chat, which is what makes
    # a failing end-to-end test debuggable.

    async def wait_for(
        self,
        predicate: Callable[[ChatMessage], bool] | None = None,
        *,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> ChatMessage:
        """Return the next unread bot message matching ``predicate``, waiting up to ``timeout`` s.

        Unread messages that do not match are consumed (skipped), so repeated calls walk forward
        through the conversation. Raises TimeoutError describing the chat on deadline.
        """
        deadline = time.monotonic() + timeout
        while True:
            while self._cursor < len(self.chat.bot_log):
                message = self.chat.bot_log[self._cursor]
                self._cursor += 1
                if predicate is None or predicate(message):
                    return message
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                what = "a new bot message" if predicate is None else "a bot message matching the predicate"
                raise TimeoutError(f"{self.first_name} waited {timeout:.1f}s for {what}.\n{self.describe()}")
            await self.chat.changed.wait(remaining)

    async def next_message(self, timeout: float = 10.0) -> ChatMessage:  # noqa: ASYNC109
        """The next unread bot message, in the order the bot sent them."""
        return await self.wait_for(None, timeout=timeout)

    async def wait_until(self, condition: Callable[[], bool], *, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Wait until ``condition()`` holds, re-checking whenever this chat changes.

        For states that are not "a new message", e.g. ``lambda: user.last_message.edited``.
        """
        deadline = time.monotonic() + timeout
        while not condition():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{self.first_name} waited {timeout:.1f}s for a condition.\n{self.describe()}")
            await self.chat.changed.wait(remaining)

    async def wait_idle(
        self,
        quiet: float = 0.3,
        timeout: float = 10.0,  # noqa: ASYNC109
        *,
        grace: float = 2.0,
    ) -> list[ChatMessage]:
        """Wait until the bot has dealt with this user's updates and then stayed silent here ``quiet`` s.

        "Dealt with" means: every update from this user was fetched, and the bot made at least
        one call about this chat after the latest fetch, or ``grace`` seconds passed without one
        (a bot may legitimately ignore a message). This keeps a slow first reaction, e.g. under
        CPU load, from being mistaken for silence. The quiet period counts from the later of
        this call and the bot's last activity in the chat, so a burst of replies is complete when
        it returns. Returns (and consumes) the unread messages, i.e. the burst.
        """
        start = time.monotonic()
        deadline = start + timeout
        while True:
            now = time.monotonic()
            reacting_by = (self.chat.awaiting_reaction_since or -math.inf) + grace
            if self.chat.pending_update_ids:
                wake_at = deadline
            elif now < reacting_by:
                wake_at = min(reacting_by, deadline)
            else:
                idle_at = max(start, self.chat.last_activity) + quiet
                if now >= idle_at:
                    return self.drain()
                wake_at = min(idle_at, deadline)
            if now >= deadline:
                raise TimeoutError(
                    f"The chat with {self.first_name} never went quiet within {timeout:.1f}s.\n" + self.describe()
                )
            await self.chat.changed.wait(wake_at - now)

    # -- diagnostics -------------------------------------------------------------------------------

    def describe(self) -> str:
        """A short report of the chat, used in every timeout and assertion message."""
        lines = [f"Chat with {self.first_name} (id {self.id}):"]
        bot_messages = self.messages
        if bot_messages:
            last = bot_messages[-1]
            buttons = f" buttons={last.labels}" if last.labels else ""
            lines.append(f"  last bot message #{last.message_id}: {_preview(last.text)!r}{buttons}")
        else:
            lines.append("  the bot has not sent anything to this chat")
        lines.append(f"  unread bot messages: {len(self.unread)}")
        if self.chat.pending_update_ids:
            lines.append(
                f"  updates from this user not yet fetched by the bot: {len(self.chat.pending_update_ids)}"
                " (is the bot polling this server?)"
            )
        recent = self._recent_calls(5)
        if recent:
            lines.append("  recent bot API calls for this chat:")
            lines.extend(f"    {call.summary()}" for call in recent)
        return "\n".join(lines)

    def _recent_calls(self, limit: int) -> list[RecordedCall]:
        recent = [call for call in reversed(self.server.calls) if call.chat_id == self.id][:limit]
        return recent[::-1]

    def _latest_with_keyboard(self) -> ChatMessage | None:
        return next((m for m in reversed(self.chat.bot_log) if not m.deleted and m.inline_keyboard), None)

    def _current_reply_keyboard_buttons(self) -> list[list[Any]]:
        for message in reversed(self.chat.bot_log):
            if message.reply_markup and "keyboard" in message.reply_markup:
                rows: list[list[Any]] = message.reply_markup["keyboard"]
                return rows
        return []
