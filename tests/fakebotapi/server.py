"""A fake Telegram Bot API server that the real bot talks to over loopback HTTP.

End-to-end tests run the production bot unchanged (aiogram, its real ``AiohttpSession``) and
only point it at :attr:`FakeBotAPI.base_url`. The fake answers like Telegram does, including
the unhappy paths that matter in production: validation errors worded as Telegram words them,
long-poll conflicts between two bot instances, flood control (paid broadcasts included),
blocked and deleted users and injected outages. Scripted :class:`~tests.fakebotapi.user.FakeUser`
objects play the humans in private chats; :class:`~tests.fakebotapi.group.FakeGroup` and its
members play a group chat, forum topics included; :class:`~tests.fakebotapi.channel.FakeChannel`
a channel. The bot can be added to groups and channels (``my_chat_member`` updates) and can
leave them (leaveChat); it gets no updates from where it is not.

Everything runs on the test's event loop, so state needs no locks; waiting is done on
:class:`~tests.fakebotapi.chat.Signal` edges, never by sleeping in a loop.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import mimetypes
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final, Self, TypeVar
from urllib.parse import parse_qsl

import aiohttp
from aiohttp import web

from tests.fakebotapi.channel import FakeChannel
from tests.fakebotapi.chat import (
    CallbackAnswer,
    Chat,
    ChatMessage,
    Document,
    ForumTopic,
    Photo,
    Placement,
    Signal,
    ThreadError,
)
from tests.fakebotapi.group import FakeGroup
from tests.fakebotapi.schema import (
    CHAT_ACTIONS,
    DEFAULT_UPDATE_TYPES,
    MAX_CAPTION_LENGTH,
    MAX_PHOTO_UPLOAD_BYTES,
    MAX_UPLOAD_BYTES,
    METHODS,
    UPDATE_TYPES,
    BotAPIError,
    CommandScopeKey,
    UploadedFile,
    clean_topic_name,
    coerce_params,
    format_text,
    image_size,
    lookup_method,
    validate_callback_answer_text,
    validate_commands,
    validate_icon_color,
    validate_photo_dimensions,
    validate_reply_markup,
    validate_scope,
)
from tests.fakebotapi.user import FakeUser
from tests.fakebotapi.webhook import GETUPDATES_CONFLICT, POST_TIMEOUT, SECRET_HEADER, Webhook, WebhookConfig

__all__ = [
    "BLOCKED_DESCRIPTION",
    "DEACTIVATED_DESCRIPTION",
    "DEFAULT_TOKEN",
    "FakeBotAPI",
    "InjectedFault",
    "RecordedCall",
    "ServerStats",
]

log = logging.getLogger(__name__)

DEFAULT_TOKEN: Final = "123456:TEST-token"
CONFLICT_DESCRIPTION: Final = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
)
#: Bots can delete a message for 48 hours after it was sent.
DELETABLE_FOR: Final = 48 * 3600
BLOCKED_DESCRIPTION: Final = "Forbidden: bot was blocked by the user"
DEACTIVATED_DESCRIPTION: Final = "Forbidden: user is deactivated"
_FORBIDDEN_BY_CHAT_TYPE: Final = {
    "private": BLOCKED_DESCRIPTION,
    "group": "Forbidden: bot was kicked from the group chat",
    "supergroup": "Forbidden: bot was kicked from the supergroup chat",
    "channel": "Forbidden: bot was kicked from the channel chat",
}
NOT_MODIFIED_DESCRIPTION: Final = (
    "message is not modified: specified new message content and reply markup are exactly the same "
    "as a current content and reply markup of the message"
)
FIRST_USER_ID: Final = 100_000
FIRST_SUPERGROUP_ID: Final = -1_001_000_000_001
"""Supergroup ids are -100 followed by the channel id, as in Telegram; basic groups are plainly negative."""
FIRST_GROUP_ID: Final = -4_000_000_001
_UPLOAD_SLACK_BYTES: Final = 1024 * 1024  # room for the other form fields beside a maximal file
DEFAULT_PAID_PER_SECOND: Final = 1000.0
"""Telegram's limit for sends with ``allow_paid_broadcast`` (0.1 Star each) instead of the free ~30/s."""

_DEFAULT_FAULT_DESCRIPTIONS: Final = {
    400: "Bad Request: injected failure",
    401: "Unauthorized",
    403: BLOCKED_DESCRIPTION,
    404: "Not Found",
    409: CONFLICT_DESCRIPTION,
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}

Handler = Callable[[dict[str, Any]], Awaitable[Any]]
_FileT = TypeVar("_FileT", Document, Photo)


@dataclass(frozen=True, slots=True)
class RecordedCall:
    """One HTTP request the bot made, as the fake understood and answered it."""

    method: str
    """Canonical method name (``sendMessage``), or the raw path segment if the method is unknown."""
    params: dict[str, Any]
    """Decoded known parameters (raw ones if decoding failed); unknown parameters are dropped."""
    status: int
    at: float
    """``time.monotonic()`` when the answer was produced."""
    result: Any = None
    description: str | None = None
    chat_id: int | None = None
    """The scripted user's chat the call was about, also for answerCallbackQuery; None otherwise."""

    @property
    def ok(self) -> bool:
        return self.status == 200

    def summary(self) -> str:
        outcome = "ok" if self.ok else f"{self.status} {self.description}"
        field = "text" if "text" in self.params else "caption"
        text = self.params.get(field)
        detail = f" {field}={text[:60]!r}" if isinstance(text, str) else ""
        return f"{self.method}{detail} -> {outcome}"


@dataclass(slots=True)
class ServerStats:
    """Counters for benchmarks and assertions about the bot's behaviour under pressure."""

    responses_by_status: Counter[int] = field(default_factory=Counter)
    rate_limited: int = 0
    """429s produced by :meth:`FakeBotAPI.set_rate_limits` (not by injected faults)."""
    injected_failures: int = 0
    conflicts: int = 0
    """409s given to superseded long polls."""
    updates_pushed: int = 0
    updates_delivered: int = 0
    updates_unseen: int = 0
    """Updates from groups and channels the bot is not in: Telegram never sends those to it."""
    messages_sent: int = 0
    """Messages the bot delivered, in any chat (service messages such as topic changes excluded)."""
    messages_edited: int = 0
    paid_messages: int = 0
    """Of :attr:`messages_sent`, those sent with ``allow_paid_broadcast`` (each would cost 0.1 Star)."""


@dataclass(slots=True)
class InjectedFault:
    """A pending :meth:`FakeBotAPI.fail_next` rule; ``remaining`` shows whether it has fired."""

    method: str
    status: int
    description: str
    retry_after: int | None
    remaining: int
    chat_id: int | None = None
    after_effect: bool = False

    def matches(self, method: str, chat_id: int | None) -> bool:
        return (
            self.remaining > 0
            and self.method.lower() == method.lower()
            and (self.chat_id is None or self.chat_id == chat_id)
        )

    def error(self) -> BotAPIError:
        return BotAPIError(self.status, self.description, retry_after=self.retry_after)


@dataclass(slots=True)
class SlowAnswer:
    """A pending :meth:`FakeBotAPI.slow_next` rule: the call takes effect at once, its answer comes late."""

    method: str
    seconds: float
    remaining: int
    chat_id: int | None = None


@dataclass(slots=True)
class _TokenBucket:
    """Flood control: ``rate`` sends per second with a burst of ``burst`` (one second's worth unless told)."""

    rate: float
    tokens: float
    updated: float
    burst: float

    @classmethod
    def full(cls, rate: float, now: float, burst: float | None = None) -> _TokenBucket:
        size = max(1.0, rate if burst is None else burst)
        return cls(rate=rate, tokens=size, updated=now, burst=size)

    def seconds_until_available(self, now: float) -> float:
        self.tokens = min(self.burst, self.tokens + max(now - self.updated, 0.0) * self.rate)
        self.updated = max(now, self.updated)
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate

    def take(self) -> None:
        self.tokens -= 1


@dataclass(slots=True)
class _SlidingWindow:
    """Flood control in groups: at most ``limit`` sends in any rolling ``window`` seconds."""

    limit: int
    window: float
    sent: deque[float] = field(default_factory=deque)

    def seconds_until_available(self, now: float) -> float:
        while self.sent and self.sent[0] <= now - self.window:
            self.sent.popleft()
        return 0.0 if len(self.sent) < self.limit else self.sent[0] + self.window - now

    def take(self, now: float) -> None:
        self.sent.append(now)


@dataclass(slots=True)
class _CallbackQuery:
    chat: Chat
    """The chat of the tapped message, where the answer is recorded."""
    user_id: int
    answered: bool = False


class FakeBotAPI:
    """An in-process Telegram Bot API: ``async with FakeBotAPI() as server: ...``.

    Point the bot at it with ``TelegramAPIServer.from_base(server.base_url)`` and the bot's token
    :attr:`token`. Create scripted users with :meth:`user` and group chats with :meth:`group`.
    Shape failures with :meth:`fail_next`, :meth:`block`, :meth:`deactivate` and
    :meth:`set_rate_limits`; inspect traffic with :attr:`calls`, :meth:`requests_per_method`,
    :attr:`stats`, and for broadcasts :meth:`deliveries` and :meth:`delivery_times`.
    """

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        bot_first_name: str = "Puente Test",
        bot_username: str = "puente_test_bot",
        max_upload_bytes: int = MAX_UPLOAD_BYTES,
    ) -> None:
        bot_id, _, secret = token.partition(":")
        if not bot_id.isdigit() or not secret:
            raise ValueError(f"{token!r} does not look like a bot token (<digits>:<secret>)")
        self.token = token
        self.host = host
        self.port = port
        self.max_upload_bytes = max_upload_bytes
        """Uploads above this are 413 Request Entity Too Large (Telegram: 50 MB)."""
        self.bot_user: dict[str, Any] = {
            "id": int(bot_id),
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
        }
        self.calls: list[RecordedCall] = []
        self.stats = ServerStats()

        self._users: dict[int, FakeUser] = {}
        self._user_ids = itertools.count(FIRST_USER_ID)
        self._groups: dict[int, FakeGroup] = {}
        self._channels: dict[int, FakeChannel] = {}
        self._supergroup_ids = itertools.count(FIRST_SUPERGROUP_ID, -1)
        self._group_ids = itertools.count(FIRST_GROUP_ID, -1)
        self._chats: dict[int, Chat] = {}
        """Every chat the bot can talk to, private and group, by chat id."""
        self._files: dict[str, Document | Photo] = {}
        """Files the bot uploaded or users sent, by file_id (every size of a photo), so the bot can send them by id."""
        self._blocked: set[int] = set()
        self._deactivated: set[int] = set()
        self._faults: list[InjectedFault] = []
        self._slow: list[SlowAnswer] = []
        self._global_bucket: _TokenBucket | None = None
        self._paid_bucket: _TokenBucket | None = None
        self._per_chat_rate: float | None = None
        self._per_chat_burst: float | None = None
        self._chat_buckets: dict[int, _TokenBucket] = {}
        self._group_limit: tuple[int, float] | None = None
        self._group_windows: dict[int, _SlidingWindow] = {}
        self._commands: dict[CommandScopeKey, list[dict[str, str]]] = {}

        # Update queue. Ids only grow; dicts keep insertion order, so ``_pending`` is sorted.
        self._update_ids = itertools.count(1)
        self._pending: dict[int, dict[str, Any]] = {}
        self._history: dict[int, dict[str, Any]] = {}
        self._update_chats: dict[int, Chat] = {}
        self._redeliveries: deque[dict[str, Any]] = deque()
        self._allowed_updates: frozenset[str] = DEFAULT_UPDATE_TYPES
        self._updates_changed = Signal()
        self._poll_generation = 0
        self._allowed_asked: list[str] | None = None
        """The ``allowed_updates`` the bot last asked for, as getWebhookInfo reports them."""
        self._webhook: Webhook | None = None
        self._webhook_task: asyncio.Task[None] | None = None
        self._callback_queries: dict[str, _CallbackQuery] = {}
        self._callback_ids = itertools.count(4_700_000_000_000_000_001)

        self._handlers: dict[str, Handler] = {
            "getMe": self._get_me,
            "getUpdates": self._get_updates,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "sendMessage": self._send_message,
            "sendDocument": self._send_document,
            "sendPhoto": self._send_photo,
            "copyMessage": self._copy_message,
            "editMessageText": self._edit_message_text,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "answerCallbackQuery": self._answer_callback_query,
            "deleteMessage": self._delete_message,
            "deleteMessages": self._delete_messages,
            "sendChatAction": self._send_chat_action,
            "createForumTopic": self._create_forum_topic,
            "editForumTopic": self._edit_forum_topic,
            "closeForumTopic": self._close_forum_topic,
            "reopenForumTopic": self._reopen_forum_topic,
            "deleteForumTopic": self._delete_forum_topic,
            "leaveChat": self._leave_chat,
        }
        assert set(self._handlers) == {m.name for m in METHODS}, "schema and handlers disagree"

        self._closing = False
        self._runner: web.AppRunner | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``, for ``TelegramAPIServer.from_base``. Valid once started."""
        if self._runner is None:
            raise RuntimeError("FakeBotAPI is not started")
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        """Listen on ``host:port`` (port 0 picks a free ephemeral port, exposed as :attr:`port`)."""
        if self._runner is not None:
            raise RuntimeError("FakeBotAPI is already started")
        app = web.Application(client_max_size=self.max_upload_bytes + _UPLOAD_SLACK_BYTES)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        # Long polls end promptly once ``_closing`` is set, so a short shutdown timeout suffices.
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self.port = runner.addresses[0][1]
        self._closing = False
        self._runner = runner

    async def stop(self) -> None:
        """Answer pending long polls with no updates, then close the listener and connections."""
        if self._runner is None:
            return
        self._closing = True
        self._updates_changed.fire()
        await self._stop_delivering()
        runner, self._runner = self._runner, None
        await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # -- users -------------------------------------------------------------------------------------

    def user(
        self,
        user_id: int | None = None,
        first_name: str = "Ana",
        language_code: str | None = "es",
        *,
        last_name: str | None = None,
        username: str | None = None,
        is_bot: bool = False,
    ) -> FakeUser:
        """Create a scripted user (and their private chat), or return the existing one with that id.

        ``is_bot=True`` makes another bot's account, whose messages the bot under test gets in
        groups (Telegram does not let bots write to each other privately; the fake does not care).
        """
        if user_id is not None and user_id in self._users:
            return self._users[user_id]
        if user_id is None:
            user_id = next(i for i in self._user_ids if i not in self._chats)
        elif user_id in self._chats:
            raise ValueError(f"chat id {user_id} is already taken by a group")
        user = FakeUser(self, user_id, first_name, language_code, last_name=last_name, username=username, is_bot=is_bot)
        self._users[user_id] = user
        self._chats[user_id] = user.chat
        return user

    @property
    def users(self) -> Mapping[int, FakeUser]:
        return dict(self._users)

    def group(
        self,
        chat_id: int | None = None,
        title: str = "Intake",
        *,
        supergroup: bool = True,
        forum: bool = False,
        with_bot: bool = True,
    ) -> FakeGroup:
        """Create a group chat with the bot in it, or return the existing one with that id.

        Ids are negative: supergroups get ``-100...`` ids as in Telegram (-1001000000001, then
        counting down), basic groups (``supergroup=False``) plain negative ones. The bot sends,
        edits and deletes there like in a private chat; add people with ``group.member(...)``.
        ``forum=True`` makes a supergroup with topics (``is_forum``), where the bot is an admin
        that may create, edit, close, reopen and delete topics.

        ``with_bot=False`` makes a group without the bot, which a test then adds with
        :meth:`FakeGroup.add_bot` (the ``my_chat_member`` update a bot gets when added).
        """
        if chat_id is not None and chat_id in self._groups:
            return self._groups[chat_id]
        chat_id = self._new_chat_id(chat_id, self._supergroup_ids if supergroup else self._group_ids)
        group = FakeGroup(self, chat_id, title, supergroup=supergroup, forum=forum, with_bot=with_bot)
        self._groups[chat_id] = group
        self._chats[chat_id] = group.chat
        return group

    def channel(self, chat_id: int | None = None, title: str = "Noticias", *, with_bot: bool = True) -> FakeChannel:
        """Create a channel (the bot an admin in it unless ``with_bot=False``), or return the one with that id.

        Channel ids are ``-100...`` like supergroups', from the same sequence. Its posts
        (:meth:`FakeChannel.post`) are ``channel_post`` updates, sent on behalf of the channel.
        """
        if chat_id is not None and chat_id in self._channels:
            return self._channels[chat_id]
        chat_id = self._new_chat_id(chat_id, self._supergroup_ids)
        channel = FakeChannel(self, chat_id, title, with_bot=with_bot)
        self._channels[chat_id] = channel
        self._chats[chat_id] = channel.chat
        return channel

    def _new_chat_id(self, chat_id: int | None, ids: Iterator[int]) -> int:
        if chat_id is None:
            return next(i for i in ids if i not in self._chats)
        if chat_id in self._chats:
            raise ValueError(f"chat id {chat_id} is already taken by another chat")
        return chat_id

    @property
    def groups(self) -> Mapping[int, FakeGroup]:
        return dict(self._groups)

    @property
    def channels(self) -> Mapping[int, FakeChannel]:
        return dict(self._channels)

    # -- fault injection and limits ----------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        *,
        status: int = 500,
        description: str | None = None,
        retry_after: int | None = None,
        times: int = 1,
        chat_id: int | None = None,
        after_effect: bool = False,
    ) -> InjectedFault:
        """Make the next ``times`` calls of ``method`` (optionally only for ``chat_id``) fail.

        A 429 carries ``parameters.retry_after`` (default 1 s). With ``after_effect=True`` the
        call takes effect before the error is returned, like a send whose response was lost:
        the way to test that retries do not duplicate messages.
        """
        if status < 400:
            raise ValueError("an injected failure needs an error status (>= 400)")
        if status == 429 and retry_after is None:
            retry_after = 1
        if description is None:
            description = (
                f"Too Many Requests: retry after {retry_after}"
                if status == 429
                else _DEFAULT_FAULT_DESCRIPTIONS.get(status, f"Error {status}")
            )
        fault = InjectedFault(method, status, description, retry_after, times, chat_id, after_effect)
        self._faults.append(fault)
        return fault

    def slow_next(self, method: str, seconds: float, *, times: int = 1, chat_id: int | None = None) -> SlowAnswer:
        """The next ``times`` calls of ``method`` (optionally only for ``chat_id``) take effect at once, as people
        see them, but their answers reach the bot ``seconds`` later: a slow network on the way back."""
        slow = SlowAnswer(method, seconds, times, chat_id)
        self._slow.append(slow)
        return slow

    def block(self, chat_id: int) -> None:
        """The user blocks the bot: sends to their chat get 403 until :meth:`unblock`.

        For a group this is the bot being removed from it ("bot was kicked from the ... chat").
        """
        self._blocked.add(chat_id)

    def unblock(self, chat_id: int) -> None:
        self._blocked.discard(chat_id)

    def deactivate(self, user_id: int) -> None:
        """The user deletes their Telegram account: sends to their chat get 403 "user is deactivated".

        For good, as in Telegram (there is no way back); it wins over :meth:`block`. A deleted
        user can no longer send or tap either: a scripted user trying to fails the test.
        """
        if user_id < 0:
            raise ValueError(f"only users have accounts to delete; block({user_id}) removes the bot from a group")
        self._deactivated.add(user_id)

    def is_deactivated(self, user_id: int) -> bool:
        return user_id in self._deactivated

    def set_rate_limits(
        self,
        global_per_second: float | None = None,
        per_chat_per_second: float | None = None,
        *,
        per_chat_burst: float | None = None,
        per_group_per_minute: int | None = None,
        group_window_seconds: float = 60.0,
        paid_per_second: float | None = DEFAULT_PAID_PER_SECOND,
    ) -> None:
        """Enable flood control on sends and edits (off by default; ``None`` disables a limit).

        Telegram's limits, each optional: ``global_per_second`` over all chats (about 30),
        ``per_chat_per_second`` in every private chat (about 1, with a ``per_chat_burst`` of about
        3), and ``per_group_per_minute`` in each group or supergroup (20): at most that many sends
        per chat in any rolling ``group_window_seconds`` (60 s, shorten it to scale time in tests),
        on top of the global one. Each call replaces all limits and forgets past sends.

        The per-second limits are token buckets that start full, with a burst of one second's
        worth unless ``per_chat_burst`` says otherwise: at 30/s, 30 sends pass at once, then one
        every 1/30 s; per chat at 1/s with a burst of 3, three at once, then one a second.

        sendMessage, sendPhoto, sendDocument, copyMessage, editMessageText and
        editMessageReplyMarkup count: the calls that put content into a chat, which is what
        Telegram's flood control meters. A send with ``allow_paid_broadcast=true`` is metered
        against ``paid_per_second`` (Telegram: 1000) *instead of* ``global_per_second``, in a
        bucket of its own; the per-chat and group limits still apply to it.

        Over the limit a call gets 429 with ``retry_after`` = seconds until a slot frees up,
        rounded up, at least 1, in ``parameters.retry_after`` as from Telegram.
        """
        if per_group_per_minute is not None and (per_group_per_minute < 1 or group_window_seconds <= 0):
            raise ValueError("per_group_per_minute needs at least 1 send in a positive group_window_seconds")
        now = time.monotonic()
        self._global_bucket = _TokenBucket.full(global_per_second, now) if global_per_second else None
        self._paid_bucket = _TokenBucket.full(paid_per_second, now) if paid_per_second else None
        self._per_chat_rate = per_chat_per_second or None
        self._per_chat_burst = per_chat_burst
        self._chat_buckets.clear()
        self._group_limit = (per_group_per_minute, group_window_seconds) if per_group_per_minute else None
        self._group_windows.clear()

    def register_document(self, document: Document) -> None:
        """Make a file known by its file_id, so the bot can send it again (users' uploads call this)."""
        self._files[document.file_id] = document

    def register_photo(self, photo: Photo) -> None:
        """Make a photo known by the file_id of each of its sizes, so the bot can send it by any of them."""
        for file_id in photo.file_ids:
            self._files[file_id] = photo

    # -- updates -----------------------------------------------------------------------------------

    def push_update(self, kind: str, payload: dict[str, Any], *, chat: Chat | None = None) -> int:
        """Enqueue an update of type ``kind`` for the bot; returns its update_id.

        Users call this for you; call it directly for update types they do not script. What
        happens in a group or channel (``chat``) the bot is not in never reaches it, except the
        ``my_chat_member`` update about it being added or removed; the id is used up all the same.
        """
        if kind not in UPDATE_TYPES:
            raise ValueError(f"unknown update type {kind!r}")
        update_id = next(self._update_ids)
        if chat is not None and not chat.bot_present and kind != "my_chat_member":
            self.stats.updates_unseen += 1
            return update_id
        update = {"update_id": update_id, kind: payload}
        self._pending[update_id] = update
        self._history[update_id] = update
        if chat is not None:
            chat.pending_update_ids.add(update_id)
            self._update_chats[update_id] = chat
        self.stats.updates_pushed += 1
        self._updates_changed.fire()
        return update_id

    def duplicate_update(self, update_id: int) -> None:
        """Deliver an already delivered update again, same id and payload.

        This is what Telegram does when the bot did not confirm an offset (e.g. it crashed while
        handling): the redelivery is returned by the next getUpdates whatever its offset.
        """
        if update_id not in self._history:
            raise KeyError(f"no update with id {update_id} was ever pushed")
        self._redeliveries.append(self._history[update_id])
        self._updates_changed.fire()

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates not yet confirmed by the bot (including ones fetched but not confirmed)."""
        return [*self._redeliveries, *self._pending.values()]

    def membership_change(
        self, chat: Chat, performer: Mapping[str, Any], old_status: str, new_status: str
    ) -> dict[str, Any]:
        """A ``ChatMemberUpdated`` about the bot in ``chat`` (the ``my_chat_member`` update's payload)."""
        return {
            "chat": dict(chat.api),
            "from": dict(performer),
            "date": int(time.time()),
            "old_chat_member": self._bot_as_member(chat, old_status),
            "new_chat_member": self._bot_as_member(chat, new_status),
        }

    def _bot_as_member(self, chat: Chat, status: str) -> dict[str, Any]:
        """The bot as a ``ChatMember`` of ``chat`` with that status (an admin with the rights this bot needs)."""
        member: dict[str, Any] = {"status": status, "user": dict(self.bot_user)}
        if status == "kicked":
            member["until_date"] = 0  # forever
        elif status == "administrator":
            member.update(dict.fromkeys(_ADMIN_RIGHTS, False))
            member.update(can_manage_chat=True, can_delete_messages=True, can_invite_users=True)
            if chat.type == "channel":
                member.update(can_post_messages=True, can_edit_messages=True)
            else:
                member["can_pin_messages"] = True
            if chat.is_forum:
                member["can_manage_topics"] = True
        elif status not in ("member", "left"):
            raise ValueError(f"the fake does not model the bot as a {status!r} member")
        return member

    def new_callback_query_id(self, chat: Chat, user_id: int | None = None) -> str:
        """Issue a callback query id that answerCallbackQuery will accept exactly once.

        ``chat`` is the tapped message's chat, ``user_id`` who tapped (default: the private
        chat's user).
        """
        query_id = str(next(self._callback_ids))
        self._callback_queries[query_id] = _CallbackQuery(chat, chat.id if user_id is None else user_id)
        return query_id

    def push_callback_query(self, sender: Mapping[str, Any], message: ChatMessage, data: str) -> str:
        """Enqueue a callback_query from ``sender`` (a User object) about ``message``; returns its id.

        The update belongs to the message's chat, private or group. ``data`` is sent as given,
        button or not: :meth:`FakeUser.tap` does the checking unless told to forge.
        """
        chat = self._chats.get(message.chat["id"])
        if chat is None:
            raise KeyError(
                f"message #{message.message_id} is in chat {message.chat['id']}, which this server never had"
            )
        query_id = self.new_callback_query_id(chat, user_id=sender["id"])
        query = {
            "id": query_id,
            "from": dict(sender),
            "message": message.to_api(),
            "chat_instance": chat.instance,
            "data": data,
        }
        self.push_update("callback_query", query, chat=chat)
        return query_id

    # -- introspection -----------------------------------------------------------------------------

    def requests_per_method(self) -> Counter[str]:
        return Counter(call.method for call in self.calls)

    def calls_to(self, method: str) -> list[RecordedCall]:
        """Recorded calls of one method (case-insensitive)."""
        return [call for call in self.calls if call.method.lower() == method.lower()]

    def commands(self, scope: Mapping[str, Any] | None = None, language_code: str = "") -> list[dict[str, str]]:
        """The command list stored by setMyCommands for exactly that scope and language."""
        return list(self._commands.get(self._command_key(scope, language_code), []))

    def menu(
        self, chat_id: int, language_code: str | None = None, *, user_id: int | None = None
    ) -> list[dict[str, str]]:
        """The command menu someone whose app speaks `language_code` sees in that chat, as Telegram picks it.

        The first list set, narrowest scope first, each with the person's language before without one
        (https://core.telegram.org/bots/features#command-scopes). In a private chat: chat, all_private_chats,
        default. In a group: chat_member (for `user_id`), chat, all_group_chats, default (the administrator
        scopes are not modelled: no member of a fake group is an administrator). A language like "pt-br" counts
        as "pt". Nothing set anywhere: an empty menu.
        """
        chat = self._chats.get(chat_id)
        if chat is None:
            raise KeyError(f"no chat {chat_id}")
        if chat.type == "private":
            scopes: list[tuple[Any, ...]] = [("chat", chat_id), ("all_private_chats",), ("default",)]
        else:
            member = [("chat_member", chat_id, user_id)] if user_id is not None else []
            scopes = [*member, ("chat", chat_id), ("all_group_chats",), ("default",)]
        language = (language_code or "").split("-")[0].lower()
        for scope in scopes:
            for code in dict.fromkeys((language, "")):
                found = self._commands.get(CommandScopeKey(scope, code))
                if found:
                    return list(found)
        return []

    def deliveries(
        self, where: Callable[[ChatMessage], bool] | None = None, *, private_only: bool = True
    ) -> Counter[int]:
        """How many messages the bot delivered to each chat, by chat id: the broadcast ledger.

        A message counts once it landed in the chat (sendMessage, sendPhoto, sendDocument,
        copyMessage), also when the bot never saw the answer (``fail_next(...,
        after_effect=True)``) and if it was deleted since; refused sends (400, 403, 429...),
        edits and service messages do not. ``where`` picks which messages count, e.g.
        ``lambda m: m.photo is not None``; by default all of them. Chats without any are
        absent, so ``deliveries()[user.id]`` is 0 for them. "Nobody missed and nobody got it
        twice" is ``deliveries(where) == Counter(dict.fromkeys(ids, 1))``; a chat's duplicates
        are its count - 1. Private chats only, unless ``private_only=False``.
        """
        counts: Counter[int] = Counter()
        for chat_id, messages in self._bot_messages(where, private_only):
            if messages:
                counts[chat_id] = len(messages)
        return counts

    def delivery_times(
        self, where: Callable[[ChatMessage], bool] | None = None, *, private_only: bool = True
    ) -> list[float]:
        """``time.monotonic()`` of each delivery :meth:`deliveries` counts (same arguments), in order.

        For throughput checks, e.g. that no second held more than 30; each message has its own
        as ``ChatMessage.sent_at``. Every call, refused ones included, is in :attr:`calls`
        with the time it was answered (``RecordedCall.at``).
        """
        return sorted(m.sent_at for _, messages in self._bot_messages(where, private_only) for m in messages)

    def _bot_messages(
        self, where: Callable[[ChatMessage], bool] | None, private_only: bool
    ) -> Iterator[tuple[int, list[ChatMessage]]]:
        for chat in self._chats.values():
            if chat.bot_log and not (private_only and chat.type != "private"):
                yield chat.id, chat.bot_log if where is None else [m for m in chat.bot_log if where(m)]

    # -- HTTP layer --------------------------------------------------------------------------------

    async def _not_found(self, request: web.Request) -> web.Response:
        return web.json_response(BotAPIError(404, "Not Found").to_json(), status=404)

    async def _handle(self, request: web.Request) -> web.Response:
        """One Bot API call over HTTP."""
        return await self._call(
            request.match_info["method"],
            lambda: self._read_params(request),
            authorised=request.match_info["token"] == self.token,
        )

    async def _call(
        self, name: str, read: Callable[[], Awaitable[dict[str, Any]]], *, authorised: bool
    ) -> web.Response:
        """Authenticate, decode, apply faults, dispatch, record: one Bot API call, however it came."""
        method = lookup_method(name)
        params: dict[str, Any] = {}
        result: Any = None
        try:
            if not authorised:
                raise BotAPIError(401, "Unauthorized")
            if method is None:
                raise BotAPIError(404, "Not Found")
            name = method.name
            params = raw = await read()
            fault = self._take_fault(name, raw)
            if fault is not None and not fault.after_effect:
                raise fault.error()
            params = coerce_params(method, raw)
            result = await self._handlers[name](params)
            if fault is not None:
                raise fault.error()
            await self._answer_late(name, raw)
        except BotAPIError as error:
            return self._respond(name, params, error.status, error.to_json(), description=error.description)
        except Exception as error:  # a bug in the fake itself: fail loudly, but as a well-formed 500
            log.exception("fake Bot API crashed handling %s", name)
            crash = BotAPIError(500, f"Internal Server Error: fake Bot API bug: {error!r}")
            return self._respond(name, params, crash.status, crash.to_json(), description=crash.description)
        return self._respond(name, params, 200, {"ok": True, "result": result}, result=result)

    def _respond(
        self,
        method: str,
        params: dict[str, Any],
        status: int,
        body: dict[str, Any],
        *,
        result: Any = None,
        description: str | None = None,
    ) -> web.Response:
        chat = self._chat_of_call(method, params)
        chat_id = chat.id if chat is not None else None
        self.calls.append(RecordedCall(method, params, status, time.monotonic(), result, description, chat_id))
        self.stats.responses_by_status[status] += 1
        if chat is not None:
            chat.bot_called()
        return web.json_response(body, status=status)

    @staticmethod
    async def _read_params(request: web.Request) -> dict[str, Any]:
        """Merge query string and body (multipart, urlencoded or JSON), as Telegram accepts all.

        File parts become :class:`UploadedFile` values under their part name; a body over the
        upload limit is 413, as from Telegram.
        """
        params: dict[str, Any] = dict(request.query)
        if not request.body_exists:
            return params
        try:
            if request.content_type == "application/json":
                try:
                    body = await request.json()
                except ValueError:
                    raise BotAPIError.bad_request("can't parse JSON request body") from None
                if not isinstance(body, dict):
                    raise BotAPIError.bad_request("JSON request body must be an Object")
                params.update(body)
            elif request.content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
                for key, value in (await request.post()).items():
                    if isinstance(value, str):
                        params[key] = value
                    elif isinstance(value, (bytes, bytearray)):
                        params[key] = value.decode("utf-8", errors="replace")
                    else:
                        with value.file as file:  # read, then close the temp file aiohttp spooled it to
                            content = file.read()
                        params[key] = UploadedFile(key, value.filename, value.content_type, content)
        except web.HTTPRequestEntityTooLarge:
            raise BotAPIError(413, "Request Entity Too Large") from None
        return params

    async def _answer_late(self, method: str, raw: Mapping[str, Any]) -> None:
        chat_id = _as_int(raw.get("chat_id"))
        slow = next(
            (r for r in self._slow if r.method == method and r.chat_id in (None, chat_id) and r.remaining), None
        )
        if slow is not None:
            slow.remaining -= 1
            await asyncio.sleep(slow.seconds)

    def _take_fault(self, method: str, raw: Mapping[str, Any]) -> InjectedFault | None:
        chat_id = _as_int(raw.get("chat_id"))
        if chat_id is None and "callback_query_id" in raw:
            query = self._callback_queries.get(str(raw["callback_query_id"]))
            chat_id = query.chat.id if query else None
        fault = next((f for f in self._faults if f.matches(method, chat_id)), None)
        if fault is None:
            return None
        fault.remaining -= 1
        if fault.remaining == 0:
            self._faults.remove(fault)
        self.stats.injected_failures += 1
        return fault

    def _chat_of_call(self, method: str, params: Mapping[str, Any]) -> Chat | None:
        """The chat a call was about, so that chat's waiters see the bot was active there."""
        chat_id = _as_int(params.get("chat_id"))
        if chat_id is not None:
            return self._chats.get(chat_id)
        if method == "answerCallbackQuery":
            query = self._callback_queries.get(str(params.get("callback_query_id")))
            return query.chat if query else None
        return None

    # -- shared checks -----------------------------------------------------------------------------

    def _chat(self, chat_id: Any, *, sending: bool = True) -> Chat:
        """Resolve a chat the fake knows; sending to a deleted or blocking user or a group without the bot is a 403."""
        chat = self._chats.get(chat_id) if isinstance(chat_id, int) else None
        if chat is None:
            raise BotAPIError.bad_request("chat not found")
        if sending and chat_id in self._deactivated:
            raise BotAPIError(403, DEACTIVATED_DESCRIPTION)
        if sending and (chat_id in self._blocked or chat.bot_status == "kicked"):
            raise BotAPIError(403, _FORBIDDEN_BY_CHAT_TYPE[chat.type])
        if sending and not chat.bot_present:
            raise BotAPIError(403, f"Forbidden: bot is not a member of the {chat.type} chat")
        return chat

    def _take_send_slot(self, chat: Chat, *, paid: bool = False) -> None:
        """Flood control: consume a slot from the global (or paid), per-chat and group limits, or answer 429."""
        now = time.monotonic()
        overall = self._paid_bucket if paid else self._global_bucket
        buckets = [overall] if overall else []
        if self._per_chat_rate and chat.type == "private":  # groups: per_group_per_minute
            bucket = self._chat_buckets.get(chat.id)
            if bucket is None:
                bucket = self._chat_buckets[chat.id] = _TokenBucket.full(self._per_chat_rate, now, self._per_chat_burst)
            buckets.append(bucket)
        window: _SlidingWindow | None = None
        if self._group_limit is not None and chat.is_group:
            window = self._group_windows.get(chat.id)
            if window is None:
                window = self._group_windows[chat.id] = _SlidingWindow(*self._group_limit)
        waits = [bucket.seconds_until_available(now) for bucket in buckets]
        if window is not None:
            waits.append(window.seconds_until_available(now))
        wait = max(waits, default=0.0)
        if wait > 0:
            retry_after = max(1, math.ceil(wait))
            self.stats.rate_limited += 1
            raise BotAPIError(429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after)
        for bucket in buckets:
            bucket.take()
        if window is not None:
            window.take(now)

    def _new_bot_message(
        self,
        chat: Chat,
        content: dict[str, Any],
        reply_markup: dict[str, Any] | None,
        source_text: str | None,
        document: Document | None = None,
        *,
        photo: Photo | None = None,
        placement: Placement | None = None,
        paid: bool = False,
        protected: bool = False,
    ) -> ChatMessage:
        where = placement or Placement()
        message = ChatMessage(
            message_id=chat.next_message_id(),
            date=int(time.time()),
            chat=chat.api,
            sender=self.bot_user,
            from_bot=True,
            content=content,
            reply_markup=reply_markup,
            source_text=source_text,
            document=document,
            photo=photo,
            thread_id=where.thread_id,
            is_topic_message=where.is_topic_message,
            reply_to=where.reply_to,
            protected=protected,
        )
        chat.add(message)
        if not message.is_service:
            self.stats.messages_sent += 1
            if paid:
                self.stats.paid_messages += 1
        return message

    def _placement(self, chat: Chat, params: Mapping[str, Any]) -> Placement:
        """Where a send lands: ``message_thread_id`` and the reply (``reply_parameters`` or the legacy id)."""
        reply_to = self._reply_target(chat, params)
        try:
            return chat.place(params.get("message_thread_id"), reply_to)
        except ThreadError as error:
            raise BotAPIError.bad_request(str(error)) from None

    @staticmethod
    def _reply_target(chat: Chat, params: Mapping[str, Any]) -> ChatMessage | None:
        reply = params.get("reply_parameters")
        if reply is None:
            if "reply_to_message_id" not in params:
                return None
            reply = {
                "message_id": params["reply_to_message_id"],
                "allow_sending_without_reply": params.get("allow_sending_without_reply", False),
            }
        message_id = reply.get("message_id")
        if not isinstance(message_id, int) or isinstance(message_id, bool):
            raise BotAPIError.bad_request("can't parse reply parameters: message_id must be an Integer")
        other_chat = reply.get("chat_id")
        if other_chat is not None and _as_int(other_chat) != chat.id:
            raise BotAPIError.bad_request("fake Bot API: replies to messages of another chat are not simulated")
        target = chat.get(message_id)
        if target is None and not reply.get("allow_sending_without_reply"):
            raise BotAPIError.bad_request("message to be replied not found")
        return target

    # -- method handlers ---------------------------------------------------------------------------

    async def _get_me(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Long polling with Telegram's offset confirmation and single-poller rule.

        A newer getUpdates terminates an older one still waiting (409 Conflict), which is what lets
        a bot that was killed and restarted take over polling immediately.
        """
        if self._webhook is not None:
            raise BotAPIError(409, GETUPDATES_CONFLICT)
        self._poll_generation += 1
        generation = self._poll_generation
        self._updates_changed.fire()  # an older poll wakes up, sees it is superseded, answers 409

        if "offset" in params:
            self._confirm(params["offset"])
        if "allowed_updates" in params:
            self._allow(params["allowed_updates"])
        limit = min(max(params.get("limit", 100), 1), 100)
        deadline = time.monotonic() + max(params.get("timeout", 0), 0)

        while True:
            if generation != self._poll_generation:
                self.stats.conflicts += 1
                raise BotAPIError(409, CONFLICT_DESCRIPTION)
            batch = self._take_batch(limit)
            remaining = deadline - time.monotonic()
            if batch or self._closing or remaining <= 0:
                return batch
            await self._updates_changed.wait(remaining)

    def _confirm(self, offset: int) -> None:
        """Forget updates below ``offset``; a negative offset keeps only the last ``-offset``."""
        if offset < 0:
            keep = set(list(self._pending)[offset:])
            forget = [update_id for update_id in self._pending if update_id not in keep]
        else:
            forget = list(itertools.takewhile(lambda update_id: update_id < offset, self._pending))
        for update_id in forget:
            del self._pending[update_id]

    def _take_batch(self, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` updates: forced redeliveries first, then unconfirmed ones in id order.

        Unconfirmed updates stay queued and are returned again until an offset confirms them;
        updates of types the bot did not ask for are dropped, as Telegram never sends them.
        """
        batch: list[dict[str, Any]] = []
        while self._redeliveries and len(batch) < limit:
            batch.append(self._redeliveries.popleft())
        for update_id, update in list(self._pending.items()):
            if len(batch) >= limit:
                break
            if _update_kind(update) in self._allowed_updates:
                batch.append(update)
            else:
                del self._pending[update_id]
                self._mark_delivered(update_id, dropped=True)
        for update in batch:
            self._mark_delivered(update["update_id"])
        self.stats.updates_delivered += len(batch)
        return batch

    def _mark_delivered(self, update_id: int, *, dropped: bool = False) -> None:
        chat = self._update_chats.pop(update_id, None)
        if chat is not None:
            chat.delivered(update_id, expect_reaction=not dropped)

    async def _delete_webhook(self, params: dict[str, Any]) -> bool:
        await self._stop_delivering()
        if params.get("drop_pending_updates"):
            self._drop_pending()
        return True

    def _drop_pending(self) -> None:
        for update_id in list(self._pending):
            self._mark_delivered(update_id, dropped=True)
        self._pending.clear()
        self._redeliveries.clear()

    def _allow(self, kinds: list[Any]) -> None:
        """The update types the bot asked for (getUpdates or setWebhook); unknown ones are ignored."""
        self._allowed_asked = [str(kind) for kind in kinds]
        allowed = frozenset(self._allowed_asked)
        self._allowed_updates = (allowed & frozenset(UPDATE_TYPES)) or DEFAULT_UPDATE_TYPES

    # -- webhooks (see tests.fakebotapi.webhook) ---------------------------------------------------

    @property
    def webhook(self) -> Webhook | None:
        """The webhook set with setWebhook, with its delivery stats; None while the bot polls."""
        return self._webhook

    async def _set_webhook(self, params: dict[str, Any]) -> bool:
        if not params["url"]:  # an empty URL removes the webhook
            return await self._delete_webhook(params)
        config = WebhookConfig.from_params(params)
        await self._stop_delivering()
        self._poll_generation += 1  # a long poll still waiting ends with a 409, as in Telegram
        self._updates_changed.fire()
        if params.get("drop_pending_updates"):
            self._drop_pending()
        if "allowed_updates" in params:
            self._allow(params["allowed_updates"])
        self._webhook = Webhook(config)
        self._webhook_task = asyncio.create_task(self._deliver(self._webhook))
        return True

    async def _stop_delivering(self) -> None:
        """Forget the webhook; POSTs under way are abandoned and their updates stay pending."""
        task, self._webhook, self._webhook_task = self._webhook_task, None, None
        if task is not None:
            self._updates_changed.fire()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _deliver(self, hook: Webhook) -> None:
        """POST pending updates to the webhook, at most ``max_connections`` at once, until it is removed."""
        slots = asyncio.Semaphore(hook.config.max_connections)
        posts: set[asyncio.Task[None]] = set()
        timeout = aiohttp.ClientTimeout(total=POST_TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            try:
                while not self._closing:
                    await slots.acquire()
                    taken = self._next_for_webhook(hook)
                    if taken is None:
                        slots.release()
                        await self._updates_changed.wait(1.0)
                        continue
                    update, redelivery = taken
                    hook.in_flight.add(update["update_id"])
                    post = asyncio.create_task(self._post(http, hook, update, redelivery, slots))
                    posts.add(post)
                    post.add_done_callback(posts.discard)
            finally:
                for post in posts:
                    post.cancel()
                await asyncio.gather(*posts, return_exceptions=True)

    def _next_for_webhook(self, hook: Webhook) -> tuple[dict[str, Any], bool] | None:
        """The next update to POST: a forced redelivery first, else the oldest pending one not under way."""
        if self._redeliveries:
            return self._redeliveries.popleft(), True
        now = time.monotonic()
        for update_id, update in list(self._pending.items()):
            if not hook.ready(update_id, now):
                continue
            if _update_kind(update) not in self._allowed_updates:
                del self._pending[update_id]
                self._mark_delivered(update_id, dropped=True)
                continue
            if update_id not in hook.attempts:
                self._mark_delivered(update_id)
                self.stats.updates_delivered += 1
            return update, False
        return None

    async def _post(
        self,
        http: aiohttp.ClientSession,
        hook: Webhook,
        update: dict[str, Any],
        redelivery: bool,
        slots: asyncio.Semaphore,
    ) -> None:
        update_id = update["update_id"]
        headers = {SECRET_HEADER: hook.config.secret_token} if hook.config.secret_token else {}
        hook.stats.posts += 1
        hook.stats.peak_in_flight = max(hook.stats.peak_in_flight, len(hook.in_flight))
        try:
            try:
                async with http.post(hook.config.url, json=update, headers=headers) as response:
                    ok = 200 <= response.status < 300
                    answer = await _answer_params(response) if ok else None
                failure = None if ok else f"Wrong response from the webhook: {response.status} {response.reason}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                failure = f"Connection failed: {type(exc).__name__}"
            if failure is None:
                hook.accepted(update_id)
                if not redelivery:
                    self._pending.pop(update_id, None)
                if answer is not None:
                    await self._perform_answer(answer)
                return
            delay = hook.refused(update_id, failure)
            if redelivery:
                hook.not_before.pop(update_id, None)
                asyncio.get_running_loop().call_later(delay, self._redeliveries.append, update)
            asyncio.get_running_loop().call_later(delay, self._updates_changed.fire)
        finally:
            hook.in_flight.discard(update_id)
            slots.release()

    async def _perform_answer(self, raw: dict[str, Any]) -> None:
        """A Bot API call made in the body of a webhook answer: performed and recorded, its result unseen."""
        name = raw.pop("method", None)
        if not isinstance(name, str) or name.lower() in _NOT_IN_AN_ANSWER:
            return
        if self._webhook is not None:
            self._webhook.stats.methods_answered += 1

        async def given() -> dict[str, Any]:
            return raw

        await self._call(name, given, authorised=True)

    async def _get_webhook_info(self, params: dict[str, Any]) -> dict[str, Any]:
        if self._webhook is not None:
            return self._webhook.info(len(self.pending_updates), self._allowed_asked)
        return {"url": "", "has_custom_certificate": False, "pending_update_count": len(self.pending_updates)}

    async def _set_my_commands(self, params: dict[str, Any]) -> bool:
        commands = validate_commands(params["commands"])
        self._commands[self._command_key(params.get("scope"), params.get("language_code"))] = commands
        return True

    async def _get_my_commands(self, params: dict[str, Any]) -> list[dict[str, str]]:
        return list(self._commands.get(self._command_key(params.get("scope"), params.get("language_code")), []))

    async def _delete_my_commands(self, params: dict[str, Any]) -> bool:
        self._commands.pop(self._command_key(params.get("scope"), params.get("language_code")), None)
        return True

    def _command_key(self, scope: Mapping[str, Any] | None, language_code: str | None) -> CommandScopeKey:
        """A scope checked against the chats: its chat must exist, and not be a channel (the reference: "Channel
        direct messages chats and channel chats aren't supported"); the administrator and member scopes are for
        groups only. The chat is keyed by its id, however the call named it."""
        key = validate_scope(scope, language_code)
        kind, *ids = key.scope
        if not ids:
            return key
        chat_ref = ids[0]
        if isinstance(chat_ref, str):  # @username: the fake's groups and channels have none
            raise BotAPIError.bad_request("chat not found")
        chat = self._chats.get(chat_ref)
        if chat is None:
            raise BotAPIError.bad_request("chat not found")
        if chat.type == "channel":
            raise BotAPIError.bad_request("can't change commands in channel chats")
        if kind != "chat" and chat.type == "private":
            raise BotAPIError.bad_request(f"can't use {kind} scope in a private chat")
        return key

    async def _send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params["chat_id"])
        placement = self._placement(chat, params)
        formatted = format_text(params["text"], params.get("parse_mode"), params.get("entities"))
        markup = params.get("reply_markup")
        if markup is not None:
            validate_reply_markup(markup)
        paid = bool(params.get("allow_paid_broadcast"))
        self._take_send_slot(chat, paid=paid)
        content: dict[str, Any] = {"text": formatted.text}
        if formatted.entities:
            content["entities"] = list(formatted.entities)
        message = self._new_bot_message(
            chat, content, markup, params["text"], placement=placement, paid=paid, protected=_protected(params)
        )
        return message.to_api()

    async def _send_document(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params["chat_id"])
        placement = self._placement(chat, params)
        document = self._document_to_send(params["document"])
        content: dict[str, Any] = {"document": document.to_api(), **_caption_content(params)}
        markup = params.get("reply_markup")
        if markup is not None:
            validate_reply_markup(markup)
        paid = bool(params.get("allow_paid_broadcast"))
        self._take_send_slot(chat, paid=paid)
        self.register_document(document)
        message = self._new_bot_message(
            chat,
            content,
            markup,
            params.get("caption"),
            document,
            placement=placement,
            paid=paid,
            protected=_protected(params),
        )
        return message.to_api()

    async def _send_photo(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params["chat_id"])
        placement = self._placement(chat, params)
        photo = self._photo_to_send(params["photo"])
        content: dict[str, Any] = {"photo": photo.to_api(), **_caption_content(params)}
        if params.get("show_caption_above_media") and "caption" in content:
            content["show_caption_above_media"] = True
        if params.get("has_spoiler"):
            content["has_media_spoiler"] = True
        markup = params.get("reply_markup")
        if markup is not None:
            validate_reply_markup(markup)
        paid = bool(params.get("allow_paid_broadcast"))
        self._take_send_slot(chat, paid=paid)
        self.register_photo(photo)
        message = self._new_bot_message(
            chat,
            content,
            markup,
            params.get("caption"),
            photo=photo,
            placement=placement,
            paid=paid,
            protected=_protected(params),
        )
        return message.to_api()

    def _known_file(self, file_id: str, kind: type[_FileT]) -> _FileT:
        """A file sent by file_id: it must exist and be of the kind the method sends; URLs cannot be fetched here."""
        known = self._files.get(file_id)
        if known is None:
            if file_id.startswith(("http://", "https://")):
                raise BotAPIError.bad_request("failed to get HTTP URL content")
            raise BotAPIError.bad_request("wrong file identifier/HTTP URL specified")
        if not isinstance(known, kind):
            raise BotAPIError.bad_request(f"can't use file of type {type(known).__name__} as {kind.__name__}")
        return known

    def _check_upload(self, value: UploadedFile) -> None:
        if not value.content:
            raise BotAPIError.bad_request("file must be non-empty")
        if len(value.content) > self.max_upload_bytes:
            raise BotAPIError(413, "Request Entity Too Large")

    def _document_to_send(self, value: UploadedFile | str) -> Document:
        """A new upload, or a file the bot uploaded or received before, by file_id."""
        if isinstance(value, str):
            return self._known_file(value, Document)
        self._check_upload(value)
        # Telegram names the type after the file name; the part's own Content-Type is a fallback.
        guessed, _ = mimetypes.guess_type(value.file_name, strict=False)
        mime_type = guessed or value.content_type or "application/octet-stream"
        return Document.upload(value.file_name, value.content, mime_type)

    def _photo_to_send(self, value: UploadedFile | str) -> Photo:
        """A new picture (PNG, JPEG, GIF or WebP, at most 10 MB), or a known photo by any size's file_id."""
        if isinstance(value, str):
            return self._known_file(value, Photo)
        self._check_upload(value)
        if len(value.content) > MAX_PHOTO_UPLOAD_BYTES:
            raise BotAPIError.bad_request("PHOTO_SAVE_FILE_INVALID")  # tdlib's word for a photo over 10 MB
        size = image_size(value.content)
        if size is None:
            raise BotAPIError.bad_request("IMAGE_PROCESS_FAILED")
        validate_photo_dimensions(*size)
        return Photo.upload(value.content, *size)

    async def _copy_message(self, params: dict[str, Any]) -> dict[str, int]:
        """A new message with the source's content (no forward header, no keyboard unless given)."""
        chat = self._chat(params["chat_id"])
        source_chat = self._chat(params["from_chat_id"], sending=False)
        source = source_chat.get(params["message_id"])
        if source is None:
            raise BotAPIError.bad_request("message to copy not found")
        if source.is_service:
            raise BotAPIError.bad_request("message can't be copied")
        placement = self._placement(chat, params)
        # A copy has no forward header, whatever the source was.
        content = {k: v for k, v in source.content.items() if k not in _CAPTION_FIELDS and k != "forward_origin"}
        if "text" not in content:  # a new caption replaces the original one, entities included
            if "caption" in params:
                content.update(_caption_content(params))
            else:
                content.update({k: v for k, v in source.content.items() if k in _CAPTION_FIELDS})
        markup = params.get("reply_markup")
        if markup is not None:
            validate_reply_markup(markup)
        paid = bool(params.get("allow_paid_broadcast"))
        self._take_send_slot(chat, paid=paid)
        copied = self._new_bot_message(
            chat,
            content,
            markup,
            None,
            source.document,
            photo=source.photo,
            placement=placement,
            paid=paid,
            protected=_protected(params),
        )
        return {"message_id": copied.message_id}

    def _message_to_edit(self, params: dict[str, Any]) -> tuple[Chat, ChatMessage]:
        if "chat_id" not in params:  # only inline_message_id given; the fake never issues those
            raise BotAPIError.bad_request("MESSAGE_ID_INVALID")
        chat = self._chat(params["chat_id"])
        message = chat.get(params["message_id"])
        if message is None or not message.from_bot or message.is_service:
            raise BotAPIError.bad_request("message to edit not found")
        return chat, message

    def _apply_edit(
        self,
        chat: Chat,
        message: ChatMessage,
        content: dict[str, Any],
        markup: dict[str, Any] | None,
        source_text: str | None,
    ) -> dict[str, Any]:
        """Shared tail of the edit methods: "not modified" check, flood control, then the edit.

        An edit without ``reply_markup`` removes the inline keyboard, as in Telegram.
        """
        if markup is not None:
            validate_reply_markup(markup, inline_only=True)
        elif message.reply_markup is not None and "inline_keyboard" not in message.reply_markup:
            markup = message.reply_markup  # a reply keyboard is not part of the message; edits keep it
        if content == message.content and _inline_rows(markup) == _inline_rows(message.reply_markup):
            raise BotAPIError.bad_request(NOT_MODIFIED_DESCRIPTION)
        self._take_send_slot(chat)
        message.apply_edit(content, markup, source_text)
        chat.changed.fire()
        self.stats.messages_edited += 1
        return message.to_api()

    async def _edit_message_text(self, params: dict[str, Any]) -> dict[str, Any]:
        chat, message = self._message_to_edit(params)
        if "text" not in message.content:
            raise BotAPIError.bad_request("there is no text in the message to edit")
        formatted = format_text(params["text"], params.get("parse_mode"), params.get("entities"))
        content: dict[str, Any] = {"text": formatted.text}
        if formatted.entities:
            content["entities"] = list(formatted.entities)
        return self._apply_edit(chat, message, content, params.get("reply_markup"), params["text"])

    async def _edit_message_reply_markup(self, params: dict[str, Any]) -> dict[str, Any]:
        chat, message = self._message_to_edit(params)
        return self._apply_edit(chat, message, dict(message.content), params.get("reply_markup"), None)

    async def _answer_callback_query(self, params: dict[str, Any]) -> bool:
        query = self._callback_queries.get(params["callback_query_id"])
        if query is None or query.answered:
            raise BotAPIError.bad_request("query is too old and response timeout expired or query ID is invalid")
        validate_callback_answer_text(params.get("text"))
        query.answered = True
        query.chat.callback_answers.append(
            CallbackAnswer(
                query_id=params["callback_query_id"],
                text=params.get("text"),
                show_alert=bool(params.get("show_alert", False)),
                url=params.get("url"),
                user_id=query.user_id,
            )
        )
        return True

    async def _delete_message(self, params: dict[str, Any]) -> bool:
        chat = self._chat(params["chat_id"], sending=False)
        message = chat.get(params["message_id"])
        if message is None:
            raise BotAPIError.bad_request("message to delete not found")
        message.deleted = True
        chat.changed.fire()
        return True

    async def _delete_messages(self, params: dict[str, Any]) -> bool:
        """Delete 1-100 messages at once. As documented, those not found are skipped; so, here, are those the bot
        may not delete: older than 48 hours, or someone else's while the bot is no admin of the group."""
        chat = self._chat(params["chat_id"], sending=False)
        ids = params["message_ids"]
        if not 1 <= len(ids) <= 100:
            raise BotAPIError.bad_request("message_ids must contain 1-100 identifiers")
        oldest = time.time() - DELETABLE_FOR
        for message_id in ids:
            message = chat.get(message_id)
            if message is None or message.deleted or message.date < oldest:
                continue
            if message.from_bot or chat.bot_status in ("creator", "administrator") or chat.type == "private":
                message.deleted = True
        chat.changed.fire()
        return True

    async def _send_chat_action(self, params: dict[str, Any]) -> bool:
        chat = self._chat(params["chat_id"])
        if params["action"] not in CHAT_ACTIONS:
            raise BotAPIError.bad_request("wrong parameter action in request")
        chat.chat_actions.append(params["action"])
        return True

    # -- forum topics ------------------------------------------------------------------------------
    # The bot is taken to be an admin with can_manage_topics. Each change posts the service
    # message Telegram posts in the topic; readers skip those, but they take message ids.

    def _forum(self, params: Mapping[str, Any]) -> Chat:
        chat = self._chat(params["chat_id"])
        if not chat.is_forum:
            raise BotAPIError.bad_request("the chat is not a forum")
        return chat

    def _topic(self, chat: Chat, thread_id: int) -> ForumTopic:
        if thread_id <= 0:
            raise BotAPIError.bad_request("invalid message thread identifier specified")
        topic = chat.topics.get(thread_id)
        if topic is None or topic.deleted:
            raise BotAPIError.bad_request("TOPIC_ID_INVALID")
        return topic

    def _post_service(self, chat: Chat, topic: ForumTopic, kind: str, payload: dict[str, Any]) -> None:
        root = chat.get(topic.thread_id)
        self._new_bot_message(chat, {kind: payload}, None, None, placement=Placement(topic.thread_id, True, root))

    async def _create_forum_topic(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._forum(params)
        name = clean_topic_name(params["name"])
        color = validate_icon_color(params.get("icon_color"))
        created: dict[str, Any] = {"name": name, "icon_color": color}
        if params.get("icon_custom_emoji_id"):
            created["icon_custom_emoji_id"] = params["icon_custom_emoji_id"]
        thread_id = chat.next_message_id()  # the topic is the thread of its creation message
        topic = ForumTopic(thread_id, name, color, params.get("icon_custom_emoji_id"))
        chat.topics[thread_id] = topic
        message = ChatMessage(
            message_id=thread_id,
            date=int(time.time()),
            chat=chat.api,
            sender=self.bot_user,
            from_bot=True,
            content={"forum_topic_created": created},
            thread_id=thread_id,
            is_topic_message=True,
        )
        chat.add(message)
        return topic.to_api()

    async def _edit_forum_topic(self, params: dict[str, Any]) -> bool:
        chat = self._forum(params)
        topic = self._topic(chat, params["message_thread_id"])
        edited: dict[str, Any] = {}
        if "name" in params:
            edited["name"] = clean_topic_name(params["name"])
        if "icon_custom_emoji_id" in params:
            edited["icon_custom_emoji_id"] = params["icon_custom_emoji_id"]
        if not edited:
            return True  # nothing to change, and Telegram does not mind
        name = edited.get("name", topic.name)
        emoji = edited.get("icon_custom_emoji_id", topic.icon_custom_emoji_id)
        if (name, emoji) == (topic.name, topic.icon_custom_emoji_id):
            raise BotAPIError.bad_request("TOPIC_NOT_MODIFIED")
        topic.name, topic.icon_custom_emoji_id = name, emoji
        self._post_service(chat, topic, "forum_topic_edited", edited)
        return True

    async def _set_topic_closed(self, params: dict[str, Any], closed: bool) -> bool:
        chat = self._forum(params)
        topic = self._topic(chat, params["message_thread_id"])
        if topic.closed == closed:
            raise BotAPIError.bad_request("TOPIC_NOT_MODIFIED")
        topic.closed = closed
        self._post_service(chat, topic, "forum_topic_closed" if closed else "forum_topic_reopened", {})
        return True

    async def _close_forum_topic(self, params: dict[str, Any]) -> bool:
        return await self._set_topic_closed(params, True)

    async def _reopen_forum_topic(self, params: dict[str, Any]) -> bool:
        return await self._set_topic_closed(params, False)

    async def _delete_forum_topic(self, params: dict[str, Any]) -> bool:
        """Delete the topic with every message in it; its thread id is then "message thread not found"."""
        chat = self._forum(params)
        topic = self._topic(chat, params["message_thread_id"])
        topic.deleted = True
        for message in chat.log:
            if message.topic_id == topic.thread_id:
                message.deleted = True
        chat.changed.fire()
        return True

    # -- membership --------------------------------------------------------------------------------

    async def _leave_chat(self, params: dict[str, Any]) -> bool:
        """The bot leaves a group or channel: no more updates from it, sends there are 403.

        As in Telegram, the bot then gets a ``my_chat_member`` update about itself (from itself,
        status ``left``). A private chat cannot be left.
        """
        chat = self._chat(params["chat_id"], sending=False)
        if chat.type == "private":
            raise BotAPIError.bad_request("chat member status can't be changed in private chats")
        if chat.id in self._blocked or chat.bot_status == "kicked":
            raise BotAPIError(403, _FORBIDDEN_BY_CHAT_TYPE[chat.type])
        if not chat.bot_present:
            raise BotAPIError(403, f"Forbidden: bot is not a member of the {chat.type} chat")
        old_status, chat.bot_status = chat.bot_status, "left"
        # Not attributed to the chat: it is news to the bot, not something the bot must react to there.
        self.push_update("my_chat_member", self.membership_change(chat, self.bot_user, old_status, "left"))
        chat.changed.fire()
        return True


def _as_int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None


_CAPTION_FIELDS: Final = frozenset({"caption", "caption_entities"})

#: ChatMemberAdministrator's required rights, all given (False or True) in every admin the fake describes.
#: can_send_welcome_messages is newer than the reference copy (Bot API 10.1): aiogram 3.31 (Bot API 10.3) cannot
#: parse an administrator without it, so Telegram sends it; tests/test_fakebotapi.py knows it as such.
_ADMIN_RIGHTS: Final = (
    "can_be_edited", "is_anonymous", "can_manage_chat", "can_delete_messages", "can_manage_video_chats",
    "can_restrict_members", "can_promote_members", "can_change_info", "can_invite_users", "can_post_stories",
    "can_edit_stories", "can_delete_stories", "can_send_welcome_messages",
)  # fmt: skip


def _protected(params: Mapping[str, Any]) -> bool:
    return bool(params.get("protect_content"))


def _caption_content(params: Mapping[str, Any]) -> dict[str, Any]:
    """``caption``/``caption_entities`` message fields from a call's caption parameters (may be none)."""
    if "caption" not in params:
        return {}
    formatted = format_text(
        params["caption"],
        params.get("parse_mode"),
        params.get("caption_entities"),
        max_length=MAX_CAPTION_LENGTH,
        allow_empty=True,
    )
    content: dict[str, Any] = {"caption": formatted.text} if formatted.text else {}
    if formatted.entities:
        content["caption_entities"] = list(formatted.entities)
    return content


#: Calls the fake does not take in a webhook answer: they would stop the very delivery that carries them.
_NOT_IN_AN_ANSWER: Final = frozenset({"setwebhook", "deletewebhook", "getupdates"})


async def _answer_params(response: aiohttp.ClientResponse) -> dict[str, Any] | None:
    """The parameters of a webhook answer's body (JSON, a form, or multipart with files, as aiogram sends it)."""
    try:
        if response.content_type == "application/json":
            body = await response.json()
            return body if isinstance(body, dict) else None
        if response.content_type == "application/x-www-form-urlencoded":
            return dict(parse_qsl(await response.text()))
        if response.content_type == "multipart/form-data":
            params: dict[str, Any] = {}
            reader = aiohttp.MultipartReader.from_response(response)
            while (part := await reader.next()) is not None:
                if not isinstance(part, aiohttp.BodyPartReader) or part.name is None:
                    continue
                content = bytes(await part.read())
                if part.filename is None:
                    params[part.name] = content.decode("utf-8", errors="replace")
                else:
                    kind = part.headers.get(aiohttp.hdrs.CONTENT_TYPE, "application/octet-stream")
                    params[part.name] = UploadedFile(part.name, part.filename, kind, content)
            return params
    except (ValueError, aiohttp.ClientError):
        return None  # Telegram ignores an answer it cannot read
    return None


def _update_kind(update: Mapping[str, Any]) -> str:
    return next(key for key in update if key != "update_id")


def _inline_rows(markup: Mapping[str, Any] | None) -> list[Any]:
    """An inline keyboard's rows for comparison; no markup and an empty keyboard are the same."""
    if not markup:
        return []
    rows = markup.get("inline_keyboard")
    return rows if isinstance(rows, list) else []
