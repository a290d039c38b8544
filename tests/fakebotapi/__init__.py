"""A fake Telegram Bot API for end-to-end tests of the real bot over loopback HTTP.

Typical use::

    async with FakeBotAPI() as server:
        bot = Bot(server.token, session=AiohttpSession(api=TelegramAPIServer.from_base(server.base_url)))
        ana = server.user(first_name="Ana", language_code="es")
        await ana.send("/start")
        reply = await ana.next_message()
        await ana.tap("Sí")

Group chats (an organisation's intake chat) work the same way::

        intake = server.group(title="Intake")          # FakeGroup, id -1001000000001
        maria = intake.member(first_name="María")     # FakeMember, also a user: maria.private
        card = await intake.next_message()            # what the bot posted in the group
        await maria.tap("Accept")                     # callback_query from María about the card
        await maria.private.next_message()            # what the bot then told her privately
        await ana.tap(data="accept:7", message=card)  # a non-member taps the card anyway
        await maria.tap(data="accept:8", forge=True)  # callback_data that is on no button

Forum supergroups have topics, one per conversation handed to staff::

        staff = server.group(title="Staff", forum=True)     # is_forum; the bot may manage topics
        topic = await staff.wait_for_topic("Ana")           # FakeTopic, once createForumTopic ran
        copy = await topic.next_message()                   # the bot's messages in that topic only
        await luis.send("Hola", thread_id=topic.thread_id)  # luis = staff.member(...)
        await luis.reply("¿Y la foto?", to=copy)            # reply_to_message, same topic
        await luis.edit(luis.last_sent, "¿Y la foto?!")     # an edited_message update
        await ana.send_document("cédula.pdf", b"%PDF")      # also send_location; all copyable

Documents and photos the bot sends keep their bytes (``message.document.content``,
``message.photo.content``); the bot can send a user's photo or document again by file_id::

        await ana.send_photo(caption="pasaporte")                 # a Photo, three sizes
        file_id = ana.last_sent.photo.file_id                     # what the bot got in the update
        await bot.send_photo(ben.id, file_id, caption="<b>Aviso</b>", parse_mode="HTML")
        await bot.send_photo(ben.id, BufferedInputFile(png_image(640, 480), "a.png"))  # a real picture
        received = await ben.next_message()                      # .photo (Photo), .caption == "Aviso"

Broadcasts: thousands of recipients, Telegram's flood control, people who left::

        people = [server.user(first_name=f"P{i}") for i in range(10_000)]  # ~0.15 s, ~2 KB each
        server.set_rate_limits(global_per_second=30)    # token buckets, a burst of one second's worth
        server.block(people[0].id)                      # 403 "Forbidden: bot was blocked by the user"
        server.deactivate(people[1].id)                 # 403 "Forbidden: user is deactivated"
        ...                                             # the bot broadcasts; 429s carry retry_after
        counts = server.deliveries()                    # Counter: private chat id -> messages delivered
        assert all(counts[p.id] == 1 for p in people[2:])           # nobody missed, nobody twice
        server.deliveries(lambda m: m.photo is not None)           # count only some messages
        times = server.delivery_times()                 # time.monotonic() of each delivery, in order
        server.stats.rate_limited, server.stats.paid_messages  # 429s given; allow_paid_broadcast sends

The bot's own membership: added to a group or channel it may leave (leaveChat), and channels post::

        stranger = server.group(title="Random", with_bot=False)      # the bot is not in it yet
        await stranger.add_bot(by=stranger.member(first_name="Eve"))  # my_chat_member + "joined" message
        assert stranger.bot_status == "left"                           # once the bot called leaveChat
        news = server.channel(title="Noticias")                      # FakeChannel; the bot an admin
        await news.post("Hoy no abrimos")                             # a channel_post, no ``from``
        await news.edit_post(news.last_post, "Hoy abrimos")           # edited_channel_post

A send with ``allow_paid_broadcast=true`` is metered against ``set_rate_limits(...,
paid_per_second=1000)`` instead of the global limit, as Telegram bills it instead of refusing it.

Modules: :mod:`~tests.fakebotapi.server` is the protocol side, :mod:`~tests.fakebotapi.user`
scripted users, :mod:`~tests.fakebotapi.group` groups and their members,
:mod:`~tests.fakebotapi.channel` channels,
:mod:`~tests.fakebotapi.chat` the chat model and the reading/waiting API users and groups
share, :mod:`~tests.fakebotapi.schema` the method table and Telegram's validation rules,
:mod:`~tests.fakebotapi.webhook` webhook delivery (after setWebhook, updates are POSTed to the bot
instead of waiting for getUpdates; ``server.webhook.stats`` counts what happened).
"""

from tests.fakebotapi.channel import FakeChannel
from tests.fakebotapi.chat import (
    Button,
    CallbackAnswer,
    ChatMessage,
    ChatReader,
    Document,
    ForumTopic,
    MessageVersion,
    Photo,
)
from tests.fakebotapi.group import FakeGroup, FakeMember, FakeTopic
from tests.fakebotapi.schema import BotAPIError, png_image
from tests.fakebotapi.server import DEFAULT_TOKEN, FakeBotAPI, InjectedFault, RecordedCall, ServerStats
from tests.fakebotapi.user import FakeUser

__all__ = [
    "DEFAULT_TOKEN",
    "BotAPIError",
    "Button",
    "CallbackAnswer",
    "ChatMessage",
    "ChatReader",
    "Document",
    "FakeBotAPI",
    "FakeChannel",
    "FakeGroup",
    "FakeMember",
    "FakeTopic",
    "FakeUser",
    "ForumTopic",
    "InjectedFault",
    "MessageVersion",
    "Photo",
    "RecordedCall",
    "ServerStats",
    "png_image",
]
