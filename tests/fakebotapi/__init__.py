"""A fake Telegram Bot API for end-to-end tests of the real bot over loopback HTTP.

Typical use::

    async with FakeBotAPI() as server:
        bot = Bot(server.token, session=AiohttpSession(api=TelegramAPIServer.from_base(server.base_url)))
        ana = server.user(first_name="Ana", language_code="es")
        await ana.send("/start")
        reply = await ana.next_message()
        await ana.tap("Sí")

See :mod:`tests.fakebotapi.server` for the protocol side and :mod:`tests.fakebotapi.user` for
scripted users.
"""

from tests.fakebotapi.schema import BotAPIError
from tests.fakebotapi.server import DEFAULT_TOKEN, FakeBotAPI, InjectedFault, RecordedCall, ServerStats
from tests.fakebotapi.user import Button, CallbackAnswer, ChatMessage, FakeUser, MessageVersion

__all__ = [
    "DEFAULT_TOKEN",
    "BotAPIError",
    "Button",
    "CallbackAnswer",
    "ChatMessage",
    "FakeBotAPI",
    "FakeUser",
    "InjectedFault",
    "MessageVersion",
    "RecordedCall",
    "ServerStats",
]
