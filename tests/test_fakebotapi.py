"""Tests of the fake Telegram Bot API itself, through real HTTP.

Every end-to-end test of the bot trusts this fake to behave like Telegram, so its behaviour is
pinned here twice: with a bare aiohttp client (the wire format) and with a real aiogram ``Bot``
(what the production code will actually see, including aiogram's exception mapping).
"""

from __future__ import annotations

import asyncio
import json
import struct
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiogram import Bot, Dispatcher, F
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.filters import CommandStart
from aiogram.methods import GetUpdates
from aiogram.types import (
    BotCommand,
    BotCommandScopeChat,
    BufferedInputFile,
    CallbackQuery,
    ChatMemberAdministrator,
    ChatMemberBanned,
    ChatMemberLeft,
    ChatMemberMember,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    ReplyParameters,
    Update,
)

from bot.telegram.session import LeanSession
from tests.fakebotapi import FakeBotAPI, FakeChannel, FakeGroup, FakeUser, png_image
from tests.fakebotapi.schema import METHODS, UPDATE_TYPES, image_size

REFERENCE = Path(__file__).resolve().parents[2] / "shared/reference/telegram-bot-api/api.min.json"


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture
async def server() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as fake:
        yield fake


@pytest.fixture(params=[AiohttpSession, LeanSession], ids=["aiogram-session", "lean-session"])
async def bot(server: FakeBotAPI, request: pytest.FixtureRequest) -> AsyncIterator[Bot]:
    """A real aiogram Bot, with aiogram's own session and with the bot's (bot.telegram.session): every test through
    it shows the fake's behaviour and that the bot's session sees exactly what aiogram's does."""
    session = request.param(api=TelegramAPIServer.from_base(server.base_url))
    real_bot = Bot(server.token, session=session)
    try:
        yield real_bot
    finally:
        await real_bot.session.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def ana(server: FakeBotAPI) -> FakeUser:
    return server.user(first_name="Ana", language_code="es")


async def call(
    http: aiohttp.ClientSession, server: FakeBotAPI, method: str, token: str | None = None, **params: Any
) -> tuple[int, dict[str, Any]]:
    """POST a call as a urlencoded form, JSON-encoding complex values the way aiogram does."""
    form = {k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()}
    url = f"{server.base_url}/bot{token or server.token}/{method}"
    async with http.post(url, data=form) as response:
        return response.status, await response.json()


def keyboard(*labels_and_data: tuple[str, str]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text=label, callback_data=data)] for label, data in labels_and_data]
    )


# -- protocol basics ------------------------------------------------------------------------------


async def test_get_me_over_plain_http(server: FakeBotAPI, http: aiohttp.ClientSession) -> None:
    """getMe answers with Telegram's envelope and the bot user whose id is the token's prefix."""
    async with http.get(f"{server.base_url}/bot{server.token}/getMe") as response:
        assert response.status == 200
        body = await response.json()
    assert body["ok"] is True
    assert body["result"]["id"] == 123456
    assert body["result"]["is_bot"] is True
    assert body["result"]["username"] == "puente_test_bot"
    assert {"can_join_groups", "can_read_all_group_messages", "supports_inline_queries"} <= body["result"].keys()


async def test_get_me_through_aiogram(bot: Bot) -> None:
    """aiogram's real AiohttpSession reaches the fake via TelegramAPIServer.from_base and parses User."""
    me = await bot.get_me()
    assert me.id == bot.id
    assert me.username == "puente_test_bot"
    assert me.first_name == "Puente Test"


async def test_wrong_token_and_unknown_method(server: FakeBotAPI, http: aiohttp.ClientSession) -> None:
    """A wrong token is 401 Unauthorized and an unknown method is 404 Not Found, as JSON errors."""
    status, body = await call(http, server, "getMe", token="999:wrong")
    assert (status, body) == (401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
    status, body = await call(http, server, "sendTelepathy")
    assert (status, body) == (404, {"ok": False, "error_code": 404, "description": "Not Found"})


async def test_wrong_token_raises_unauthorized_in_aiogram(server: FakeBotAPI) -> None:
    """aiogram maps the fake's 401 to TelegramUnauthorizedError, like a revoked token in production."""
    session = AiohttpSession(api=TelegramAPIServer.from_base(server.base_url))
    wrong = Bot("42:not-the-token", session=session)
    try:
        with pytest.raises(TelegramUnauthorizedError):
            await wrong.get_me()
    finally:
        await wrong.session.close()


async def test_params_from_json_query_string_and_any_case(
    server: FakeBotAPI, http: aiohttp.ClientSession, ana: FakeUser
) -> None:
    """Parameters are read from a JSON body or the query string, and method names ignore case."""
    url = f"{server.base_url}/bot{server.token}/SENDMESSAGE"
    async with http.post(url, json={"chat_id": ana.id, "text": "json"}) as response:
        assert response.status == 200
    async with http.get(url, params={"chat_id": str(ana.id), "text": "query"}) as response:
        assert response.status == 200
    assert [m.text for m in ana.messages] == ["json", "query"]
    assert server.requests_per_method()["sendMessage"] == 2


async def test_missing_required_fields_are_rejected(
    server: FakeBotAPI, http: aiohttp.ClientSession, ana: FakeUser
) -> None:
    """A missing required parameter is a 400 worded like Telegram's ("... is empty")."""
    status, body = await call(http, server, "sendMessage", chat_id=ana.id)
    assert status == 400
    assert body["description"] == "Bad Request: message text is empty"
    status, body = await call(http, server, "sendMessage", text="hola")
    assert body["description"] == "Bad Request: chat_id is empty"
    status, body = await call(http, server, "sendMessage", chat_id=ana.id, text="   ")
    assert body["description"] == "Bad Request: message text is empty"


async def test_unknown_chat_is_not_found(bot: Bot) -> None:
    """Sending to a chat no scripted user created is 400 "chat not found"."""
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(chat_id=987654321, text="hola")


# -- sending and reading ----------------------------------------------------------------------------


async def test_send_message_round_trip(bot: Bot, ana: FakeUser) -> None:
    """sendMessage returns a Message aiogram parses, and the user sees the visible text and buttons."""
    sent = await bot.send_message(
        ana.id,
        "<b>Hola</b> &amp; bienvenida",
        parse_mode="HTML",
        reply_markup=keyboard(("Sí", "yes"), ("No", "no")),
    )
    assert isinstance(sent, Message)
    assert sent.chat.id == ana.id
    assert sent.from_user is not None
    assert sent.from_user.id == bot.id
    assert sent.text == "Hola & bienvenida"
    assert sent.html_text == "<b>Hola</b> &amp; bienvenida"
    assert isinstance(sent.reply_markup, InlineKeyboardMarkup)
    assert [[b.callback_data for b in row] for row in sent.reply_markup.inline_keyboard] == [["yes"], ["no"]]

    received = await ana.next_message(timeout=1)
    assert received.message_id == sent.message_id
    assert received.text == "Hola & bienvenida"
    assert received.buttons == [[("Sí", "yes")], [("No", "no")]]
    assert ana.buttons() == ["Sí", "No"]


async def test_message_ids_are_per_chat_and_increasing(bot: Bot, server: FakeBotAPI, ana: FakeUser) -> None:
    """Message ids increase within a chat, shared with the user's own messages, independently per chat."""
    ben = server.user(first_name="Ben", language_code="en")
    first = await bot.send_message(ana.id, "1")
    await ana.send("hola")
    second = await bot.send_message(ana.id, "2")
    other = await bot.send_message(ben.id, "1")
    assert (first.message_id, second.message_id, other.message_id) == (1, 3, 1)


async def test_html_entities_use_utf16_offsets(bot: Bot, ana: FakeUser) -> None:
    """HTML becomes entities with UTF-16 offsets, so text after an emoji is still formatted correctly."""
    sent = await bot.send_message(ana.id, '😀 <b>hola</b> <a href="https://example.org">web</a>', parse_mode="HTML")
    assert sent.text == "😀 hola web"
    assert [(e.type, e.offset, e.length) for e in sent.entities or []] == [("bold", 3, 4), ("text_link", 8, 3)]
    assert ana.last_message.source_text == '😀 <b>hola</b> <a href="https://example.org">web</a>'


async def test_multipart_form_with_a_file_part(server: FakeBotAPI, http: aiohttp.ClientSession, ana: FakeUser) -> None:
    """multipart/form-data bodies are decoded, JSON-encoded fields included; file parts are ignored."""
    form = aiohttp.FormData()
    form.add_field("chat_id", str(ana.id))
    form.add_field("text", "con adjunto")
    form.add_field("reply_markup", json.dumps({"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]}))
    form.add_field("document", b"%PDF-1.4", filename="doc.pdf", content_type="application/pdf")
    async with http.post(f"{server.base_url}/bot{server.token}/sendMessage", data=form) as response:
        assert response.status == 200
    assert ana.last_message.buttons == [[("A", "a")]]
    assert "document" not in server.calls[-1].params


async def test_text_over_4096_characters_is_rejected(bot: Bot, ana: FakeUser) -> None:
    """4097 visible characters are "message is too long"; markup does not count toward the limit."""
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(ana.id, "a" * 4097)
    await bot.send_message(ana.id, "a" * 4096)
    await bot.send_message(ana.id, "<b>" + "&lt;" * 4096 + "</b>", parse_mode="HTML")
    assert [len(m.text) for m in ana.messages] == [4096, 4096]


@pytest.mark.parametrize(
    ("html", "detail"),
    [
        ("<div>hola</div>", 'Unsupported start tag "div"'),
        ("<b>hola</i>", "Unmatched end tag"),
        ("<b>hola", 'Can\'t find end tag corresponding to start tag "b"'),
        ("1 < 2", "Unexpected end of name token"),
        ("<br/>", 'Unsupported start tag "br/"'),
    ],
)
async def test_invalid_html_is_rejected(bot: Bot, ana: FakeUser, html: str, detail: str) -> None:
    """HTML Telegram cannot parse is a 400 "can't parse entities", as in production."""
    with pytest.raises(TelegramBadRequest, match="can't parse entities") as error:
        await bot.send_message(ana.id, html, parse_mode="HTML")
    assert detail in error.value.message


async def test_callback_data_over_64_bytes_is_rejected(bot: Bot, ana: FakeUser) -> None:
    """callback_data is limited to 64 UTF-8 bytes (not characters): BUTTON_DATA_INVALID beyond."""
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(ana.id, "x", reply_markup=keyboard(("A", "d" * 65)))
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(ana.id, "x", reply_markup=keyboard(("A", "ñ" * 33)))  # 66 bytes
    await bot.send_message(ana.id, "x", reply_markup=keyboard(("A", "d" * 64)))


async def test_inline_button_needs_exactly_one_action(
    server: FakeBotAPI, http: aiohttp.ClientSession, ana: FakeUser
) -> None:
    """An inline button with only text is rejected, as Telegram has no text-only inline buttons."""
    markup = {"inline_keyboard": [[{"text": "A"}]]}
    status, body = await call(http, server, "sendMessage", chat_id=ana.id, text="x", reply_markup=markup)
    assert status == 400
    assert "Text buttons are unallowed" in body["description"]


async def test_reply_keyboard_is_shown_and_pressed(bot: Bot, ana: FakeUser) -> None:
    """A reply keyboard is not echoed in the Message but is shown to the user; pressing sends the label."""
    markup = ReplyKeyboardMarkup(keyboard=[[KeyboardButton(text="Español"), KeyboardButton(text="English")]])
    sent = await bot.send_message(ana.id, "¿Idioma?", reply_markup=markup)
    assert sent.reply_markup is None
    assert ana.reply_keyboard == [["Español", "English"]]
    await ana.press("Español")
    [update] = await bot(GetUpdates())
    assert update.message is not None
    assert update.message.text == "Español"
    await bot.send_message(ana.id, "Listo", reply_markup=ReplyKeyboardRemove())
    assert ana.reply_keyboard is None


async def test_blocked_user_gives_403(bot: Bot, server: FakeBotAPI, ana: FakeUser) -> None:
    """After the user blocks the bot, sends get 403 "bot was blocked by the user" until unblocked."""
    server.block(ana.id)
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(ana.id, "hola")
    server.unblock(ana.id)
    await bot.send_message(ana.id, "hola")


# -- editing and callbacks ----------------------------------------------------------------------------


async def test_edit_message_text_and_not_modified(bot: Bot, ana: FakeUser) -> None:
    """An identical edit is "message is not modified"; a real edit updates the message and its history."""
    markup = keyboard(("Sí", "yes"))
    sent = await bot.send_message(ana.id, "¿Continuar?", reply_markup=markup)
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text("¿Continuar?", chat_id=ana.id, message_id=sent.message_id, reply_markup=markup)

    edited = await bot.edit_message_text("Listo", chat_id=ana.id, message_id=sent.message_id)
    assert isinstance(edited, Message)
    assert edited.edit_date is not None
    assert edited.reply_markup is None  # an edit without reply_markup removes the keyboard
    message = ana.last_message
    assert (message.text, message.edited, message.history[0].text) == ("Listo", True, "¿Continuar?")

    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text("x", chat_id=ana.id, message_id=999)


async def test_edit_reply_markup(bot: Bot, ana: FakeUser) -> None:
    """editMessageReplyMarkup swaps the keyboard and refuses a no-op."""
    sent = await bot.send_message(ana.id, "Elige", reply_markup=keyboard(("A", "a")))
    await bot.edit_message_reply_markup(chat_id=ana.id, message_id=sent.message_id, reply_markup=keyboard(("B", "b")))
    assert ana.buttons() == ["B"]
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_reply_markup(
            chat_id=ana.id, message_id=sent.message_id, reply_markup=keyboard(("B", "b"))
        )


async def test_answer_callback_query_only_once(bot: Bot, ana: FakeUser) -> None:
    """A callback query can be answered once; the second answer is "query is too old"."""
    await bot.send_message(ana.id, "¿Continuar?", reply_markup=keyboard(("Sí", "yes")))
    query_id = await ana.tap("Sí")
    assert await bot.answer_callback_query(query_id, text="¡Bien!")
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query(query_id)
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query("not-a-query")
    assert [(a.query_id, a.text, a.show_alert) for a in ana.callback_answers] == [(query_id, "¡Bien!", False)]


async def test_tap_unknown_label_lists_available_buttons(bot: Bot, ana: FakeUser) -> None:
    """Tapping a label that is not there fails the test with the labels that are."""
    await bot.send_message(ana.id, "¿Tienes pasaporte?", reply_markup=keyboard(("Sí", "yes"), ("No", "no")))
    with pytest.raises(AssertionError, match=r"Available buttons: \['Sí', 'No'\]"):
        await ana.tap("Tal vez")


async def test_tap_builds_callback_query_on_current_or_older_message(
    bot: Bot, server: FakeBotAPI, ana: FakeUser, http: aiohttp.ClientSession
) -> None:
    """A tap enqueues a callback_query with the message as it is now; older keyboards stay tappable."""
    old = await bot.send_message(ana.id, "Primera", reply_markup=keyboard(("Uno", "1")))
    await bot.send_message(ana.id, "Segunda", reply_markup=keyboard(("Dos", "2")))
    await ana.tap("Dos")
    await ana.tap(data="1", message=ana.messages[0])
    _, body = await call(http, server, "getUpdates")
    updates = [Update.model_validate(u, context={"bot": bot}) for u in body["result"]]
    queries = [u.callback_query for u in updates]
    assert all(isinstance(q, CallbackQuery) for q in queries)
    assert [(q.data, q.message.message_id) for q in queries if q and q.message] == [
        ("2", old.message_id + 1),
        ("1", old.message_id),
    ]


async def test_copy_delete_and_chat_action(bot: Bot, server: FakeBotAPI, ana: FakeUser) -> None:
    """copyMessage copies a user's photo into another chat; deleteMessage hides it; chat actions are kept."""
    staff = server.user(first_name="Staff", language_code="en")
    await ana.send_photo(caption="pasaporte")
    copied = await bot.copy_message(chat_id=staff.id, from_chat_id=ana.id, message_id=1)
    assert staff.last_message.message_id == copied.message_id
    assert (staff.last_message.text, "photo" in staff.last_message.content) == ("pasaporte", True)

    await bot.send_chat_action(ana.id, "typing")
    sent = await bot.send_message(ana.id, "borrar")
    assert await bot.delete_message(ana.id, sent.message_id)
    assert ana.messages == []
    assert ana.chat_actions == ["typing"]
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(ana.id, sent.message_id)
    with pytest.raises(TelegramBadRequest, match="message to copy not found"):
        await bot.copy_message(chat_id=staff.id, from_chat_id=ana.id, message_id=99)


async def test_wait_idle_collects_a_burst(bot: Bot, ana: FakeUser) -> None:
    """wait_idle returns once the bot has been quiet in the chat, with the unread burst of messages."""

    async def burst() -> None:
        for text in ("uno", "dos", "tres"):
            await bot.send_message(ana.id, text)
            await asyncio.sleep(0.05)

    task = asyncio.create_task(burst())
    messages = await ana.wait_idle(quiet=0.2, timeout=5)
    await task
    assert [m.text for m in messages] == ["uno", "dos", "tres"]
    assert ana.unread == []


async def test_wait_idle_waits_for_a_slow_first_reaction(bot: Bot, ana: FakeUser) -> None:
    """wait_idle does not mistake a bot that fetched the update but is slow to answer for an idle one."""

    async def slow_bot() -> None:
        await bot(GetUpdates())
        await asyncio.sleep(0.5)
        await bot.send_message(ana.id, "respuesta lenta")

    await ana.send("hola")
    task = asyncio.create_task(slow_bot())
    messages = await ana.wait_idle(quiet=0.1, timeout=5)
    await task
    assert [m.text for m in messages] == ["respuesta lenta"]


async def test_wait_idle_gives_up_on_a_silent_bot_after_grace(bot: Bot, ana: FakeUser) -> None:
    """If the bot fetches an update and never reacts, wait_idle returns once the grace period is over."""
    await ana.send("un sticker que se ignora")
    await bot(GetUpdates())
    started = time.monotonic()
    assert await ana.wait_idle(quiet=0.1, grace=0.3, timeout=5) == []
    assert 0.25 <= time.monotonic() - started < 2


# -- getUpdates ---------------------------------------------------------------------------------------


async def test_get_updates_offset_confirms(server: FakeBotAPI, http: aiohttp.ClientSession, ana: FakeUser) -> None:
    """Unconfirmed updates are returned again; an offset forgets every update below it."""
    first = await ana.send("uno")
    second = await ana.send("dos")
    _, body = await call(http, server, "getUpdates")
    assert [u["update_id"] for u in body["result"]] == [first, second]
    _, body = await call(http, server, "getUpdates", limit=1)
    assert [u["update_id"] for u in body["result"]] == [first]
    _, body = await call(http, server, "getUpdates", offset=second)
    assert [u["update_id"] for u in body["result"]] == [second]
    _, body = await call(http, server, "getUpdates", offset=second + 1)
    assert body["result"] == []


async def test_long_poll_wakes_up_when_user_sends(bot: Bot, ana: FakeUser) -> None:
    """A waiting getUpdates returns as soon as a user sends, with a bot_command entity for "/start"."""
    poll = asyncio.create_task(bot(GetUpdates(timeout=5)))
    await asyncio.sleep(0.05)
    assert not poll.done()
    started = time.monotonic()
    await ana.send("/start ref_42")
    updates = await asyncio.wait_for(poll, 2)
    assert time.monotonic() - started < 1
    [update] = updates
    assert update.message is not None
    assert update.message.text == "/start ref_42"
    assert update.message.from_user is not None
    assert update.message.from_user.language_code == "es"
    assert [(e.type, e.offset, e.length) for e in update.message.entities or []] == [("bot_command", 0, 6)]


async def test_long_poll_times_out_empty(bot: Bot) -> None:
    """With nothing to deliver, getUpdates waits for its timeout and returns an empty list."""
    started = time.monotonic()
    assert await bot(GetUpdates(timeout=1)) == []
    assert 0.9 < time.monotonic() - started < 3


async def test_newer_poll_terminates_older_with_conflict(bot: Bot, server: FakeBotAPI, ana: FakeUser) -> None:
    """A second getUpdates ends the waiting one with 409 Conflict and then receives the updates itself."""
    old = asyncio.create_task(bot(GetUpdates(timeout=5)))
    await asyncio.sleep(0.05)
    new = asyncio.create_task(bot(GetUpdates(timeout=5)))
    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates request"):
        await asyncio.wait_for(old, 2)
    await ana.send("hola")
    [update] = await asyncio.wait_for(new, 2)
    assert update.message is not None
    assert update.message.text == "hola"
    assert server.stats.conflicts == 1


async def test_restarted_bot_can_poll_after_its_predecessor_died(bot: Bot, server: FakeBotAPI, ana: FakeUser) -> None:
    """A poller whose connection died mid long-poll (kill -9) does not stop a restarted bot from polling."""
    dead_session = aiohttp.ClientSession()
    dead_poll = asyncio.create_task(
        dead_session.post(f"{server.base_url}/bot{server.token}/getUpdates", data={"timeout": "30"})
    )
    await asyncio.sleep(0.05)
    dead_poll.cancel()
    await dead_session.close()
    with pytest.raises(asyncio.CancelledError):
        await dead_poll

    poll = asyncio.create_task(bot(GetUpdates(timeout=5)))
    await asyncio.sleep(0.05)
    await ana.send("hola de nuevo")
    [update] = await asyncio.wait_for(poll, 2)
    assert update.message is not None
    assert update.message.text == "hola de nuevo"
    assert server.calls_to("getUpdates")[-1].status == 200


async def test_allowed_updates_filters_types(bot: Bot, ana: FakeUser) -> None:
    """Updates of types the bot did not ask for in allowed_updates are never delivered."""
    await bot.send_message(ana.id, "x", reply_markup=keyboard(("A", "a")))
    await ana.tap("A")
    await ana.send("texto")
    updates = await bot(GetUpdates(allowed_updates=["message"]))
    assert [u.message.text for u in updates if u.message] == ["texto"]
    assert all(u.callback_query is None for u in updates)


async def test_duplicate_update_is_delivered_again(bot: Bot, server: FakeBotAPI, ana: FakeUser) -> None:
    """duplicate_update re-delivers an already confirmed update with the same id, despite the offset."""
    update_id = await ana.send("hola")
    [first] = await bot(GetUpdates())
    assert await bot(GetUpdates(offset=update_id + 1)) == []
    server.duplicate_update(update_id)
    [again] = await bot(GetUpdates(offset=update_id + 1))
    assert again.update_id == first.update_id
    assert again.message == first.message


# -- failures and limits --------------------------------------------------------------------------------


async def test_injected_429_carries_retry_after(bot: Bot, server: FakeBotAPI, ana: FakeUser) -> None:
    """fail_next with 429 makes aiogram raise TelegramRetryAfter with the injected retry_after, once."""
    fault = server.fail_next("sendMessage", status=429, retry_after=7)
    with pytest.raises(TelegramRetryAfter) as error:
        await bot.send_message(ana.id, "hola")
    assert error.value.retry_after == 7
    assert fault.remaining == 0
    await bot.send_message(ana.id, "hola")
    assert [c.status for c in server.calls_to("sendMessage")] == [429, 200]
    assert len(ana.messages) == 1


async def test_injected_failure_scoped_to_chat_and_after_effect(bot: Bot, server: FakeBotAPI, ana: FakeUser) -> None:
    """A chat-scoped fault spares other chats; after_effect delivers the message yet reports an error."""
    ben = server.user(first_name="Ben")
    server.fail_next("sendMessage", status=502, chat_id=ana.id, after_effect=True)
    await bot.send_message(ben.id, "para Ben")
    with pytest.raises(Exception, match="Bad Gateway"):
        await bot.send_message(ana.id, "para Ana")
    assert [m.text for m in ana.messages] == ["para Ana"]
    assert server.stats.injected_failures == 1


async def test_a_slow_answer_is_seen_by_people_before_the_bot_hears_back(
    bot: Bot, server: FakeBotAPI, ana: FakeUser
) -> None:
    """slow_next: the message is in the chat at once; the bot's call returns only after the delay, once."""
    server.slow_next("sendMessage", 0.5, chat_id=ana.id)
    call = asyncio.create_task(bot.send_message(ana.id, "hola"))
    await ana.wait_for(lambda m: m.text == "hola", timeout=0.4)
    assert not call.done()
    await call
    started = time.monotonic()
    await bot.send_message(ana.id, "otra vez")
    assert time.monotonic() - started < 0.4


async def test_delete_messages_skips_what_the_bot_may_not_delete(bot: Bot, server: FakeBotAPI) -> None:
    """deleteMessages deletes the bot's own messages, skips unknown ids and (the bot being no admin) members'
    messages; as an admin it deletes those too. More than 100 ids at once is a 400."""
    group = server.group(title="Plain")
    member = group.member(first_name="Marta")
    own = await bot.send_message(group.id, "del bot")
    await member.send("de Marta")
    theirs = group.chat.log[-1]
    assert await bot.delete_messages(group.id, [own.message_id, theirs.message_id, 9999])
    assert [m.text for m in group.chat.log if not m.deleted] == ["de Marta"]
    group.chat.bot_status = "administrator"
    assert await bot.delete_messages(group.id, [theirs.message_id])
    assert theirs.deleted
    with pytest.raises(TelegramBadRequest):
        await bot.delete_messages(group.id, list(range(1, 102)))


async def test_rate_limits_produce_429(bot: Bot, server: FakeBotAPI, ana: FakeUser) -> None:
    """With a per-chat limit, a burst beyond it is answered 429 with retry_after >= 1 and counted."""
    server.set_rate_limits(per_chat_per_second=1)
    await bot.send_message(ana.id, "1")
    with pytest.raises(TelegramRetryAfter) as error:
        await bot.send_message(ana.id, "2")
    assert error.value.retry_after >= 1
    assert server.stats.rate_limited == 1
    assert server.stats.responses_by_status[429] == 1
    other = server.user(first_name="Ben")
    await bot.send_message(other.id, "per-chat limits are independent")


async def test_global_rate_limit(bot: Bot, server: FakeBotAPI) -> None:
    """The global limit caps sends across all chats."""
    server.set_rate_limits(global_per_second=3)
    users = [server.user(first_name=f"U{i}") for i in range(5)]
    outcomes = []
    for user in users:
        try:
            await bot.send_message(user.id, "hola")
            outcomes.append("ok")
        except TelegramRetryAfter:
            outcomes.append("429")
    assert outcomes == ["ok", "ok", "ok", "429", "429"]


# -- commands ---------------------------------------------------------------------------------------------


async def test_set_my_commands_validates_and_stores_per_scope(bot: Bot, server: FakeBotAPI, ana: FakeUser) -> None:
    """Commands are validated like Telegram's and stored per (scope, language_code)."""
    await bot.set_my_commands([BotCommand(command="start", description="Empezar")], language_code="es")
    await bot.set_my_commands(
        [BotCommand(command="help", description="Ayuda")], scope=BotCommandScopeChat(chat_id=ana.id)
    )
    assert [c.command for c in await bot.get_my_commands(language_code="es")] == ["start"]
    assert await bot.get_my_commands() == []
    assert server.commands({"type": "chat", "chat_id": ana.id}) == [{"command": "help", "description": "Ayuda"}]
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand(command="Start", description="x")])
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_DESCRIPTION_INVALID"):
        await bot.set_my_commands([BotCommand(command="start", description="x" * 257)])


# -- a real dispatcher ----------------------------------------------------------------------------------


async def test_real_dispatcher_conversation(server: FakeBotAPI, ana: FakeUser) -> None:
    """An aiogram Dispatcher polling the fake answers a scripted user's command and button tap."""
    dispatcher = Dispatcher()

    @dispatcher.message(CommandStart())
    async def start(message: Message) -> None:
        await message.answer("¿Hablas español?", reply_markup=keyboard(("Sí", "lang:es"), ("No", "lang:en")))

    @dispatcher.callback_query(F.data.startswith("lang:"))
    async def language(query: CallbackQuery) -> None:
        await query.answer("OK")
        assert isinstance(query.message, Message)
        await query.message.edit_text(f"Idioma: {query.data}")

    session = AiohttpSession(api=TelegramAPIServer.from_base(server.base_url))
    real_bot = Bot(server.token, session=session)
    polling = asyncio.create_task(dispatcher.start_polling(real_bot, handle_signals=False, polling_timeout=1))
    try:
        await ana.send("/start")
        question = await ana.next_message(timeout=5)
        assert question.labels == ["Sí", "No"]
        await ana.tap("Sí")
        await ana.wait_until(lambda: question.edited, timeout=5)
        assert question.text == "Idioma: lang:es"
        assert [a.text for a in ana.callback_answers] == ["OK"]
        assert await ana.wait_idle(quiet=0.2) == []
    finally:
        await dispatcher.stop_polling()
        await asyncio.wait_for(polling, 5)


async def test_next_message_timeout_describes_the_chat(bot: Bot, ana: FakeUser) -> None:
    """Waiting in vain raises TimeoutError that shows what the chat last saw."""
    await bot.send_message(ana.id, "Última", reply_markup=keyboard(("A", "a")))
    await ana.next_message(timeout=1)
    with pytest.raises(TimeoutError, match=r"last bot message #1: 'Última' buttons=\['A'\]"):
        await ana.next_message(timeout=0.2)


# -- group chats ------------------------------------------------------------------------------------


@pytest.fixture
def intake(server: FakeBotAPI) -> FakeGroup:
    return server.group(title="Intake")


async def test_groups_have_negative_ids_and_are_reused(server: FakeBotAPI) -> None:
    """Supergroups get -100... ids, basic groups plain negative ones, and the same id returns the same group."""
    first, second = server.group(title="Intake"), server.group(title="Otra")
    basic = server.group(title="Vieja", supergroup=False)
    assert (first.id, second.id, basic.id) == (-1001000000001, -1001000000002, -4000000001)
    assert (first.chat.type, basic.chat.type) == ("supergroup", "group")
    assert server.group(first.id) is first
    assert server.groups == {first.id: first, second.id: second, basic.id: basic}
    with pytest.raises(ValueError, match="negative"):
        server.group(5)


async def test_member_is_also_an_ordinary_user(server: FakeBotAPI, intake: FakeGroup) -> None:
    """A member's private side is the very FakeUser server.user returns, and an existing user can join."""
    maria = intake.member(first_name="María", language_code="es")
    assert server.user(maria.id) is maria.private
    assert intake.member(maria.id) is maria
    ana = server.user(first_name="Ana")
    assert intake.member(ana.id).private is ana
    assert intake.is_member(ana.id)
    assert not server.group(title="Otra").is_member(ana.id)


async def test_member_taps_a_card_in_the_group(bot: Bot, intake: FakeGroup) -> None:
    """The bot posts a card in the group; a member's tap reaches aiogram with the group chat and the member as from."""
    maria = intake.member(first_name="María", language_code="es")
    card = await bot.send_message(intake.id, "Nueva derivación #7", reply_markup=keyboard(("Aceptar", "acc:7")))
    assert (card.chat.id, card.chat.type, card.chat.title) == (intake.id, "supergroup", "Intake")
    received = await intake.next_message(timeout=1)
    assert (received.message_id, received.labels) == (card.message_id, ["Aceptar"])

    query_id = await maria.tap("Aceptar")
    [update] = await bot(GetUpdates())
    query = update.callback_query
    assert query is not None
    assert (query.id, query.data, query.from_user.id, query.from_user.first_name) == (
        query_id,
        "acc:7",
        maria.id,
        "María",
    )
    assert isinstance(query.message, Message)
    assert (query.message.chat.id, query.message.chat.type, query.message.chat.title) == (
        intake.id,
        "supergroup",
        "Intake",
    )
    assert query.message.message_id == card.message_id

    await bot.answer_callback_query(query_id, text="Aceptada")
    assert [(a.text, a.user_id) for a in intake.callback_answers] == [("Aceptada", maria.id)]
    assert [a.text for a in maria.callback_answers] == ["Aceptada"]
    assert maria.private.callback_answers == []


async def test_member_sends_in_the_group_and_privately(bot: Bot, intake: FakeGroup) -> None:
    """member.send posts in the group as the member; member.private.send posts in their private chat."""
    maria = intake.member(first_name="María")
    await maria.send("/casos@puente_test_bot")
    await maria.private.send("hola")
    group_update, private_update = await bot(GetUpdates())
    assert group_update.message is not None
    assert private_update.message is not None
    in_group, in_private = group_update.message, private_update.message
    assert (in_group.chat.id, in_group.chat.type, in_group.text) == (intake.id, "supergroup", "/casos@puente_test_bot")
    assert in_group.from_user is not None
    assert in_group.from_user.id == maria.id
    assert [(e.type, e.length) for e in in_group.entities or []] == [("bot_command", 22)]
    assert (in_private.chat.id, in_private.chat.type, in_private.text) == (maria.id, "private", "hola")


async def test_non_member_and_forged_taps_arrive(bot: Bot, server: FakeBotAPI, intake: FakeGroup) -> None:
    """A non-member's tap on a group card and callback_data that is on no button are both delivered to the bot."""
    maria = intake.member(first_name="María")
    await bot.send_message(intake.id, "Derivación #7", reply_markup=keyboard(("Aceptar", "acc:7")))
    card = intake.last_message
    stranger = server.user(first_name="Eve", language_code="en")
    await stranger.tap(data="acc:7", message=card)
    await maria.tap(data="acc:999", forge=True)
    await stranger.tap(data="x" * 100, message=card, forge=True)
    assert len(intake.chat.pending_update_ids) == 3  # the updates belong to the group, not to Eve's chat
    assert stranger.chat.pending_update_ids == set()
    updates = await bot(GetUpdates())
    queries = [u.callback_query for u in updates if u.callback_query]
    assert [(q.from_user.id, q.data) for q in queries] == [
        (stranger.id, "acc:7"),
        (maria.id, "acc:999"),
        (stranger.id, "x" * 100),
    ]
    assert all(isinstance(q.message, Message) and q.message.chat.id == intake.id for q in queries)

    with pytest.raises(AssertionError, match=r"forge=True"):
        await maria.tap(data="acc:999")
    with pytest.raises(TypeError, match=r"forge=True\) needs data="):
        await maria.tap("Aceptar", forge=True)


async def test_tapping_another_users_private_message_is_impossible(bot: Bot, server: FakeBotAPI, ana: FakeUser) -> None:
    """Unlike a group card, a message in someone else's private chat cannot be tapped, even forged."""
    await bot.send_message(ana.id, "¿Sí?", reply_markup=keyboard(("Sí", "yes")))
    eve = server.user(first_name="Eve")
    with pytest.raises(AssertionError, match="cannot see it"):
        await eve.tap(data="yes", message=ana.last_message, forge=True)


async def test_edit_and_delete_in_a_group(bot: Bot, intake: FakeGroup) -> None:
    """editMessageText, editMessageReplyMarkup and deleteMessage work on group messages as in private chats."""
    card = await bot.send_message(intake.id, "Derivación #7", reply_markup=keyboard(("Aceptar", "acc:7")))
    edited = await bot.edit_message_text(
        "Derivación #7: <b>aceptada</b> por María", chat_id=intake.id, message_id=card.message_id, parse_mode="HTML"
    )
    assert isinstance(edited, Message)
    assert (edited.chat.type, edited.text, edited.reply_markup) == (
        "supergroup",
        "Derivación #7: aceptada por María",
        None,
    )
    message = intake.last_message
    assert (message.edited, message.history[0].text, message.labels) == (True, "Derivación #7", [])
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text(
            "Derivación #7: <b>aceptada</b> por María", chat_id=intake.id, message_id=card.message_id, parse_mode="HTML"
        )
    await bot.edit_message_reply_markup(
        chat_id=intake.id, message_id=card.message_id, reply_markup=keyboard(("Deshacer", "undo:7"))
    )
    assert intake.buttons() == ["Deshacer"]
    assert await bot.delete_message(intake.id, card.message_id)
    assert intake.messages == []


async def test_unknown_group_is_chat_not_found(bot: Bot, intake: FakeGroup) -> None:
    """Sending, editing or uploading to a group id the fake never created is 400 "chat not found"."""
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(-1009999999999, "hola")
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.edit_message_text("x", chat_id=-1009999999999, message_id=1)
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_document(-1009999999999, BufferedInputFile(b"x", filename="a.txt"))


async def test_bot_removed_from_group_gets_403(bot: Bot, server: FakeBotAPI, intake: FakeGroup) -> None:
    """block() on a group is the bot being removed: sends there get Telegram's "kicked" 403."""
    server.block(intake.id)
    with pytest.raises(TelegramForbiddenError, match="bot was kicked from the supergroup chat"):
        await bot.send_message(intake.id, "hola")
    server.unblock(intake.id)
    await bot.send_message(intake.id, "hola")


async def test_group_wait_times_out_describing_the_group(bot: Bot, intake: FakeGroup) -> None:
    """Waiting on a group in vain raises TimeoutError naming the group, its last message and its members."""
    intake.member(first_name="María")
    await bot.send_message(intake.id, "Derivación #7", reply_markup=keyboard(("Aceptar", "acc:7")))
    await intake.next_message(timeout=1)
    with pytest.raises(TimeoutError, match=r"(?s)supergroup 'Intake'.*#1: 'Derivación #7'.*members: María"):
        await intake.next_message(timeout=0.2)


async def test_real_dispatcher_handles_a_group_card(server: FakeBotAPI, intake: FakeGroup) -> None:
    """An aiogram Dispatcher posts a card in the group, a member accepts it, and the bot edits it and writes to her."""
    dispatcher = Dispatcher()

    @dispatcher.message(CommandStart(), F.chat.type == "private")
    async def referral(message: Message) -> None:
        assert message.bot is not None
        await message.bot.send_message(intake.id, "Derivación #7", reply_markup=keyboard(("Aceptar", "acc:7")))

    @dispatcher.callback_query(F.data.startswith("acc:"), F.message.chat.type == "supergroup")
    async def accept(query: CallbackQuery) -> None:
        assert isinstance(query.message, Message)
        await query.answer("Es tuya")
        await query.message.edit_text(f"Derivación #7: aceptada por {query.from_user.first_name}")
        assert query.bot is not None
        await query.bot.send_message(query.from_user.id, "Tienes un caso nuevo")

    maria = intake.member(first_name="María")
    ana = server.user(first_name="Ana")
    real_bot = Bot(server.token, session=AiohttpSession(api=TelegramAPIServer.from_base(server.base_url)))
    polling = asyncio.create_task(dispatcher.start_polling(real_bot, handle_signals=False, polling_timeout=1))
    try:
        await ana.send("/start")
        card = await intake.next_message(timeout=5)
        await maria.tap("Aceptar")
        assert await intake.wait_idle(quiet=0.2) == []
        assert card.text == "Derivación #7: aceptada por María"
        assert [a.text for a in maria.callback_answers] == ["Es tuya"]
        assert (await maria.private.next_message(timeout=5)).text == "Tienes un caso nuevo"
    finally:
        await dispatcher.stop_polling()
        await asyncio.wait_for(polling, 5)
        await real_bot.session.close()


# -- documents -----------------------------------------------------------------------------------------


async def test_send_document_round_trip(bot: Bot, ana: FakeUser, intake: FakeGroup) -> None:
    """sendDocument stores the uploaded bytes and name; the Message carries a Document, resendable by file_id."""
    data = bytes(range(256)) * 40  # not UTF-8: must survive byte for byte
    sent = await bot.send_document(
        intake.id,
        BufferedInputFile(data, filename="derivación-7.pdf"),
        caption="<b>Caso 7</b>",
        parse_mode="HTML",
        reply_markup=keyboard(("Aceptar", "acc:7")),
    )
    assert sent.document is not None
    assert (sent.document.file_name, sent.document.mime_type, sent.document.file_size) == (
        "derivación-7.pdf",
        "application/pdf",
        len(data),
    )
    assert (sent.caption, sent.text, sent.chat.id) == ("Caso 7", None, intake.id)
    stored = intake.last_message
    assert stored.document is not None
    assert (stored.document.content, stored.document.file_id) == (data, sent.document.file_id)
    assert (stored.text, stored.source_text, stored.labels) == ("Caso 7", "<b>Caso 7</b>", ["Aceptar"])

    again = await bot.send_document(ana.id, sent.document.file_id)
    assert again.document is not None
    assert again.document.file_unique_id == sent.document.file_unique_id
    assert ana.last_message.document is not None
    assert ana.last_message.document.content == data
    assert ana.last_message.text == ""


async def test_send_document_validation(bot: Bot, ana: FakeUser) -> None:
    """Captions over 1024 characters, unknown file ids, URLs and empty files are refused as by Telegram."""
    upload = BufferedInputFile(b"hola", filename="nota.txt")
    with pytest.raises(TelegramBadRequest, match="message caption is too long"):
        await bot.send_document(ana.id, upload, caption="a" * 1025)
    await bot.send_document(ana.id, upload, caption="a" * 1024)
    with pytest.raises(TelegramBadRequest, match="wrong file identifier/HTTP URL specified"):
        await bot.send_document(ana.id, "NoSuchFileId")
    with pytest.raises(TelegramBadRequest, match="failed to get HTTP URL content"):
        await bot.send_document(ana.id, "https://example.org/a.pdf")
    with pytest.raises(TelegramBadRequest, match="file must be non-empty"):
        await bot.send_document(ana.id, BufferedInputFile(b"", filename="vacío.txt"))
    assert [m.document.mime_type for m in ana.messages if m.document] == ["text/plain"]


async def test_send_document_as_a_plain_multipart_part(
    server: FakeBotAPI, http: aiohttp.ClientSession, ana: FakeUser
) -> None:
    """A file part named "document" works as well as aiogram's attach://; a dangling attach:// does not."""
    form = aiohttp.FormData()
    form.add_field("chat_id", str(ana.id))
    form.add_field("document", b"a,b\n1,2\n", filename="casos.csv", content_type="text/csv")
    async with http.post(f"{server.base_url}/bot{server.token}/sendDocument", data=form) as response:
        assert response.status == 200
        body = await response.json()
    assert body["result"]["document"]["file_name"] == "casos.csv"
    assert ana.last_message.document is not None
    assert ana.last_message.document.content == b"a,b\n1,2\n"

    status, body = await call(http, server, "sendDocument", chat_id=ana.id, document="attach://missing")
    assert (status, body["description"]) == (400, "Bad Request: there is no document in the request")
    status, body = await call(http, server, "sendDocument", chat_id=ana.id)
    assert (status, body["description"]) == (400, "Bad Request: there is no document in the request")


async def test_upload_over_the_limit_is_413() -> None:
    """A file above the upload limit is 413 Request Entity Too Large, raised by aiogram as TelegramEntityTooLarge."""
    async with FakeBotAPI(max_upload_bytes=1024) as small:
        user = small.user()
        real_bot = Bot(small.token, session=AiohttpSession(api=TelegramAPIServer.from_base(small.base_url)))
        try:
            with pytest.raises(TelegramEntityTooLarge):
                await real_bot.send_document(user.id, BufferedInputFile(b"x" * 1025, filename="big.bin"))
            with pytest.raises(TelegramEntityTooLarge):  # so big that the HTTP layer stops reading it
                await real_bot.send_document(user.id, BufferedInputFile(b"x" * 3 * 1024 * 1024, filename="huge.bin"))
            await real_bot.send_document(user.id, BufferedInputFile(b"x" * 1024, filename="ok.bin"))
        finally:
            await real_bot.session.close()
    assert [m.document.file_size for m in user.messages if m.document] == [1024]


async def test_copy_message_keeps_the_document(bot: Bot, ana: FakeUser, intake: FakeGroup) -> None:
    """Copying a document message to the group keeps file and caption, unless a new caption is given."""
    await bot.send_document(
        ana.id, BufferedInputFile(b"%PDF", filename="a.pdf"), caption="<i>Caso</i>", parse_mode="HTML"
    )
    await bot.copy_message(chat_id=intake.id, from_chat_id=ana.id, message_id=1)
    await bot.copy_message(chat_id=intake.id, from_chat_id=ana.id, message_id=1, caption="Nuevo")
    kept, recaptioned = intake.messages
    assert kept.document is not None
    assert (kept.document.content, kept.text, kept.entities) == (
        b"%PDF",
        "Caso",
        [{"type": "italic", "offset": 0, "length": 4}],
    )
    assert (recaptioned.text, recaptioned.entities) == ("Nuevo", [])


# -- forum topics ---------------------------------------------------------------------------------------


@pytest.fixture
def staff(server: FakeBotAPI) -> FakeGroup:
    return server.group(title="Staff", forum=True)


async def test_forum_supergroup_is_a_forum(server: FakeBotAPI, staff: FakeGroup, intake: FakeGroup) -> None:
    """forum=True marks the supergroup is_forum in its Chat object; basic groups cannot be forums."""
    assert (staff.chat.api["is_forum"], staff.is_forum, staff.chat.type) == (True, True, "supergroup")
    assert "is_forum" not in intake.chat.api
    with pytest.raises(ValueError, match="only supergroups"):
        server.group(title="Vieja", supergroup=False, forum=True)


async def test_create_topic_and_send_into_it(bot: Bot, staff: FakeGroup) -> None:
    """A topic's thread id is its creation message's id; messages sent into it carry the thread and reply to it."""
    topic = await bot.create_forum_topic(staff.id, "Ana Pérez (100000)")
    assert (topic.message_thread_id, topic.name, topic.icon_color) == (1, "Ana Pérez (100000)", 0x6FB9F0)

    sent = await bot.send_message(staff.id, "Nueva conversación", message_thread_id=topic.message_thread_id)
    assert (sent.message_id, sent.message_thread_id, sent.is_topic_message, sent.chat.is_forum) == (2, 1, True, True)
    assert sent.reply_to_message is not None
    assert sent.reply_to_message.forum_topic_created is not None
    assert sent.reply_to_message.forum_topic_created.name == "Ana Pérez (100000)"
    document = await bot.send_document(
        staff.id, BufferedInputFile(b"%PDF", filename="caso.pdf"), message_thread_id=topic.message_thread_id
    )
    assert (document.message_thread_id, document.is_topic_message) == (1, True)
    edited = await bot.edit_message_text("Conversación abierta", chat_id=staff.id, message_id=sent.message_id)
    assert isinstance(edited, Message)
    assert (edited.message_thread_id, edited.is_topic_message) == (1, True)
    general = await bot.send_message(staff.id, "Aviso general")
    assert (general.message_thread_id, general.is_topic_message, general.reply_to_message) == (None, None, None)

    reader = await staff.wait_for_topic("Ana Pérez (100000)", timeout=1)
    assert staff.topic(1) is reader
    assert [m.text for m in reader.messages] == ["Conversación abierta", ""]
    assert (await reader.next_message(timeout=1)).message_id == sent.message_id
    assert [m.message_id for m in staff.messages] == [2, 3, 4]  # the service message is not a bot message
    assert [m.message_id for m in staff.messages_in(1)] == [2, 3]
    assert [m.topic_id for m in staff.messages] == [1, 1, None]


async def test_thread_not_found_closed_and_deleted_topics(bot: Bot, staff: FakeGroup, ana: FakeUser) -> None:
    """Unknown thread ids are "message thread not found", closed topics "TOPIC_CLOSED", deleted topics vanish."""
    topic = (await bot.create_forum_topic(staff.id, "Ana")).message_thread_id
    await ana.send("hola")
    with pytest.raises(TelegramBadRequest, match="message thread not found"):
        await bot.send_message(staff.id, "x", message_thread_id=999)
    with pytest.raises(TelegramBadRequest, match="message thread not found"):
        await bot.send_message(staff.id, "x", message_thread_id=1 + topic)  # a message id, not a topic

    assert await bot.close_forum_topic(staff.id, topic)
    assert staff.topic(topic).closed
    with pytest.raises(TelegramBadRequest, match="TOPIC_CLOSED"):
        await bot.send_message(staff.id, "x", message_thread_id=topic)
    with pytest.raises(TelegramBadRequest, match="TOPIC_CLOSED"):
        await bot.copy_message(staff.id, ana.id, ana.last_sent.message_id, message_thread_id=topic)
    with pytest.raises(TelegramBadRequest, match="TOPIC_NOT_MODIFIED"):
        await bot.close_forum_topic(staff.id, topic)
    assert await bot.reopen_forum_topic(staff.id, topic)
    sent = await bot.send_message(staff.id, "de nuevo abierto", message_thread_id=topic)
    assert sent.message_id == 4  # the closed and reopened service messages took ids 2 and 3

    assert await bot.delete_forum_topic(staff.id, topic)
    assert (staff.messages, staff.topics) == ([], [])
    with pytest.raises(TelegramBadRequest, match="message thread not found"):
        await bot.send_message(staff.id, "x", message_thread_id=topic)
    with pytest.raises(TelegramBadRequest, match="TOPIC_ID_INVALID"):
        await bot.close_forum_topic(staff.id, topic)


async def test_not_a_forum(bot: Bot, intake: FakeGroup, ana: FakeUser) -> None:
    """Topic methods on a supergroup without topics or a private chat are "the chat is not a forum"."""
    with pytest.raises(TelegramBadRequest, match="the chat is not a forum"):
        await bot.create_forum_topic(intake.id, "Ana")
    with pytest.raises(TelegramBadRequest, match="the chat is not a forum"):
        await bot.create_forum_topic(ana.id, "Ana")
    with pytest.raises(TelegramBadRequest, match="the chat is not a forum"):
        await bot.close_forum_topic(intake.id, 1)
    await bot.send_message(intake.id, "hola")
    with pytest.raises(TelegramBadRequest, match="message thread not found"):
        await bot.send_message(intake.id, "x", message_thread_id=1)


async def test_topic_names_colours_and_edits(
    bot: Bot, server: FakeBotAPI, staff: FakeGroup, http: aiohttp.ClientSession
) -> None:
    """Names are trimmed and cut to 128 characters, blank ones refused; colours must be Telegram's six; edits rename."""
    long = await bot.create_forum_topic(staff.id, "  " + "n" * 130, icon_color=0xFB6F5F)
    assert (long.name, long.icon_color) == ("n" * 128, 0xFB6F5F)
    with pytest.raises(TelegramBadRequest, match="title must be non-empty"):
        await bot.create_forum_topic(staff.id, "   ")
    status, body = await call(http, server, "createForumTopic", chat_id=staff.id)
    assert (status, body["description"]) == (400, "Bad Request: title must be non-empty")
    with pytest.raises(TelegramBadRequest, match="invalid icon color specified"):
        await bot.create_forum_topic(staff.id, "Ana", icon_color=0x123456)

    assert await bot.edit_forum_topic(staff.id, long.message_thread_id, name="Ana (cerrado)")
    assert [t.name for t in staff.topics] == ["Ana (cerrado)"]
    with pytest.raises(TelegramBadRequest, match="TOPIC_NOT_MODIFIED"):
        await bot.edit_forum_topic(staff.id, long.message_thread_id, name="Ana (cerrado)")
    with pytest.raises(TelegramBadRequest, match="TOPIC_ID_INVALID"):
        await bot.edit_forum_topic(staff.id, 999, name="x")


async def test_copy_user_media_into_a_topic_and_back(bot: Bot, staff: FakeGroup, ana: FakeUser) -> None:
    """A person's photo, document, voice and location are copied into a topic, and a staff photo back to the person."""
    topic = (await bot.create_forum_topic(staff.id, "Ana")).message_thread_id
    await ana.send_photo(caption="pasaporte")
    await ana.send_document("cédula.pdf", b"%PDF-1.7 cedula", caption="cédula")
    await ana.send_voice(duration=5)
    await ana.send_location(10.5, -66.9)
    await ana.send("<b>no es HTML</b>")
    assert [m.sender["id"] for m in ana.chat.log] == [ana.id] * 5  # recorded with their content
    for message_id in range(1, 6):
        copy = await bot.copy_message(staff.id, ana.id, message_id, message_thread_id=topic)
        assert copy.message_id == message_id + 1
    photo, document, voice, location, text = staff.topic(topic).messages
    assert (photo.text, "photo" in photo.content, photo.topic_id) == ("pasaporte", True, topic)
    assert document.document is not None
    assert (document.document.content, document.document.file_name, document.text) == (
        b"%PDF-1.7 cedula",
        "cédula.pdf",
        "cédula",
    )
    assert voice.content["voice"]["duration"] == 5
    assert location.content["location"] == {"latitude": 10.5, "longitude": -66.9}
    assert (text.text, text.entities) == ("<b>no es HTML</b>", [])
    assert all("forward_origin" not in m.to_api() for m in (photo, document, voice, location, text))

    luis = staff.member(first_name="Luis")
    await luis.send_photo(caption="firma aquí", thread_id=topic)
    staff_photo = luis.last_sent
    assert (staff_photo.topic_id, staff_photo.sender["id"]) == (topic, luis.id)
    back = await bot.copy_message(ana.id, staff.id, staff_photo.message_id)
    received = await ana.next_message(timeout=1)
    assert (received.message_id, received.text, "photo" in received.content) == (back.message_id, "firma aquí", True)
    assert (received.thread_id, received.reply_to) == (None, None)  # a copy keeps content, not its place

    with pytest.raises(TelegramBadRequest, match="message to copy not found"):
        await bot.copy_message(staff.id, ana.id, 99, message_thread_id=topic)
    with pytest.raises(TelegramBadRequest, match="message can't be copied"):
        await bot.copy_message(ana.id, staff.id, topic)  # the topic's service message
    with pytest.raises(TelegramBadRequest, match="message thread not found"):
        await bot.copy_message(staff.id, ana.id, 1, message_thread_id=99)


async def test_member_messages_in_a_topic_reach_get_updates(bot: Bot, staff: FakeGroup) -> None:
    """Members post in a topic by thread id or by replying; a reply in General has a thread id but is not in a topic."""
    topic = (await bot.create_forum_topic(staff.id, "Ana")).message_thread_id
    card = await bot.send_message(staff.id, "Ana escribió: hola", message_thread_id=topic)
    general = await bot.send_message(staff.id, "Turnos de hoy")
    luis = staff.member(first_name="Luis")
    await luis.send("Hola Ana, soy Luis", thread_id=topic)
    await luis.reply("¿Tienes pasaporte?", to=staff.topic(topic).last_message)
    await luis.send_location(thread_id=topic)
    await luis.reply("Yo me encargo", to=staff.last_message)

    updates = await bot(GetUpdates())
    messages = [u.message for u in updates if u.message]
    assert len(messages) == 4
    plain, reply, location, in_general = messages
    assert (plain.message_thread_id, plain.is_topic_message, plain.text) == (topic, True, "Hola Ana, soy Luis")
    assert plain.reply_to_message is not None
    assert plain.reply_to_message.forum_topic_created is not None  # Telegram's quirk: replies to the topic root
    assert (reply.message_thread_id, reply.is_topic_message) == (topic, True)
    assert reply.reply_to_message is not None
    assert (reply.reply_to_message.message_id, reply.reply_to_message.text) == (card.message_id, card.text)
    assert reply.reply_to_message.reply_to_message is None  # nested replies are never included
    assert location.location is not None
    assert (location.message_thread_id, location.location.latitude) == (topic, 10.4806)
    assert (in_general.message_thread_id, in_general.is_topic_message) == (general.message_id, None)
    assert in_general.reply_to_message is not None
    assert in_general.reply_to_message.message_id == general.message_id

    with pytest.raises(TelegramBadRequest, match="message thread not found"):  # a reply chain is not a topic
        await bot.send_message(staff.id, "x", message_thread_id=in_general.message_thread_id)
    await bot.close_forum_topic(staff.id, topic)
    with pytest.raises(AssertionError, match="TOPIC_CLOSED"):
        await luis.send("¿sigue abierto?", thread_id=topic)
    with pytest.raises(AssertionError, match="message thread not found"):
        await luis.send("x", thread_id=999)


async def test_bot_replies_follow_the_replied_message_into_its_topic(bot: Bot, staff: FakeGroup) -> None:
    """reply_parameters (or aiogram's legacy reply_to_message_id) put the reply in the replied message's topic."""
    topic = (await bot.create_forum_topic(staff.id, "Ana")).message_thread_id
    luis = staff.member(first_name="Luis")
    await luis.send("¿Quién atiende?", thread_id=topic)
    question = luis.last_sent
    answer = await bot.send_message(staff.id, "Yo", reply_parameters=ReplyParameters(message_id=question.message_id))
    assert (answer.message_thread_id, answer.is_topic_message) == (topic, True)
    assert answer.reply_to_message is not None
    assert answer.reply_to_message.message_id == question.message_id
    legacy = await bot.send_message(staff.id, "Yo también", reply_to_message_id=question.message_id)
    assert (legacy.message_thread_id, legacy.reply_to_message is not None) == (topic, True)
    with pytest.raises(TelegramBadRequest, match="message to be replied not found"):
        await bot.send_message(staff.id, "x", reply_parameters=ReplyParameters(message_id=999))
    alone = await bot.send_message(
        staff.id, "x", reply_parameters=ReplyParameters(message_id=999, allow_sending_without_reply=True)
    )
    assert (alone.reply_to_message, alone.message_thread_id) == (None, None)


async def test_edits_produce_edited_message_updates(bot: Bot, server: FakeBotAPI, staff: FakeGroup) -> None:
    """member.edit and user.edit change their own messages and enqueue edited_message updates with edit_date."""
    topic = (await bot.create_forum_topic(staff.id, "Ana")).message_thread_id
    luis = staff.member(first_name="Luis")
    ana = server.user(first_name="Ana")
    await luis.send("Hola Aan", thread_id=topic)
    await ana.send("tengo pasporte")
    await ana.send_photo(caption="foto")
    await bot(GetUpdates())
    staff_message, private_message, photo = luis.last_sent, ana.chat.log[0], ana.last_sent

    await luis.edit(staff_message, "Hola Ana")
    await ana.edit(private_message, "tengo pasaporte")
    await ana.edit(photo, "foto del pasaporte")
    updates = await bot(GetUpdates(offset=-3))
    edits = [u.edited_message for u in updates if u.edited_message]
    assert [(e.chat.id, e.text or e.caption) for e in edits] == [
        (staff.id, "Hola Ana"),
        (ana.id, "tengo pasaporte"),
        (ana.id, "foto del pasaporte"),
    ]
    assert all(e.edit_date is not None for e in edits)
    assert (edits[0].message_thread_id, edits[0].is_topic_message) == (topic, True)
    assert (staff_message.text, staff_message.history[0].text) == ("Hola Ana", "Hola Aan")

    mine = await bot.send_message(ana.id, "del bot")
    with pytest.raises(AssertionError, match="own messages"):
        await ana.edit(ana.last_message, "hackeado")
    assert mine.text == "del bot"
    with pytest.raises(AssertionError, match="changes nothing"):
        await ana.edit(private_message, "tengo pasaporte")


async def test_group_rate_limit_gives_429_within_the_window(bot: Bot, server: FakeBotAPI, staff: FakeGroup) -> None:
    """per_group_per_minute caps each group's sends in a rolling window; private chats and other groups are spared."""
    server.set_rate_limits(per_group_per_minute=3, group_window_seconds=0.5)
    topic = (await bot.create_forum_topic(staff.id, "Ana")).message_thread_id
    await bot.send_message(staff.id, "1")
    await bot.send_message(staff.id, "2", message_thread_id=topic)
    await bot.send_message(staff.id, "3")
    with pytest.raises(TelegramRetryAfter) as error:
        await bot.send_message(staff.id, "4", message_thread_id=topic)
    assert error.value.retry_after == 1
    assert server.stats.rate_limited == 1
    ana = server.user(first_name="Ana")
    for text in ("a", "b", "c", "d"):
        await bot.send_message(ana.id, text)
    await bot.send_message(server.group(title="Otra").id, "otro grupo")
    await asyncio.sleep(0.6)
    await bot.send_message(staff.id, "4")
    assert [m.text for m in staff.messages] == ["1", "2", "3", "4"]


async def test_real_dispatcher_hands_a_conversation_to_a_topic(server: FakeBotAPI, staff: FakeGroup) -> None:
    """An aiogram Dispatcher copies a person's messages into their topic and staff replies there back to them."""
    dispatcher = Dispatcher()
    topics: dict[int, int] = {}

    @dispatcher.message(F.chat.type == "private")
    async def from_person(message: Message) -> None:
        assert message.bot is not None
        assert message.from_user is not None
        if message.from_user.id not in topics:
            topic = await message.bot.create_forum_topic(staff.id, message.from_user.first_name)
            topics[message.from_user.id] = topic.message_thread_id
        await message.copy_to(staff.id, message_thread_id=topics[message.from_user.id])

    @dispatcher.message(F.chat.id == staff.id, F.is_topic_message)
    async def from_staff(message: Message) -> None:
        person = next(user for user, thread in topics.items() if thread == message.message_thread_id)
        await message.copy_to(person)
        await message.answer("Enviado ✔")  # aiogram answers in the same topic

    ana = server.user(first_name="Ana")
    luis = staff.member(first_name="Luis")
    real_bot = Bot(server.token, session=AiohttpSession(api=TelegramAPIServer.from_base(server.base_url)))
    polling = asyncio.create_task(dispatcher.start_polling(real_bot, handle_signals=False, polling_timeout=1))
    try:
        await ana.send("Necesito ayuda")
        topic = await staff.wait_for_topic("Ana", timeout=5)
        assert (await topic.next_message(timeout=5)).text == "Necesito ayuda"
        await luis.send("Hola Ana, ¿en qué te ayudo?", thread_id=topic.thread_id)
        assert (await ana.next_message(timeout=5)).text == "Hola Ana, ¿en qué te ayudo?"
        assert (await topic.next_message(timeout=5)).text == "Enviado ✔"
    finally:
        await dispatcher.stop_polling()
        await asyncio.wait_for(polling, 5)
        await real_bot.session.close()


# -- photos ---------------------------------------------------------------------------------------------


async def test_send_photo_again_by_a_users_file_id(bot: Bot, server: FakeBotAPI, ana: FakeUser) -> None:
    """A photo a user sent goes on by any size's file_id; the reader sees .photo and the parsed .caption."""
    ben = server.user(first_name="Ben", language_code="en")
    await ana.send_photo(caption="pasaporte")
    original = ana.last_sent.photo
    assert original is not None
    sent = await bot.send_photo(
        ben.id,
        original.file_id,
        caption="<b>Aviso</b> importante",
        parse_mode="HTML",
        reply_markup=keyboard(("Leído", "read")),
    )
    assert sent.photo is not None
    assert [(p.file_id, p.width, p.height) for p in sent.photo] == [
        (size["file_id"], size["width"], size["height"]) for size in original.sizes
    ]
    assert (sent.caption, sent.text) == ("Aviso importante", None)
    assert [(e.type, e.offset, e.length) for e in sent.caption_entities or []] == [("bold", 0, 5)]
    received = await ben.next_message(timeout=1)
    assert received.photo is original
    assert (received.caption, received.text, received.source_text) == (
        "Aviso importante",
        "Aviso importante",
        "<b>Aviso</b> importante",
    )
    assert received.labels == ["Leído"]

    by_smallest = await bot.send_photo(ben.id, original.file_ids[0])
    assert by_smallest.photo is not None
    assert by_smallest.photo[-1].file_id == original.file_id
    assert (ben.last_message.caption, ben.last_message.text) == (None, "")
    await bot.send_message(ben.id, "texto")
    assert (ben.last_message.caption, ben.last_message.photo) == (None, None)


async def test_uploaded_photo_keeps_its_bytes_and_gets_telegrams_sizes(
    bot: Bot, ana: FakeUser, staff: FakeGroup
) -> None:
    """An uploaded picture gets Telegram's smaller copies; bytes, spoiler and topic are kept, and so do copies."""
    data = png_image(1600, 1200)
    topic = (await bot.create_forum_topic(staff.id, "Ana")).message_thread_id
    sent = await bot.send_photo(
        staff.id,
        BufferedInputFile(data, filename="cartel.png"),
        caption="Cartel",
        message_thread_id=topic,
        has_spoiler=True,
        show_caption_above_media=True,
    )
    assert sent.photo is not None
    assert [(p.width, p.height) for p in sent.photo] == [(90, 68), (320, 240), (800, 600), (1280, 960), (1600, 1200)]
    assert sent.photo[-1].file_size == len(data)
    assert (sent.message_thread_id, sent.is_topic_message) == (topic, True)
    assert (sent.has_media_spoiler, sent.show_caption_above_media) == (True, True)
    stored = staff.topic(topic).last_message
    assert stored.photo is not None
    assert (stored.photo.content, stored.photo.file_id, stored.caption) == (data, sent.photo[-1].file_id, "Cartel")

    again = await bot.send_photo(ana.id, sent.photo[0].file_id)
    assert again.photo is not None
    assert [p.file_unique_id for p in again.photo] == [p.file_unique_id for p in sent.photo]
    await bot.copy_message(ana.id, staff.id, sent.message_id, caption="Copia")
    copied = ana.last_message
    assert (copied.photo, copied.caption) == (stored.photo, "Copia")
    small = await bot.send_photo(ana.id, BufferedInputFile(png_image(64, 48), filename="icono.png"))
    assert [(p.width, p.height) for p in small.photo or []] == [(64, 48)]


async def test_send_photo_validation(bot: Bot, server: FakeBotAPI, http: aiohttp.ClientSession, ana: FakeUser) -> None:
    """Unknown or mistyped file ids, non-pictures, bad dimensions, big files and long captions are Telegram's 400s."""

    async def refusal(photo: str | bytes, **kwargs: Any) -> str:
        file = photo if isinstance(photo, str) else BufferedInputFile(photo, filename="foto.jpg")
        with pytest.raises(TelegramBadRequest) as error:
            await bot.send_photo(ana.id, file, **kwargs)
        return error.value.message

    await ana.send_document("cédula.pdf", b"%PDF")
    document_id = ana.last_sent.document.file_id if ana.last_sent.document else ""
    await ana.send_photo()
    photo_id = ana.last_sent.photo.file_id if ana.last_sent.photo else ""
    assert await refusal("NoSuchFileId") == "Bad Request: wrong file identifier/HTTP URL specified"
    assert await refusal("https://example.org/a.jpg") == "Bad Request: failed to get HTTP URL content"
    assert await refusal(document_id) == "Bad Request: can't use file of type Document as Photo"
    with pytest.raises(TelegramBadRequest) as error:
        await bot.send_document(ana.id, photo_id)
    assert error.value.message == "Bad Request: can't use file of type Photo as Document"
    assert await refusal(b"%PDF-1.4 not a picture") == "Bad Request: IMAGE_PROCESS_FAILED"
    assert await refusal(png_image(9001, 1000)) == "Bad Request: PHOTO_INVALID_DIMENSIONS"  # sides add up to 10001
    assert await refusal(png_image(2100, 100)) == "Bad Request: PHOTO_INVALID_DIMENSIONS"  # 21 times as wide
    too_big = png_image(8, 8) + b"\0" * (10 * 1024 * 1024)
    assert await refusal(too_big) == "Bad Request: PHOTO_SAVE_FILE_INVALID"
    assert await refusal(photo_id, caption="a" * 1025) == "Bad Request: message caption is too long"
    status, body = await call(http, server, "sendPhoto", chat_id=ana.id, caption="sin foto")
    assert (status, body["description"]) == (400, "Bad Request: there is no photo in the request")
    assert ana.messages == []

    await bot.send_photo(ana.id, BufferedInputFile(png_image(9000, 1000), filename="panorama.png"))
    await bot.send_photo(ana.id, BufferedInputFile(png_image(2000, 100), filename="franja.png"))
    await bot.send_photo(ana.id, photo_id, caption="<b>" + "a" * 1024 + "</b>", parse_mode="HTML")
    assert [m.photo.width if m.photo else None for m in ana.messages] == [2560, 2000, 1280]
    assert len(ana.last_message.caption or "") == 1024


def test_image_size_reads_picture_headers() -> None:
    """image_size reads PNG, GIF, JPEG and WebP headers without decoding; anything else is no picture."""
    jpeg = (
        b"\xff\xd8"
        + b"\xff\xe0"
        + struct.pack(">H", 16)
        + b"JFIF\x00"
        + bytes(9)
        + b"\xff\xc0"
        + struct.pack(">HBHH", 17, 8, 600, 800)
    )
    gif = b"GIF89a" + struct.pack("<HH", 7, 5) + bytes(8)

    def webp(chunk: bytes, payload: bytes) -> bytes:
        return (
            b"RIFF"
            + struct.pack("<I", 4 + 8 + len(payload))
            + b"WEBP"
            + chunk
            + struct.pack("<I", len(payload))
            + payload
        )

    lossy = webp(b"VP8 ", b"\x00\x00\x00\x9d\x01\x2a" + struct.pack("<HH", 320, 240))
    lossless = webp(b"VP8L", b"\x2f" + struct.pack("<I", (319) | (239 << 14)))
    extended = webp(b"VP8X", bytes(4) + (319).to_bytes(3, "little") + (239).to_bytes(3, "little"))
    assert image_size(png_image(3, 2)) == (3, 2)
    assert image_size(gif) == (7, 5)
    assert image_size(jpeg) == (800, 600)
    assert image_size(lossy) == image_size(lossless) == image_size(extended) == (320, 240)
    for garbage in (b"", b"%PDF-1.4", png_image(3, 2)[:20], jpeg[:-4], b"GIF89a" + bytes(4)):
        assert image_size(garbage) is None, garbage


async def test_send_document_again_by_a_users_file_id(bot: Bot, ana: FakeUser, intake: FakeGroup) -> None:
    """A document a user sent goes on by file_id, bytes included, with a caption of up to 1024 visible characters."""
    await ana.send_document("cédula.pdf", b"%PDF-1.7 cedula", caption="mi cédula")
    original = ana.last_sent.document
    assert original is not None
    sent = await bot.send_document(intake.id, original.file_id, caption="<i>" + "c" * 1024 + "</i>", parse_mode="HTML")
    assert sent.document is not None
    assert sent.document.file_unique_id == original.file_unique_id
    received = await intake.next_message(timeout=1)
    assert received.document is original
    assert (received.caption, received.text) == ("c" * 1024, "c" * 1024)
    with pytest.raises(TelegramBadRequest, match="message caption is too long"):
        await bot.send_document(intake.id, original.file_id, caption="c" * 1025)


# -- broadcasts -----------------------------------------------------------------------------------------


async def test_blocked_deactivated_and_unknown_recipients(
    bot: Bot, server: FakeBotAPI, http: aiohttp.ClientSession, ana: FakeUser
) -> None:
    """Each way a recipient can be out of reach gets Telegram's exact error, from every kind of send."""
    ben, eve = server.user(first_name="Ben"), server.user(first_name="Eve")
    await ana.send_photo()
    photo_id = ana.last_sent.photo.file_id if ana.last_sent.photo else ""
    server.block(ben.id)
    server.deactivate(eve.id)
    server.block(eve.id)  # a deleted account is deleted, blocked or not
    expected = {
        ben.id: (403, "Forbidden: bot was blocked by the user"),
        eve.id: (403, "Forbidden: user is deactivated"),
        987654321: (400, "Bad Request: chat not found"),
    }
    sends: dict[str, dict[str, Any]] = {
        "sendMessage": {"text": "hola"},
        "sendPhoto": {"photo": photo_id},
        "copyMessage": {"from_chat_id": ana.id, "message_id": 1},
        "sendChatAction": {"action": "typing"},
    }
    for chat_id, (status, description) in expected.items():
        for method, params in sends.items():
            answer = await call(http, server, method, chat_id=chat_id, **params)
            assert answer == (status, {"ok": False, "error_code": status, "description": description}), method
    with pytest.raises(TelegramForbiddenError, match="user is deactivated"):
        await bot.send_document(eve.id, BufferedInputFile(b"x", filename="a.txt"))
    server.unblock(eve.id)
    with pytest.raises(TelegramForbiddenError, match="user is deactivated"):
        await bot.send_message(eve.id, "¿sigues ahí?")
    assert server.deliveries() == Counter()
    assert (server.is_deactivated(eve.id), server.is_deactivated(ben.id)) == (True, False)

    with pytest.raises(AssertionError, match="account was deleted"):
        await eve.send("hola")
    await bot.send_message(ana.id, "¿Sí?", reply_markup=keyboard(("Sí", "yes")))
    server.deactivate(ana.id)
    with pytest.raises(AssertionError, match="account was deleted"):
        await ana.tap("Sí")
    with pytest.raises(ValueError, match="only users"):
        server.deactivate(server.group(title="Intake").id)


async def test_global_limit_meters_every_send_and_edit(
    server: FakeBotAPI, http: aiohttp.ClientSession, ana: FakeUser
) -> None:
    """Every send and edit method draws on the global limit, and its 429 carries parameters.retry_after."""
    ben = server.user(first_name="Ben")
    await ana.send_photo()
    await ana.send_document()
    photo, document = ana.chat.log[0].photo, ana.chat.log[1].document
    assert photo is not None
    assert document is not None
    markup = {"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]}
    _, sent = await call(http, server, "sendMessage", chat_id=ben.id, text="editable", reply_markup=markup)
    message_id = sent["result"]["message_id"]
    attempts: dict[str, dict[str, Any]] = {
        "sendMessage": {"chat_id": ben.id, "text": "hola"},
        "sendPhoto": {"chat_id": ben.id, "photo": photo.file_id},
        "sendDocument": {"chat_id": ben.id, "document": document.file_id},
        "copyMessage": {"chat_id": ben.id, "from_chat_id": ana.id, "message_id": 1},
        "editMessageText": {"chat_id": ben.id, "message_id": message_id, "text": "editado", "reply_markup": markup},
        "editMessageReplyMarkup": {
            "chat_id": ben.id,
            "message_id": message_id,
            "reply_markup": {"inline_keyboard": [[{"text": "B", "callback_data": "b"}]]},
        },
    }
    too_many = {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 1",
        "parameters": {"retry_after": 1},
    }
    for method, params in attempts.items():
        server.set_rate_limits(global_per_second=1)
        assert (await call(http, server, "sendMessage", chat_id=ana.id, text="takes the token"))[0] == 200
        assert await call(http, server, method, **params) == (429, too_many), method
    assert server.stats.rate_limited == len(attempts)

    server.set_rate_limits()  # no limits: the same calls go through, so the 429s were flood control alone
    for method, params in attempts.items():
        assert (await call(http, server, method, **params))[0] == 200, method


async def test_global_limit_is_a_token_bucket_with_a_one_second_burst(
    server: FakeBotAPI, http: aiohttp.ClientSession
) -> None:
    """At 2/s two sends pass at once, the third is 429, and half a second later one more passes."""
    people = [server.user(first_name=f"P{i}") for i in range(5)]
    server.set_rate_limits(global_per_second=2)
    statuses = [(await call(http, server, "sendMessage", chat_id=p.id, text="aviso"))[0] for p in people[:3]]
    assert statuses == [200, 200, 429]
    await asyncio.sleep(0.55)
    statuses = [(await call(http, server, "sendMessage", chat_id=p.id, text="aviso"))[0] for p in people[3:]]
    assert statuses == [200, 429]


async def test_paid_broadcast_has_a_bucket_of_its_own(bot: Bot, server: FakeBotAPI) -> None:
    """Sends with allow_paid_broadcast are metered against paid_per_second instead of the global limit, and counted."""
    people = [server.user(first_name=f"P{i}") for i in range(8)]
    server.set_rate_limits(global_per_second=1, paid_per_second=1)
    await bot.send_message(people[0].id, "gratis")
    with pytest.raises(TelegramRetryAfter):
        await bot.send_message(people[1].id, "gratis")
    await bot.send_message(people[1].id, "pagado", allow_paid_broadcast=True)  # the global limit does not hold it
    with pytest.raises(TelegramRetryAfter) as error:
        await bot.send_photo(people[2].id, BufferedInputFile(png_image(), "a.png"), allow_paid_broadcast=True)
    assert error.value.retry_after == 1
    assert (server.stats.messages_sent, server.stats.paid_messages, server.stats.rate_limited) == (2, 1, 2)

    server.set_rate_limits(global_per_second=1)  # paid_per_second defaults to Telegram's 1000
    await bot.send_photo(people[2].id, BufferedInputFile(png_image(), "a.png"), allow_paid_broadcast=True)
    await bot.send_document(people[3].id, BufferedInputFile(b"x", "a.txt"), allow_paid_broadcast=True)
    for person in people:  # ten paid sends in a row while the free limit is 1/s
        await bot.copy_message(person.id, people[1].id, 1, allow_paid_broadcast=True)
    assert (server.stats.paid_messages, server.stats.rate_limited) == (1 + 2 + len(people), 2)
    await bot.send_message(people[0].id, "gratis")  # the free bucket was left alone


async def test_deliveries_count_what_landed_in_each_private_chat(
    bot: Bot, server: FakeBotAPI, ana: FakeUser, intake: FakeGroup
) -> None:
    """deliveries() counts messages that landed, per private chat, unanswered ones too; delivery_times() times them."""
    ben, eve = server.user(first_name="Ben"), server.user(first_name="Eve")
    started = time.monotonic()
    await bot.send_message(ana.id, "aviso")
    server.fail_next("sendMessage", status=502, chat_id=ben.id, after_effect=True)
    with pytest.raises(TelegramServerError):
        await bot.send_message(ben.id, "aviso")  # landed, but the bot saw a 502...
    await bot.send_message(ben.id, "aviso")  # ...and retried: a duplicate
    server.block(eve.id)
    with pytest.raises(TelegramForbiddenError):
        await bot.send_message(eve.id, "aviso")
    deleted = await bot.send_message(ana.id, "borrado")
    await bot.delete_message(ana.id, deleted.message_id)
    await bot.edit_message_text("aviso editado", chat_id=ana.id, message_id=1)
    await bot.send_message(intake.id, "en el grupo")

    assert server.deliveries() == Counter({ana.id: 2, ben.id: 2})
    assert server.deliveries()[eve.id] == 0
    assert server.deliveries(private_only=False) == Counter({ana.id: 2, ben.id: 2, intake.id: 1})
    assert server.deliveries(lambda m: m.text.startswith("aviso")) == Counter({ana.id: 1, ben.id: 2})
    times = server.delivery_times(private_only=False)
    assert len(times) == server.stats.messages_sent == 5
    assert started <= times[0] <= times[-1] <= time.monotonic()
    assert times == sorted(times)
    assert server.delivery_times() == sorted(m.sent_at for user in (ana, ben) for m in user.chat.bot_log)
    assert len(server.delivery_times(lambda m: m.text == "borrado")) == 1


async def test_broadcast_to_a_thousand_people(bot: Bot, server: FakeBotAPI) -> None:
    """A concurrent paid broadcast through aiogram reaches each of 1000 users exactly once, unhindered by 30/s."""
    people = [server.user(first_name=f"P{i}") for i in range(1000)]
    server.set_rate_limits(global_per_second=30)
    limit = asyncio.Semaphore(50)

    async def send(person: FakeUser) -> None:
        async with limit:
            await bot.send_message(person.id, "Aviso: nueva fecha", allow_paid_broadcast=True)

    await asyncio.gather(*(send(person) for person in people))
    assert server.deliveries() == Counter(dict.fromkeys((p.id for p in people), 1))
    assert (server.stats.paid_messages, server.stats.rate_limited) == (1000, 0)
    assert people[-1].last_message.text == "Aviso: nueva fecha"


def test_ten_thousand_users_are_cheap() -> None:
    """Creating a broadcast audience is cheap: 10,000 users with their chats take well under a second here."""
    server = FakeBotAPI()
    started = time.perf_counter()
    people = [server.user(first_name=f"P{i}") for i in range(10_000)]
    assert time.perf_counter() - started < 3  # about 0.15 s on a developer machine; generous for loaded CI
    assert len({p.id for p in people}) == len(server.users) == 10_000


# -- the bot's membership: added to groups and channels, leaving them -----------------------------------


async def test_a_group_without_the_bot_sends_it_nothing(bot: Bot, server: FakeBotAPI) -> None:
    """In a group the bot is not in, members talk but no update reaches the bot, and sends there are 403."""
    stranger = server.group(title="Random", with_bot=False)
    eve = stranger.member(first_name="Eve")
    await eve.send("hola a todos")
    assert (stranger.bot_status, stranger.bot_present) == ("left", False)
    assert await bot(GetUpdates()) == []
    assert server.stats.updates_unseen == 1
    with pytest.raises(TelegramForbiddenError, match="bot is not a member of the supergroup chat"):
        await bot.send_message(stranger.id, "hola")


async def test_adding_the_bot_pushes_my_chat_member_and_the_joined_message(bot: Bot, server: FakeBotAPI) -> None:
    """add_bot gives the bot my_chat_member (left to member, from who added it), then the new_chat_members message."""
    stranger = server.group(title="Random", supergroup=False, with_bot=False)
    eve = stranger.member(first_name="Eve")
    update_id = await stranger.add_bot(by=eve)
    change, joined = await bot(GetUpdates())
    assert change.update_id == update_id
    assert change.my_chat_member is not None
    assert change.my_chat_member.chat.id == stranger.id
    assert change.my_chat_member.chat.type == "group"
    assert change.my_chat_member.from_user.id == eve.id
    assert isinstance(change.my_chat_member.old_chat_member, ChatMemberLeft)
    assert isinstance(change.my_chat_member.new_chat_member, ChatMemberMember)
    assert change.my_chat_member.new_chat_member.user.id == bot.id
    assert joined.message is not None
    assert [u.id for u in joined.message.new_chat_members or []] == [bot.id]
    assert stranger.bot_present
    await bot.send_message(stranger.id, "hola")  # now it may
    with pytest.raises(AssertionError, match="already in"):
        await stranger.add_bot(by=eve)


async def test_leave_chat(bot: Bot, server: FakeBotAPI) -> None:
    """leaveChat takes the bot out: True, a my_chat_member about itself, then no updates and 403 on sends."""
    stranger = server.group(title="Random", with_bot=False)
    eve = stranger.member(first_name="Eve")
    await stranger.add_bot(by=eve, admin=True)
    [added, _] = await bot(GetUpdates())
    assert added.my_chat_member is not None
    assert isinstance(added.my_chat_member.new_chat_member, ChatMemberAdministrator)
    assert await bot.leave_chat(stranger.id) is True
    assert stranger.bot_status == "left"
    [left] = await bot(GetUpdates(offset=added.update_id + 2))
    assert left.my_chat_member is not None
    assert left.my_chat_member.from_user.id == bot.id
    assert isinstance(left.my_chat_member.old_chat_member, ChatMemberAdministrator)
    assert isinstance(left.my_chat_member.new_chat_member, ChatMemberLeft)
    await eve.send("¿sigue ahí?")
    assert await bot(GetUpdates(offset=left.update_id + 1)) == []
    with pytest.raises(TelegramForbiddenError, match="bot is not a member of the supergroup chat"):
        await bot.send_message(stranger.id, "hola")
    with pytest.raises(TelegramForbiddenError, match="bot is not a member of the supergroup chat"):
        await bot.leave_chat(stranger.id)
    assert [c.status for c in server.calls_to("leaveChat")] == [200, 403]


async def test_leave_chat_refusals(bot: Bot, server: FakeBotAPI, http: aiohttp.ClientSession, ana: FakeUser) -> None:
    """A private chat cannot be left, an unknown chat is not found, chat_id is required, and a kicked bot is out."""
    with pytest.raises(TelegramBadRequest, match="chat member status can't be changed in private chats"):
        await bot.leave_chat(ana.id)
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.leave_chat(-1009999999999)
    status, body = await call(http, server, "leaveChat")
    assert (status, body["description"]) == (400, "Bad Request: chat_id is empty")
    intake = server.group(title="Intake")
    await intake.remove_bot(by=intake.member(first_name="María"))
    [kicked] = await bot(GetUpdates())
    assert kicked.my_chat_member is not None
    assert isinstance(kicked.my_chat_member.new_chat_member, ChatMemberBanned)
    with pytest.raises(TelegramForbiddenError, match="bot was kicked from the supergroup chat"):
        await bot.leave_chat(intake.id)
    with pytest.raises(TelegramForbiddenError, match="bot was kicked from the supergroup chat"):
        await bot.send_message(intake.id, "hola")


@pytest.fixture
def news(server: FakeBotAPI) -> FakeChannel:
    return server.channel(title="Noticias")


async def test_channel_posts_come_from_the_channel(bot: Bot, server: FakeBotAPI, news: FakeChannel) -> None:
    """A channel post has sender_chat (the channel) and no from; an edit is an edited_channel_post."""
    assert news.id == -1001000000001
    assert news.chat.type == "channel"
    await news.post("Hoy no abrimos")
    await news.edit_post(news.last_post, "Hoy sí abrimos")
    post, edited = await bot(GetUpdates())
    assert post.channel_post is not None
    assert post.channel_post.from_user is None
    assert post.channel_post.sender_chat is not None
    assert post.channel_post.sender_chat.id == news.id
    assert post.channel_post.text == "Hoy no abrimos"
    assert edited.edited_channel_post is not None
    assert edited.edited_channel_post.text == "Hoy sí abrimos"
    assert edited.edited_channel_post.edit_date is not None
    await news.post("otra")
    assert await bot(GetUpdates(offset=edited.update_id + 1, allowed_updates=["message"])) == []


async def test_channel_without_the_bot_until_it_is_added(bot: Bot, server: FakeBotAPI) -> None:
    """Posts in a channel the bot is not in reach nobody; added, the bot is an admin that can post and leave."""
    news = server.channel(title="Noticias", with_bot=False)
    await news.post("antes")
    assert await bot(GetUpdates()) == []
    owner = server.user(first_name="Owner")
    await news.add_bot(by=owner)
    await news.post("después")
    change, post = await bot(GetUpdates())
    assert change.my_chat_member is not None
    assert change.my_chat_member.chat.type == "channel"
    member = change.my_chat_member.new_chat_member
    assert isinstance(member, ChatMemberAdministrator)
    assert member.can_post_messages is True
    assert post.channel_post is not None
    assert post.channel_post.text == "después"
    await bot.send_message(news.id, "Aviso")
    assert [m.text for m in news.messages] == ["Aviso"]
    assert server.deliveries() == Counter()  # a channel is not a private chat
    assert await bot.leave_chat(news.id) is True
    with pytest.raises(TelegramForbiddenError, match="bot is not a member of the channel chat"):
        await bot.send_message(news.id, "Aviso")


# -- cross-check against the official reference --------------------------------------------------------


def _reference() -> dict[str, Any]:
    if not REFERENCE.exists():
        pytest.skip(f"Bot API reference not available at {REFERENCE}")
    data: dict[str, Any] = json.loads(REFERENCE.read_text(encoding="utf-8"))
    return data


def test_schema_matches_reference() -> None:
    """schema.py's hand-written methods have exactly the reference's fields, types and required flags."""
    reference = _reference()
    for method in METHODS:
        documented = reference["methods"][method.name]
        expected = [(f["name"], tuple(f["types"]), f["required"]) for f in documented.get("fields", [])]
        actual = [(f.name, f.types, f.required) for f in method.fields]
        assert actual == expected, f"{method.name} differs from the reference"
        assert not {f.name for f in method.legacy} & {f["name"] for f in documented.get("fields", [])}, method.name
        names = {f.name for f in method.fields}
        for requirement in method.requirements:
            assert {*requirement.fields, requirement.unless} <= names, method.name
    documented_updates = tuple(f["name"] for f in reference["types"]["Update"]["fields"] if f["name"] != "update_id")
    assert documented_updates == UPDATE_TYPES


#: Fields Telegram sends that are newer than the reference copy, and that aiogram requires (see the fake's server.py).
NEWER_THAN_REFERENCE: dict[str, frozenset[str]] = {"ChatMemberAdministrator": frozenset({"can_send_welcome_messages"})}


def _check_object(reference: dict[str, Any], type_name: str, value: Any, path: str) -> None:
    """Recursively check ``value`` against reference type ``type_name``: known fields, required present."""
    if type_name.startswith("Array of "):
        assert isinstance(value, list), path
        for index, item in enumerate(value):
            _check_object(reference, type_name.removeprefix("Array of "), item, f"{path}[{index}]")
        return
    spec = reference["types"].get(type_name)
    if spec is None:
        return  # a scalar such as String or Integer
    if "subtypes" in spec:  # one of them must fit: Message or InaccessibleMessage, ChatMember by status...
        failures = []
        for subtype in spec["subtypes"]:
            status = reference["types"][subtype]["fields"][0]
            if status["name"] == "status" and f'"{value.get("status")}"' not in status["description"]:
                continue  # ChatMemberLeft is the one "always "left""
            try:
                _check_object(reference, subtype, value, path)
            except AssertionError as failure:
                failures.append(f"{subtype}: {failure}")
            else:
                return
        raise AssertionError(f"{path}: fits none of {type_name}'s subtypes: {failures}")
    assert isinstance(value, dict), path
    fields = {f["name"]: f for f in spec.get("fields", [])}
    newer = NEWER_THAN_REFERENCE.get(type_name, frozenset())
    assert set(value) <= set(fields) | newer, f"{path}: unknown fields {set(value) - set(fields)}"
    missing = {name for name, f in fields.items() if f["required"]} - set(value)
    assert not missing, f"{path}: missing required {missing}"
    for name, item in value.items():
        if name not in newer:
            _check_object(reference, fields[name]["types"][0], item, f"{path}.{name}")


async def test_fake_payloads_match_reference(
    bot: Bot, server: FakeBotAPI, ana: FakeUser, http: aiohttp.ClientSession
) -> None:
    """Every object the fake emits (User, Message, Update, CallbackQuery, media) is shaped per the reference."""
    reference = _reference()
    _, me = await call(http, server, "getMe")
    _check_object(reference, "User", me["result"], "getMe")
    await bot.send_message(ana.id, "<b>Hola</b>", parse_mode="HTML", reply_markup=keyboard(("Sí", "yes")))
    await ana.send("/start")
    await ana.send_photo(caption="pasaporte")
    await ana.send_sticker()
    await ana.send_voice()
    await ana.send_contact()
    await ana.tap("Sí")
    _, updates = await call(http, server, "getUpdates")
    _check_object(reference, "Array of Update", updates["result"], "getUpdates")
    parsed = [Update.model_validate(u, context={"bot": bot}) for u in updates["result"]]
    assert [u.event_type for u in parsed] == ["message"] * 5 + ["callback_query"]
    _, info = await call(http, server, "getWebhookInfo")
    _check_object(reference, "WebhookInfo", info["result"], "getWebhookInfo")


async def test_group_and_document_payloads_match_reference(
    bot: Bot, server: FakeBotAPI, intake: FakeGroup, http: aiohttp.ClientSession
) -> None:
    """Group messages, group callback queries and document messages are shaped per the reference."""
    reference = _reference()
    maria = intake.member(first_name="María", username="maria_ong")
    sent = await bot.send_document(
        intake.id, BufferedInputFile(b"%PDF", filename="a.pdf"), caption="Caso", reply_markup=keyboard(("Sí", "y"))
    )
    _check_object(reference, "Message", sent.model_dump(mode="json", exclude_none=True, by_alias=True), "sendDocument")
    await maria.send("hola")
    await maria.tap("Sí")
    await server.user(first_name="Eve").tap(data="forged", message=intake.last_message, forge=True)
    _, updates = await call(http, server, "getUpdates")
    _check_object(reference, "Array of Update", updates["result"], "getUpdates")
    assert [u["message"]["chat"]["type"] for u in updates["result"] if "message" in u] == ["supergroup"]


async def test_forum_payloads_match_reference(
    bot: Bot, server: FakeBotAPI, staff: FakeGroup, http: aiohttp.ClientSession
) -> None:
    """ForumTopic results, topic messages, replies, locations, documents and edits are shaped per the reference."""
    reference = _reference()
    _, created = await call(http, server, "createForumTopic", chat_id=staff.id, name="Ana")
    _check_object(reference, "ForumTopic", created["result"], "createForumTopic")
    topic = created["result"]["message_thread_id"]
    _, sent = await call(http, server, "sendMessage", chat_id=staff.id, text="hola", message_thread_id=topic)
    _check_object(reference, "Message", sent["result"], "sendMessage")
    luis = staff.member(first_name="Luis")
    await luis.send("hola", thread_id=topic)
    await luis.reply("respuesta", to=staff.last_message)
    await luis.send_location(thread_id=topic)
    await luis.send_document(thread_id=topic)
    await luis.edit(staff.chat.log[-4], "hola, editado")
    await server.user(first_name="Ana").send_document("a.pdf", caption="cédula")
    _, updates = await call(http, server, "getUpdates")
    _check_object(reference, "Array of Update", updates["result"], "getUpdates")
    assert [next(k for k in u if k != "update_id") for u in updates["result"]] == ["message"] * 4 + [
        "edited_message",
        "message",
    ]


async def test_membership_and_channel_payloads_match_reference(
    bot: Bot, server: FakeBotAPI, http: aiohttp.ClientSession
) -> None:
    """my_chat_member (every status the fake uses, groups, forums and channels), the joined message and channel
    posts are shaped per the reference."""
    reference = _reference()
    plain = server.group(title="Random", supergroup=False, with_bot=False)
    forum = server.group(title="Foro", forum=True, with_bot=False)
    news = server.channel(title="Noticias", with_bot=False)
    eve = plain.member(first_name="Eve")
    await plain.add_bot(by=eve)
    await forum.add_bot(by=forum.member(first_name="Luis"), admin=True)
    await news.add_bot(by=eve)
    await news.post("Hoy no abrimos")
    await news.edit_post(news.last_post, "Hoy sí")
    await bot.leave_chat(forum.id)
    await plain.remove_bot(by=eve)
    _, updates = await call(http, server, "getUpdates")
    _check_object(reference, "Array of Update", updates["result"], "getUpdates")
    kinds = [next(k for k in u if k != "update_id") for u in updates["result"]]
    assert kinds == [
        "my_chat_member", "message", "my_chat_member", "message", "my_chat_member", "channel_post",
        "edited_channel_post", "my_chat_member", "my_chat_member",
    ]  # fmt: skip
    statuses = [u["my_chat_member"]["new_chat_member"]["status"] for u in updates["result"] if "my_chat_member" in u]
    assert statuses == ["member", "administrator", "administrator", "left", "kicked"]
    parsed = [Update.model_validate(u, context={"bot": bot}) for u in updates["result"]]
    assert [u.event_type for u in parsed] == kinds


async def test_photo_payloads_match_reference(
    bot: Bot, server: FakeBotAPI, ana: FakeUser, http: aiohttp.ClientSession
) -> None:
    """Photo messages, sent by file_id or uploaded, and a user's photo in an update are shaped per the reference."""
    reference = _reference()
    await ana.send_photo(caption="pasaporte")
    photo = ana.last_sent.photo
    assert photo is not None
    _, sent = await call(
        http,
        server,
        "sendPhoto",
        chat_id=ana.id,
        photo=photo.file_ids[1],
        caption="<b>Hola</b>",
        parse_mode="HTML",
        has_spoiler=True,
        show_caption_above_media=True,
        allow_paid_broadcast=True,
    )
    _check_object(reference, "Message", sent["result"], "sendPhoto")
    uploaded = await bot.send_photo(ana.id, BufferedInputFile(png_image(800, 600), filename="a.png"), caption="x")
    _check_object(reference, "Message", uploaded.model_dump(mode="json", exclude_none=True, by_alias=True), "upload")
    _, updates = await call(http, server, "getUpdates")
    _check_object(reference, "Array of Update", updates["result"], "getUpdates")
    assert [len(u["message"]["photo"]) for u in updates["result"]] == [3]
