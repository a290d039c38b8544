"""Chats as the fake stores them, and the reading/waiting side shared by users and groups.

The server records every message of a chat in a :class:`Chat` (private chat or group alike) and
fires its :class:`Signal` on every change. :class:`ChatReader` is the test's window onto one
chat: ``messages``, ``next_message``, ``wait_for``, ``wait_idle``... It is the base of both
:class:`~tests.fakebotapi.user.FakeUser` (reading their private chat) and
:class:`~tests.fakebotapi.group.FakeGroup` (reading a group), so the two wait the same way.
Waiting is event-driven: a test that waits for the bot's reply wakes up the moment the reply
lands and never sleeps in a polling loop.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from tests.fakebotapi.server import FakeBotAPI, RecordedCall

__all__ = [
    "BOT_PRESENT_STATUSES",
    "GROUP_CHAT_TYPES",
    "SERVICE_FIELDS",
    "Button",
    "CallbackAnswer",
    "Chat",
    "ChatMessage",
    "ChatReader",
    "Document",
    "ForumTopic",
    "MessageVersion",
    "Photo",
    "Placement",
    "PrivateChat",
    "Signal",
    "ThreadError",
    "new_file_ids",
]

GROUP_CHAT_TYPES = frozenset({"group", "supergroup"})
"""Chat types whose messages any participant (member or not, see FakeUser.tap) may tap."""

BOT_PRESENT_STATUSES = frozenset({"creator", "administrator", "member", "restricted"})
"""ChatMember statuses with which the bot is in a group or channel (and gets its updates)."""

SERVICE_FIELDS = frozenset({"forum_topic_created", "forum_topic_closed", "forum_topic_reopened", "forum_topic_edited"})
"""Message fields that make a message a service message: shown in the chat, but not content."""


class Signal:
    """A broadcast "something changed" edge that plain code can fire and coroutines can await.

    Unlike ``asyncio.Condition`` it needs no lock, so the server can fire it from synchronous
    bookkeeping. Waiters check their predicate first and only then await the *current* event;
    with no ``await`` between the two, a change can never slip through unnoticed.

    The event is made by the first waiter: most chats (a broadcast's thousands of recipients)
    are never waited on, and the server fires on every call, so firing with nobody waiting
    must cost nothing.
    """

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event: asyncio.Event | None = None

    def fire(self) -> None:
        """Wake everyone currently waiting; later waiters wait for the next change."""
        event, self._event = self._event, None
        if event is not None:
            event.set()

    async def wait(self, within: float) -> bool:
        """Wait for the next :meth:`fire`, at most ``within`` seconds. True if it fired."""
        if self._event is None:
            self._event = asyncio.Event()
        event = self._event
        try:
            async with asyncio.timeout(max(within, 0.0)):
                await event.wait()
        except TimeoutError:
            return False
        return True


_file_counter = itertools.count(1)


def new_file_ids(kind: str) -> dict[str, str]:
    """A fresh ``file_id``/``file_unique_id`` pair, unique within the test process."""
    n = next(_file_counter)
    return {"file_id": f"Fake{kind}FileId{n:06d}", "file_unique_id": f"Fake{kind}{n:06d}"}


def preview(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Button(NamedTuple):
    """An inline keyboard button as a user sees it: compare with plain tuples in assertions."""

    label: str
    data: str | None  # callback_data; None for url/web_app/... buttons


@dataclass(frozen=True, slots=True)
class Document:
    """A file the bot uploaded with sendDocument, kept byte for byte for the test to inspect."""

    file_name: str
    content: bytes = field(repr=False)
    mime_type: str
    file_id: str
    file_unique_id: str

    @classmethod
    def upload(cls, file_name: str, content: bytes, mime_type: str) -> Document:
        """A newly uploaded file, with fresh file ids as Telegram assigns them."""
        return cls(file_name, content, mime_type, **new_file_ids("Document"))

    @property
    def file_size(self) -> int:
        return len(self.content)

    def to_api(self) -> dict[str, Any]:
        """The Bot API ``Document`` object."""
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_name": self.file_name,
            "mime_type": self.mime_type,
            "file_size": self.file_size,
        }


PHOTO_THUMBNAIL_SIDES = (90, 320, 800, 1280, 2560)
"""The longest side of each size Telegram keeps of a photo (``s``, ``m``, ``x``, ``y``, ``w``)."""


@dataclass(frozen=True, slots=True)
class Photo:
    """A photo as Telegram keeps it: one picture in several sizes, smallest first, each with its own file_id.

    The Bot API shows it as the Message's ``photo`` array of PhotoSize; any size's ``file_id``
    sends the photo again (sendPhoto), which is how a bot re-sends a photo someone sent it.
    ``content`` is what the bot uploaded with sendPhoto, byte for byte; photos people send
    (``FakeUser.send_photo``) have no bytes here, only sizes.
    """

    sizes: tuple[dict[str, Any], ...]
    """The Bot API ``PhotoSize`` objects, smallest first."""
    content: bytes = field(default=b"", repr=False)

    @classmethod
    def upload(cls, content: bytes, width: int, height: int) -> Photo:
        """A newly uploaded picture of ``width`` x ``height``, with the smaller copies Telegram makes of it.

        A copy is made for each of :data:`PHOTO_THUMBNAIL_SIDES` below the picture's longest
        side; the picture itself is kept as the largest size unless it exceeds the biggest one.
        """
        longest = max(width, height)
        sides = [side for side in PHOTO_THUMBNAIL_SIDES if side < longest]
        if longest <= PHOTO_THUMBNAIL_SIDES[-1]:
            sides.append(longest)
        area = width * height
        dimensions = []
        for side in sides:
            w, h = max(1, round(width * side / longest)), max(1, round(height * side / longest))
            dimensions.append((w, h, max(1, round(len(content) * w * h / area))))
        return cls.of_sizes(*dimensions, content=content)

    @classmethod
    def of_sizes(cls, *dimensions: tuple[int, int, int], content: bytes = b"") -> Photo:
        """A photo with the given ``(width, height, file_size)`` sizes, smallest first, and fresh file ids."""
        if not dimensions:
            raise ValueError("a photo needs at least one size")
        sizes = tuple(
            {**new_file_ids("Photo"), "width": w, "height": h, "file_size": size} for w, h, size in dimensions
        )
        return cls(sizes, content)

    @property
    def largest(self) -> dict[str, Any]:
        """The biggest PhotoSize, the one clients show (``message.photo[-1]`` in aiogram)."""
        return self.sizes[-1]

    @property
    def file_id(self) -> str:
        """The largest size's file_id."""
        return str(self.largest["file_id"])

    @property
    def file_ids(self) -> tuple[str, ...]:
        """Every size's file_id; each one sends this photo again."""
        return tuple(str(size["file_id"]) for size in self.sizes)

    @property
    def width(self) -> int:
        return int(self.largest["width"])

    @property
    def height(self) -> int:
        return int(self.largest["height"])

    def to_api(self) -> list[dict[str, Any]]:
        """The Message's ``photo`` field: an array of ``PhotoSize``."""
        return [dict(size) for size in self.sizes]


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
class ForumTopic:
    """A topic of a forum supergroup, as the fake keeps it (createForumTopic and friends).

    Its ``thread_id`` is the message_id of the ``forum_topic_created`` service message that
    opened it, exactly as in Telegram, so thread ids and message ids share one sequence.
    """

    thread_id: int
    name: str
    icon_color: int
    icon_custom_emoji_id: str | None = None
    closed: bool = False
    deleted: bool = False

    def to_api(self) -> dict[str, Any]:
        """The Bot API ``ForumTopic`` object."""
        data: dict[str, Any] = {"message_thread_id": self.thread_id, "name": self.name, "icon_color": self.icon_color}
        if self.icon_custom_emoji_id:
            data["icon_custom_emoji_id"] = self.icon_custom_emoji_id
        return data

    def __repr__(self) -> str:
        state = " closed" if self.closed else ""
        state += " deleted" if self.deleted else ""
        return f"<ForumTopic #{self.thread_id} {self.name!r}{state}>"


class ThreadError(Exception):
    """A message cannot go where it was aimed; ``str()`` is Telegram's detail ("TOPIC_CLOSED")."""


@dataclass(frozen=True, slots=True)
class Placement:
    """Where in a chat a new message lands: its thread, whether that is a forum topic, what it replies to."""

    thread_id: int | None = None
    is_topic_message: bool = False
    reply_to: ChatMessage | None = None


@dataclass(eq=False)
class ChatMessage:
    """One message in a chat (private or group), from either side, as Telegram stores it.

    The object is updated in place when the bot edits the message, so a reference kept by a test
    always shows the current state, while :attr:`history` keeps every earlier version.
    """

    message_id: int
    date: int
    chat: dict[str, Any]
    """The Bot API ``Chat`` object of the chat the message is in."""
    sender: dict[str, Any]
    from_bot: bool
    content: dict[str, Any]
    """Telegram Message fields that carry content: ``text``/``entities``, ``photo``, ``caption``..."""
    reply_markup: dict[str, Any] | None = None
    """The markup as the bot sent it; may be a reply keyboard, which Telegram does not echo back."""
    source_text: str | None = None
    """The text (or caption) exactly as the bot sent it, before ``parse_mode`` was applied."""
    edit_date: int | None = None
    history: list[MessageVersion] = field(default_factory=list)
    deleted: bool = False
    document: Document | None = None
    """The file, bytes included, of messages sent with sendDocument or FakeUser.send_document (or copies)."""
    photo: Photo | None = None
    """The photo of messages sent with sendPhoto or FakeUser.send_photo (or copies): sizes, and bytes if uploaded."""
    thread_id: int | None = None
    """Telegram's ``message_thread_id``: the forum topic, or in a supergroup the root of a reply chain."""
    is_topic_message: bool = False
    """Whether :attr:`thread_id` is a forum topic (Telegram's ``is_topic_message``)."""
    reply_to: ChatMessage | None = field(default=None, repr=False)
    """The message this one replies to; in a topic, the topic's creation message unless a real reply."""
    sent_at: float = field(default_factory=time.monotonic, repr=False)
    """``time.monotonic()`` when the message landed in the chat (for the bot's: when it was delivered)."""
    sender_chat: dict[str, Any] | None = field(default=None, repr=False)
    """The chat a message was sent on behalf of: the channel itself for channel posts, which have no ``from``."""
    protected: bool = False
    """Sent with ``protect_content``: Telegram apps let nobody forward or save it."""

    # -- reading -------------------------------------------------------------------------------

    @property
    def text(self) -> str:
        """The visible text (or caption) after entity parsing; empty for media without caption."""
        return str(self.content.get("text", self.content.get("caption", "")))

    @property
    def caption(self) -> str | None:
        """A photo's or document's caption after entity parsing, as Telegram shows it; None without one.

        :attr:`text` gives the same string for media (so readers need not care), while
        ``caption`` tells a caption apart from a text message, like the Bot API's fields do.
        """
        caption = self.content.get("caption")
        return None if caption is None else str(caption)

    @property
    def entities(self) -> list[dict[str, Any]]:
        return list(self.content.get("entities", self.content.get("caption_entities", [])))

    @property
    def edited(self) -> bool:
        return bool(self.history)

    @property
    def topic_id(self) -> int | None:
        """The forum topic the message is in (its thread id), or None outside topics.

        Use this, not :attr:`thread_id`, to ask "which topic": a reply in a supergroup's General
        area has a thread id too, which is not a topic (exactly the trap a bot must avoid).
        """
        return self.thread_id if self.is_topic_message else None

    @property
    def is_service(self) -> bool:
        """A service message (``forum_topic_created``...), which readers do not list as bot messages."""
        return not SERVICE_FIELDS.isdisjoint(self.content)

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

    def to_api(self, *, with_reply: bool = True) -> dict[str, Any]:
        """The message as a Bot API ``Message`` object, as it is *now*.

        ``reply_to_message`` is included unless the replied message was deleted; as in
        Telegram, that nested message carries no ``reply_to_message`` of its own.
        """
        data: dict[str, Any] = {"message_id": self.message_id}
        if self.thread_id is not None:
            data["message_thread_id"] = self.thread_id
        if self.sender:  # channel posts have none
            data["from"] = dict(self.sender)
        if self.sender_chat is not None:
            data["sender_chat"] = dict(self.sender_chat)
        data.update({"chat": dict(self.chat), "date": self.date})
        if self.is_topic_message:
            data["is_topic_message"] = True
        if with_reply and self.reply_to is not None and not self.reply_to.deleted:
            data["reply_to_message"] = self.reply_to.to_api(with_reply=False)
        data.update(_json_copy(self.content))
        if self.edit_date is not None:
            data["edit_date"] = self.edit_date
        if self.inline_keyboard:  # Telegram only ever echoes inline keyboards
            data["reply_markup"] = {"inline_keyboard": _json_copy(self.inline_keyboard)}
        return data

    def __repr__(self) -> str:
        who = "bot" if self.from_bot else self.sender.get("first_name") or (self.sender_chat or {}).get("title", "user")
        flags = " edited" if self.edited else ""
        flags += " deleted" if self.deleted else ""
        keyboard = f" buttons={self.labels}" if self.labels else ""
        attachment = f" document={self.document.file_name!r}" if self.document else ""
        attachment += f" photo={self.photo.width}x{self.photo.height}" if self.photo else ""
        where = f" topic={self.topic_id}" if self.topic_id is not None else ""
        service = next((f" {name}" for name in SERVICE_FIELDS if name in self.content), "")
        return (
            f"<ChatMessage #{self.message_id}{where} {who}{flags}{service} "
            f"{preview(self.text)!r}{keyboard}{attachment}>"
        )

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
    """What the bot answered (answerCallbackQuery) to one button tap."""

    query_id: str
    text: str | None
    show_alert: bool
    url: str | None
    user_id: int | None = None
    """Who tapped, i.e. who sees the answer; in a group this tells members apart."""


class Chat:
    """Server-side state of one chat, private or group: the message log and what the bot did in it.

    The server mutates it and reports activity (:meth:`delivered`, :meth:`bot_called`); readers
    wait on :attr:`changed`.
    """

    def __init__(self, api: dict[str, Any]) -> None:
        self.api = api
        """The Bot API ``Chat`` object (``id``, ``type``, then ``title`` or the user's names)."""
        self.id: int = api["id"]
        self.instance = str(-(10**18) - self.id)  # CallbackQuery.chat_instance: stable per chat
        self.log: list[ChatMessage] = []
        self.bot_log: list[ChatMessage] = []
        self._by_id: dict[int, ChatMessage] = {}
        self._message_ids = itertools.count(1)
        self.blocked = False
        self.chat_actions: list[str] = []
        self.callback_answers: list[CallbackAnswer] = []
        """Answers to taps on this chat's messages, whoever tapped (see CallbackAnswer.user_id)."""
        self.pending_update_ids: set[int] = set()
        """Updates from this chat that the bot has not fetched yet."""
        self.last_activity = 0.0
        """``time.monotonic()`` of the last bot call about this chat or delivery of its updates."""
        self.awaiting_reaction_since: float | None = None
        """When the bot fetched an update from this chat it has not reacted to with any call yet."""
        self.topics: dict[int, ForumTopic] = {}
        """Forum topics by thread id, deleted ones included (their ids stay taken)."""
        self.bot_status = "member"
        """The bot's ChatMember status in a group or channel: ``member``, ``administrator``, ``left``, ``kicked``."""
        self.changed = Signal()

    @property
    def type(self) -> str:
        """``"private"``, ``"group"`` or ``"supergroup"``."""
        return str(self.api["type"])

    @property
    def is_group(self) -> bool:
        return self.type in GROUP_CHAT_TYPES

    @property
    def bot_present(self) -> bool:
        """Whether the bot is in this chat; always true of a private chat (blocking is a separate matter)."""
        return self.type == "private" or self.bot_status in BOT_PRESENT_STATUSES

    @property
    def is_forum(self) -> bool:
        """A supergroup with topics enabled (``is_forum`` in its Chat object)."""
        return bool(self.api.get("is_forum"))

    def next_message_id(self) -> int:
        """Message ids are per chat and shared by everyone in it, bot included, as in Telegram."""
        return next(self._message_ids)

    def add(self, message: ChatMessage) -> None:
        self.log.append(message)
        self._by_id[message.message_id] = message
        if message.from_bot and not message.is_service:
            self.bot_log.append(message)
        self.changed.fire()

    def post(
        self,
        sender: Mapping[str, Any],
        content: Mapping[str, Any],
        *,
        placement: Placement | None = None,
        document: Document | None = None,
        photo: Photo | None = None,
        sender_chat: Mapping[str, Any] | None = None,
    ) -> ChatMessage:
        """Record a message a person (or a channel: ``sender_chat``) sends here; the caller enqueues the update."""
        where = placement or Placement()
        message = ChatMessage(
            message_id=self.next_message_id(),
            date=int(time.time()),
            chat=self.api,
            sender=dict(sender),
            from_bot=False,
            content=dict(content),
            document=document,
            photo=photo,
            thread_id=where.thread_id,
            is_topic_message=where.is_topic_message,
            reply_to=where.reply_to,
            sender_chat=dict(sender_chat) if sender_chat is not None else None,
        )
        self.add(message)
        return message

    def place(self, thread_id: int | None = None, reply_to: ChatMessage | None = None) -> Placement:
        """Where a new message aimed at ``thread_id`` and/or replying to ``reply_to`` lands, as Telegram decides.

        Only a live forum topic is a valid ``thread_id`` (anything else is "message thread not
        found", a closed topic "TOPIC_CLOSED": raised as :class:`ThreadError`). A message in a
        topic replies to the topic's creation message unless it replies to something else. A
        reply without a thread id follows the replied message into its topic; in a supergroup a
        reply outside topics gets the reply chain's root as thread id, without being a topic
        message. ``thread_id=0`` means none, as in Telegram.
        """
        if thread_id:
            topic = self.topics.get(thread_id)
            if topic is None or topic.deleted:
                raise ThreadError("message thread not found")
            if topic.closed:
                raise ThreadError("TOPIC_CLOSED")
            return Placement(thread_id, True, reply_to or self._by_id.get(thread_id))
        if reply_to is None:
            return Placement()
        if reply_to.is_topic_message and reply_to.thread_id is not None:
            return self.place(reply_to.thread_id, reply_to)
        if self.type == "supergroup":
            return Placement(reply_to.thread_id or reply_to.message_id, False, reply_to)
        return Placement(reply_to=reply_to)

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


def _json_copy(value: Any) -> Any:
    """A deep copy of JSON-shaped data (dicts, lists, scalars), several times cheaper than ``copy.deepcopy``."""
    if isinstance(value, dict):
        return {key: _json_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_copy(item) for item in value]
    return value


PrivateChat = Chat
"""The former name of :class:`Chat`, from when the fake only had private chats."""


class ChatReader:
    """What a test sees of one chat: the bot's messages in it, and waiting for more.

    Subclasses set :attr:`server` and :attr:`chat` and name the chat (:attr:`chat_name`) for
    error messages. Each reader keeps a read cursor over the bot's messages, so
    ``next_message`` returns every message exactly once, in order, however fast the bot bursts.
    """

    server: FakeBotAPI
    chat: Chat
    _cursor: int = 0  # index into _feed() of the first message not yet consumed

    @property
    def chat_name(self) -> str:
        """How error messages refer to this chat, e.g. ``the chat with Ana``."""
        raise NotImplementedError

    def _feed(self) -> list[ChatMessage]:
        """The bot messages this reader follows, in order; it only ever grows (subclasses may narrow it)."""
        return self.chat.bot_log

    # -- what the test sees ----------------------------------------------------------------------

    @property
    def messages(self) -> list[ChatMessage]:
        """Every bot message in this chat that still exists, in the order it was sent."""
        return [m for m in self._feed() if not m.deleted]

    @property
    def last_message(self) -> ChatMessage:
        """The latest bot message still in the chat; fails the test if the bot sent nothing."""
        messages = self.messages
        if not messages:
            raise AssertionError(f"the bot has not sent anything (still visible) to {self.chat_name}")
        return messages[-1]

    @property
    def unread(self) -> list[ChatMessage]:
        """Bot messages not yet returned by ``next_message``/``wait_for``/``drain``."""
        return self._feed()[self._cursor :]

    @property
    def callback_answers(self) -> list[CallbackAnswer]:
        """The bot's answers to taps on this chat's messages, oldest first."""
        return self.chat.callback_answers

    @property
    def chat_actions(self) -> list[str]:
        """Every sendChatAction the bot sent here (``"typing"``...), oldest first."""
        return self.chat.chat_actions

    def buttons(self, message: ChatMessage | None = None) -> list[str]:
        """Inline button labels of ``message`` (default: the latest message with a keyboard)."""
        target = message or self._latest_with_keyboard()
        return target.labels if target else []

    def drain(self) -> list[ChatMessage]:
        """Consume and return every unread bot message."""
        feed = self._feed()
        unread = feed[self._cursor :]
        self._cursor = len(feed)
        return unread

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
            feed = self._feed()
            while self._cursor < len(feed):
                message = feed[self._cursor]
                self._cursor += 1
                if predicate is None or predicate(message):
                    return message
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                what = "a new bot message" if predicate is None else "a bot message matching the predicate"
                raise TimeoutError(f"Waited {timeout:.1f}s in {self.chat_name} for {what}.\n{self.describe()}")
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
                raise TimeoutError(f"Waited {timeout:.1f}s in {self.chat_name} for a condition.\n{self.describe()}")
            await self.chat.changed.wait(remaining)

    async def wait_idle(
        self,
        quiet: float = 0.3,
        timeout: float = 10.0,  # noqa: ASYNC109
        *,
        grace: float = 2.0,
    ) -> list[ChatMessage]:
        """Wait until the bot has dealt with this chat's updates and then stayed silent here ``quiet`` s.

        "Dealt with" means: every update from this chat was fetched, and the bot made at least
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
                    f"Gave up after {timeout:.1f}s: {self.chat_name} never went quiet.\n" + self.describe()
                )
            await self.chat.changed.wait(wake_at - now)

    # -- diagnostics -------------------------------------------------------------------------------

    def describe(self) -> str:
        """A short report of the chat, used in every timeout and assertion message."""
        name = self.chat_name
        lines = [f"{name[:1].upper()}{name[1:]} (id {self.chat.id}):"]
        bot_messages = self.messages
        if bot_messages:
            last = bot_messages[-1]
            buttons = f" buttons={last.labels}" if last.labels else ""
            lines.append(f"  last bot message #{last.message_id}: {preview(last.text)!r}{buttons}")
        else:
            lines.append("  the bot has not sent anything to this chat")
        lines.append(f"  unread bot messages: {len(self.unread)}")
        if self.chat.pending_update_ids:
            lines.append(
                f"  updates from this chat not yet fetched by the bot: {len(self.chat.pending_update_ids)}"
                " (is the bot polling this server?)"
            )
        recent = self._recent_calls(5)
        if recent:
            lines.append("  recent bot API calls for this chat:")
            lines.extend(f"    {call.summary()}" for call in recent)
        return "\n".join(lines)

    def _recent_calls(self, limit: int) -> list[RecordedCall]:
        recent = [call for call in reversed(self.server.calls) if call.chat_id == self.chat.id][:limit]
        return recent[::-1]

    def _latest_with_keyboard(self) -> ChatMessage | None:
        return next((m for m in reversed(self._feed()) if not m.deleted and m.inline_keyboard), None)

    def _tap_target(self, message: ChatMessage | None, who: str) -> ChatMessage:
        """``message``, or this chat's latest bot message with an inline keyboard for ``who`` to tap."""
        target = message or self._latest_with_keyboard()
        if target is None:
            raise AssertionError(
                f"{who} has no message with an inline keyboard to tap in {self.chat_name}.\n{self.describe()}"
            )
        return target
