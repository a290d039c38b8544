"""Channels: a place the bot can be added to, where posts are made on behalf of the channel itself.

A :class:`FakeChannel` (``server.channel(...)``) posts with :meth:`~FakeChannel.post`, which the
bot receives as a ``channel_post`` update: a Message with ``sender_chat`` (the channel) and no
``from``; :meth:`~FakeChannel.edit_post` makes an ``edited_channel_post``. Bots can only be
channel admins, so :meth:`~FakeChannel.add_bot` makes the bot one (a ``my_chat_member`` update).
What the bot sends to the channel is read like any chat (``messages``, ``wait_idle``...)::

    news = server.channel(title="Noticias", with_bot=False)
    await news.add_bot(by=server.user(first_name="Owner"))
    await news.post("Nuevas fechas")
    await news.wait_idle()            # the bot should not answer a channel
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.fakebotapi.chat import Chat, ChatMessage, ChatReader
from tests.fakebotapi.user import ChatSender, _text_content

if TYPE_CHECKING:
    from tests.fakebotapi.server import FakeBotAPI

__all__ = ["FakeChannel"]


class FakeChannel(ChatReader):
    """A channel; its posts come from the channel itself, and the bot may be one of its admins."""

    def __init__(self, server: FakeBotAPI, chat_id: int, title: str, *, with_bot: bool = True) -> None:
        if chat_id >= 0:
            raise ValueError(f"channel ids are negative, got {chat_id}")
        self.server = server
        self.id = chat_id
        self.title = title
        self.chat = Chat({"id": chat_id, "type": "channel", "title": title})
        self.chat.bot_status = "administrator" if with_bot else "left"
        self._cursor = 0

    def __repr__(self) -> str:
        return f"<FakeChannel {self.title!r} id={self.id} bot={self.bot_status}>"

    @property
    def chat_name(self) -> str:
        return f"the channel {self.title!r}"

    @property
    def bot_status(self) -> str:
        return self.chat.bot_status

    @property
    def bot_present(self) -> bool:
        return self.chat.bot_present

    async def post(self, text: str) -> int:
        """Publish a text post; returns the ``channel_post`` update's id (none reaches a bot not in the channel)."""
        message = self.chat.post({}, _text_content(text), sender_chat=self.chat.api)
        return self.server.push_update("channel_post", message.to_api(), chat=self.chat)

    async def edit_post(self, message: ChatMessage, new_text: str) -> int:
        """Edit one of the channel's text posts; returns the ``edited_channel_post`` update's id."""
        if self.chat.get(message.message_id) is not message or message.sender_chat is None:
            raise AssertionError(f"{message!r} is not a post of {self.chat_name}")
        content: dict[str, Any] = _text_content(new_text)
        if content == message.content:
            raise AssertionError(f"editing {message!r} to the same text changes nothing; Telegram sends no update")
        message.apply_edit(content, message.reply_markup, None)
        self.chat.changed.fire()
        return self.server.push_update("edited_channel_post", message.to_api(), chat=self.chat)

    @property
    def last_post(self) -> ChatMessage:
        """The channel's latest post (not the bot's messages)."""
        posts = [m for m in self.chat.log if m.sender_chat is not None and not m.deleted]
        if not posts:
            raise AssertionError(f"nothing was posted in {self.chat_name}")
        return posts[-1]

    async def add_bot(self, by: ChatSender) -> int:
        """``by`` (the channel's owner) makes the bot an admin; returns the ``my_chat_member`` update's id."""
        if self.chat.bot_present:
            raise AssertionError(f"the bot is already in {self.chat_name}")
        old, self.chat.bot_status = self.chat.bot_status, "administrator"
        self.chat.changed.fire()
        change = self.server.membership_change(self.chat, by.api, old, "administrator")
        return self.server.push_update("my_chat_member", change, chat=self.chat)
