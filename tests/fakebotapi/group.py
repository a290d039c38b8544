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

Not simulated: privacy mode (the bot receives every member message, as if it were an admin),
member lists on the Bot API side (getChatMember...) and join/leave service messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tests.fakebotapi.chat import CallbackAnswer, Chat, ChatMessage, ChatReader
from tests.fakebotapi.user import ChatSender, FakeUser

if TYPE_CHECKING:
    from tests.fakebotapi.server import FakeBotAPI

__all__ = ["FakeGroup", "FakeMember"]


class FakeGroup(ChatReader):
    """A group chat with the bot in it, read like a private chat; people act via :meth:`member`."""

    def __init__(self, server: FakeBotAPI, chat_id: int, title: str, *, supergroup: bool = True) -> None:
        if chat_id >= 0:
            raise ValueError(f"group chat ids are negative, got {chat_id}")
        self.server = server
        self.id = chat_id
        self.title = title
        self.chat = Chat({"id": chat_id, "type": "supergroup" if supergroup else "group", "title": title})
        self._cursor = 0
        self._members: dict[int, FakeMember] = {}

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
    ) -> FakeMember:
        """Add a person to the group (or return the member with that id) and return them.

        The person is ``server.user(user_id, ...)``: an existing user with that id joins as is,
        otherwise a new user is created, private chat included.
        """
        if user_id is not None and user_id in self._members:
            return self._members[user_id]
        user = self.server.user(user_id, first_name, language_code, last_name=last_name, username=username)
        member = self._members[user.id] = FakeMember(self, user)
        return member

    def is_member(self, user_id: int) -> bool:
        return user_id in self._members

    def describe(self) -> str:
        names = ", ".join(f"{m.first_name} ({m.id})" for m in self._members.values()) or "none"
        return f"{super().describe()}\n  members: {names}"


class FakeMember(ChatSender):
    """One person in a :class:`FakeGroup`, acting in the group.

    ``send``/``send_photo``/... post in the group and ``tap`` taps group buttons; the bot's
    messages are read from :attr:`group`. For the person's private chat with the bot use
    :attr:`private`, the same FakeUser that ``server.user(member.id)`` returns.
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
