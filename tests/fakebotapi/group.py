"""Group chats: an organisation's intake chat where the bot posts cards and members tap them.

A :class:`FakeGroup` is the test's view of one group or supergroup (``server.group(...)``): it
reads what the bot posted there exactly as a :class:`~tests.fakebotapi.user.FakeUser` reads a
private chat (``messages``, ``next_message``, ``wait_for``, ``wait_idle``, ``callback_answers``),
because both are :class:`~tests.fakebotapi.chat.ChatReader`.

People act in the group through :class:`FakeMember` (``group.member(...)``): ``send`` posts in
the group, ``tap`` taps a button on a group message. A member *is* an ordinary scripted user
too: :attr:`FakeMember.private` is the very :class:`FakeUser` that ``server.user(member.id)``
returns, for the member's private chat with the bot. Non-members can tap group buttons with
``server.user(...).tap(data=..., message=group_message)``, and anyone can forge callback data
with ``forge=True``: the bot must check who taps and what they send.

Forum supergroups (``server.group(..., forum=True)``) have topics: the bot opens them with
createForumTopic, members post in one with ``member.send(..., thread_id=N)`` or by replying to
a message in it, and the test reads one topic through :meth:`FakeGroup.topic`, a
:class:`FakeTopic` that waits like any reader but sees only that topic's bot messages::

    staff = server.group(title="Staff", forum=True)
    topic = await staff.wait_for_topic("Ana")       # once the bot created it
    card = await topic.next_message()                # what the bot posted in that topic
    await luis.send("Hola Ana", thread_id=topic.thread_id)
    await luis.reply("¿Y el pasaporte?", to=card)    # same topic, replying to the card

The bot's own membership: ``server.group(..., with_bot=False)`` is a group without the bot, and
``await group.add_bot(by=member)`` is someone adding it (a ``my_chat_member`` update, then the
"joined" service message); ``remove_bot`` kicks it. Once the bot is out (leaveChat, or kicked) it
gets nothing from the group and its sends there are 403::

    stranger = server.group(title="Random", with_bot=False)
    await stranger.add_bot(by=stranger.member(first_name="Eve"))
    await stranger.wait_until(lambda: not stranger.bot_present)   # the bot called leaveChat

Not simulated: privacy mode (the bot receives every member message, as if it were an admin),
member lists on the Bot API side (getChatMember...), people joining and leaving (only the bot
does), and permissions: the bot may manage topics (an admin with can_manage_topics), members
may not, so they cannot post in a closed topic.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from tests.fakebotapi.chat import CallbackAnswer, Chat, ChatMessage, ChatReader, ForumTopic, Placement
from tests.fakebotapi.user import ChatSender, FakeUser

if TYPE_CHECKING:
    from tests.fakebotapi.server import FakeBotAPI

__all__ = ["FakeGroup", "FakeMember", "FakeTopic"]


class FakeGroup(ChatReader):
    """A group chat with the bot in it, read like a private chat; people act via :meth:`member`."""

    def __init__(
        self,
        server: FakeBotAPI,
        chat_id: int,
        title: str,
        *,
        supergroup: bool = True,
        forum: bool = False,
        with_bot: bool = True,
    ) -> None:
        if chat_id >= 0:
            raise ValueError(f"group chat ids are negative, got {chat_id}")
        if forum and not supergroup:
            raise ValueError("only supergroups can be forums (have topics)")
        self.server = server
        self.id = chat_id
        self.title = title
        api: dict[str, Any] = {"id": chat_id, "type": "supergroup" if supergroup else "group", "title": title}
        if forum:
            api["is_forum"] = True
        self.chat = Chat(api)
        self.chat.bot_status = ("administrator" if forum else "member") if with_bot else "left"
        self._cursor = 0
        self._members: dict[int, FakeMember] = {}
        self._topic_readers: dict[int, FakeTopic] = {}

    def __repr__(self) -> str:
        return f"<FakeGroup {self.title!r} id={self.id} members={[m.first_name for m in self._members.values()]}>"

    @property
    def chat_name(self) -> str:
        return f"the {self.chat.type} {self.title!r}"

    @property
    def members(self) -> Mapping[int, FakeMember]:
        return dict(self._members)

    def member(
        self,
        user_id: int | None = None,
        first_name: str = "Ana",
        language_code: str | None = "es",
        *,
        last_name: str | None = None,
        username: str | None = None,
        is_bot: bool = False,
    ) -> FakeMember:
        """Add a person to the group (or return the member with that id) and return them.

        The person is ``server.user(user_id, ...)``: an existing user with that id joins as is,
        otherwise a new user is created, private chat included.
        """
        if user_id is not None and user_id in self._members:
            return self._members[user_id]
        user = self.server.user(
            user_id, first_name, language_code, last_name=last_name, username=username, is_bot=is_bot
        )
        member = self._members[user.id] = FakeMember(self, user)
        return member

    def is_member(self, user_id: int) -> bool:
        return user_id in self._members

    # -- the bot's membership ----------------------------------------------------------------------

    @property
    def bot_status(self) -> str:
        """``member``, ``administrator``, ``left`` (never added, or it left) or ``kicked``."""
        return self.chat.bot_status

    @property
    def bot_present(self) -> bool:
        return self.chat.bot_present

    async def add_bot(self, by: ChatSender, *, admin: bool = False) -> int:
        """``by`` adds the bot to the group (as an admin if ``admin``); returns the my_chat_member update's id.

        The bot gets ``my_chat_member`` (its status from ``left`` or ``kicked`` to ``member`` or
        ``administrator``, ``from`` the person who added it), then the group's "joined" service
        message (``new_chat_members``), as from Telegram.
        """
        if self.chat.bot_present:
            raise AssertionError(f"the bot is already in {self.chat_name} (status {self.bot_status})")
        old, new = self.chat.bot_status, "administrator" if admin else "member"
        self.chat.bot_status = new
        self.chat.changed.fire()
        update_id = self.server.push_update(
            "my_chat_member", self.server.membership_change(self.chat, by.api, old, new), chat=self.chat
        )
        joined = self.chat.post(by.api, {"new_chat_members": [dict(self.server.bot_user)]})
        self.server.push_update("message", joined.to_api(), chat=self.chat)
        return update_id

    async def remove_bot(self, by: ChatSender) -> int:
        """``by`` removes (bans) the bot: ``my_chat_member`` to ``kicked``; sends there are then 403 "kicked"."""
        if not self.chat.bot_present:
            raise AssertionError(f"the bot is not in {self.chat_name} (status {self.bot_status})")
        old, self.chat.bot_status = self.chat.bot_status, "kicked"
        self.chat.changed.fire()
        change = self.server.membership_change(self.chat, by.api, old, "kicked")
        return self.server.push_update("my_chat_member", change, chat=self.chat)

    # -- forum topics ------------------------------------------------------------------------------

    @property
    def is_forum(self) -> bool:
        return self.chat.is_forum

    @property
    def topics(self) -> list[ForumTopic]:
        """The group's topics that were not deleted, oldest first (closed ones included)."""
        return [topic for topic in self.chat.topics.values() if not topic.deleted]

    def topic(self, thread_id: int | None = None, *, name: str | None = None) -> FakeTopic:
        """The reader of one topic, by thread id or by exact name (the oldest such topic).

        The same thread id always gives the same :class:`FakeTopic`, so its read cursor persists.
        Fails the test if there is no such topic (see :meth:`wait_for_topic` to wait for one).
        """
        if (thread_id is None) == (name is None):
            raise TypeError("topic() needs exactly one of thread_id or name=")
        if name is not None:
            found = next((t for t in self.topics if t.name == name), None)
            if found is None:
                raise AssertionError(f"{self.chat_name} has no topic named {name!r}; topics: {self.topics}")
            thread_id = found.thread_id
        assert thread_id is not None
        if thread_id not in self.chat.topics:
            raise AssertionError(f"{self.chat_name} has no topic #{thread_id}; topics: {self.topics}")
        reader = self._topic_readers.get(thread_id)
        if reader is None:
            reader = self._topic_readers[thread_id] = FakeTopic(self, thread_id)
        return reader

    def messages_in(self, thread_id: int) -> list[ChatMessage]:
        """The bot's messages in one topic that still exist (without moving any read cursor)."""
        return [m for m in self.messages if m.topic_id == thread_id]

    async def wait_for_topic(
        self,
        name: str | Callable[[ForumTopic], bool] | None = None,
        *,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> FakeTopic:
        """Wait until a live topic with that exact name (or matching the predicate, or any) exists; the oldest wins."""
        deadline = time.monotonic() + timeout
        while True:
            for topic in self.topics:
                if name is None or (topic.name == name if isinstance(name, str) else name(topic)):
                    return self.topic(topic.thread_id)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                what = "any topic" if name is None else f"topic {name!r}" if isinstance(name, str) else "a topic"
                raise TimeoutError(
                    f"Waited {timeout:.1f}s in {self.chat_name} for {what}; topics: {self.topics}\n{self.describe()}"
                )
            await self.chat.changed.wait(remaining)

    def describe(self) -> str:
        names = ", ".join(f"{m.first_name} ({m.id})" for m in self._members.values()) or "none"
        text = f"{super().describe()}\n  members: {names}"
        if self.is_forum:
            text += f"\n  topics: {self.topics or 'none'}"
        return text


class FakeTopic(ChatReader):
    """One forum topic of a :class:`FakeGroup`, read like a chat of its own.

    ``messages``, ``next_message``, ``wait_for``, ``wait_idle``... see only the bot's messages in
    this topic, with a read cursor independent of the group's and of other topics'. ``wait_idle``
    still looks at the whole group's updates and activity (Telegram has no per-topic notion).
    """

    def __init__(self, group: FakeGroup, thread_id: int) -> None:
        self.group = group
        self.server = group.server
        self.chat = group.chat
        self.thread_id = thread_id
        self._cursor = 0

    def __repr__(self) -> str:
        return f"<FakeTopic #{self.thread_id} {self.name!r} of {self.group.title!r}>"

    @property
    def info(self) -> ForumTopic:
        """The topic's current state: name, icon colour, closed, deleted."""
        return self.chat.topics[self.thread_id]

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def closed(self) -> bool:
        return self.info.closed

    @property
    def deleted(self) -> bool:
        return self.info.deleted

    @property
    def chat_name(self) -> str:
        return f"topic #{self.thread_id} {self.name!r} of {self.group.chat_name}"

    def _feed(self) -> list[ChatMessage]:
        return [m for m in self.chat.bot_log if m.topic_id == self.thread_id]

    def describe(self) -> str:
        state = "deleted" if self.deleted else "closed" if self.closed else "open"
        return f"{super().describe()}\n  topic is {state}"


class FakeMember(ChatSender):
    """One person in a :class:`FakeGroup`, acting in the group.

    ``send``/``send_photo``/... post in the group (``thread_id=`` in a forum topic), ``reply``
    replies to a group message, ``edit`` edits the member's own message and ``tap`` taps group
    buttons; the bot's messages are read from :attr:`group` (or one of its topics). For the
    person's private chat with the bot use :attr:`private`, the same FakeUser that
    ``server.user(member.id)`` returns.
    """

    def __init__(self, group: FakeGroup, user: FakeUser) -> None:
        self.group = group
        self.private = user
        """The member as an ordinary user: their private chat with the bot."""
        self.server = user.server
        self.id = user.id
        self.first_name = user.first_name
        self.phone_number = user.phone_number
        self.api: dict[str, Any] = user.api

    def __repr__(self) -> str:
        return f"<FakeMember {self.first_name} id={self.id} of {self.group.title!r}>"

    def outbox(self) -> Chat:
        return self.group.chat

    @property
    def callback_answers(self) -> list[CallbackAnswer]:
        """The bot's answers to this member's taps in the group, oldest first."""
        return [answer for answer in self.group.callback_answers if answer.user_id == self.id]

    async def close_topic(self, thread_id: int) -> int:
        """Close a topic from the Telegram app: it takes no more messages ("TOPIC_CLOSED") until reopened, and the
        bot gets the "forum_topic_closed" service message from this member. Returns that update's id."""
        topic = self.group.chat.topics[thread_id]
        topic.closed = True
        root = self.group.chat.get(thread_id)
        message = self.group.chat.post(self.api, {"forum_topic_closed": {}}, placement=Placement(thread_id, True, root))
        return self.server.push_update("message", message.to_api(), chat=self.group.chat)

    def delete_topic(self, thread_id: int) -> None:
        """Delete a topic with everything in it from the Telegram app. Telegram tells the bot nothing."""
        self.group.chat.topics[thread_id].deleted = True
        for message in self.group.chat.log:
            if message.thread_id == thread_id and message.is_topic_message:
                message.deleted = True
        self.group.chat.changed.fire()

    async def tap(
        self,
        label: str | None = None,
        *,
        data: str | None = None,
        message: ChatMessage | None = None,
        forge: bool = False,
    ) -> str:
        """Tap an inline button on a group message (default: the group's latest one with a keyboard).

        The callback_query comes from this member, about the group message. ``data``, ``label``
        and ``forge`` work as in :meth:`FakeUser.tap`. Returns the query id.
        """
        target = self.group._tap_target(message, self.first_name)
        return await self.private.tap(label, data=data, message=target, forge=forge)
