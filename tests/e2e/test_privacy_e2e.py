"""Nothing personal in the logs, and nothing left after /delete, end to end through the fake Bot API.

One person goes through everything that handles their data: the questionnaire (tapping and typing), a referral
shared with an organisation and accepted, a conversation with staff both ways (text, a photo with a caption, a
reply, edits both sides), Telegram refusing calls with descriptions that quote them, then /delete.

It runs twice. As its own process with LOG_LEVEL=DEBUG: exactly the lines an operator would get on stderr. And
in this process with every logger of every library at DEBUG, the usual guards off (SQLAlchemy then logs each
statement with its parameters, aiosqlite each call, aiogram and aiohttp their internals): what bot.logs writes
when a library logs what it should not.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
from pathlib import Path
from types import MappingProxyType

import pytest
from sqlalchemy import update

from bot import logs
from bot.app import Core, serve
from bot.logs import JsonFormatter, hashed, set_id_secret
from bot.outgoing import READABLE
from bot.render import Renderer
from bot.storage import Participant, open_store
from bot.storage.referrals import Referrals
from bot.storage.tables import participants, tickets
from bot.texts import T
from flows.engine import OptionView, Session
from tests.e2e.conftest import PACE_ENV, BotProcess, answer, begin, settings_for, with_answers
from tests.e2e.test_referrals_e2e import organisation, referral_id, share_with
from tests.fakebotapi import FakeBotAPI, FakeUser
from tests.fakebotapi.chat import ChatMessage
from tests.fakebotapi.group import FakeGroup, FakeMember, FakeTopic
from tests.traces import Needles, database_traces, log_traces

ADMIN_ID = 626262
#: Above 2**32, as recent Telegram ids are: stored and compared as 64-bit everywhere.
PERSON_ID = 7_712_345_678
SECRET = "privacy-test-secret"
FIRST_NAME, USERNAME = "Wilmarys", "wilmarys_q7"
TYPED = (
    "no entiendo bien la pregunta, vivo en Tapachula calle Ocotlán",  # not an option: the question is asked again
    "Necesito ayuda con el expediente QX-5521 por favor",
    "Mi pasaporte venció en marzo, se llama Wilmarys Pérez",
    "Corrijo: venció en abril",
    "foto del pasaporte de Wilmarys",
)
STAFF_TEXT = ("Hola, soy Evangelina. ¿Tienes el número de pasaporte?", "Respondo a tu mensaje sobre el expediente")
STAFF_NAMES = ("Evangelina", "Bartolomeu")
PATH = with_answers(supporter="no")


def option_labels(core: Core, language: str) -> set[str]:
    """The labels of the options the person chose and the answer lines staff and organisations read."""
    program = core.program
    renderer = Renderer(core.translator, core.programs)
    labels = set()
    for question_id, option_id in PATH:
        option = program.questionnaire.question(question_id).option(option_id)
        assert option is not None
        labels.add(renderer.option_label(language, OptionView(option.id, option.text, option.date)))
    session = Session(program.id, None, MappingProxyType(dict(PATH)), tuple(q for q, _ in PATH))
    lines = {line.removeprefix("• ") for line in renderer.answers(language, session)}
    # "Sí", "No": too short to tell apart from other words; the answer lines around them still count.
    return {label for label in labels if len(label) > 4} | lines


async def tap_through(user: FakeUser, server: FakeBotAPI, core: Core) -> None:
    """The questionnaire in Spanish, with Telegram refusing calls in ways that quote the person."""
    quoting = f'Bad Request: can\'t parse entities: Unsupported start tag "{FIRST_NAME}" at byte offset 3'
    # The first reply fails for good: the error is reported (logged) and the person gets an apology.
    server.fail_next("sendMessage", status=400, description=quoting, chat_id=PERSON_ID)
    await user.send("/start")
    await user.wait_for(lambda m: m.text == core.translator.text("es", T.ERROR))
    await begin(user, "es")
    await user.send(TYPED[0])
    await user.wait_idle(quiet=0.15)
    for number, (question, option) in enumerate(PATH):
        if number == 1:
            server.fail_next("editMessageText", status=400, description=quoting, chat_id=PERSON_ID)
        if number == 2:
            too_old = f'Bad Request: query "{TYPED[0]}" is too old'
            server.fail_next("answerCallbackQuery", status=400, description=too_old)
        if number == 3:
            server.fail_next("sendMessage", status=502, chat_id=PERSON_ID)  # retried after a pause
        await answer(user, question, option)
        if number in (1, 3):
            await user.wait_idle(quiet=1.0)  # the edit failed (the buttons stay) or the next question is late


def staff_world(server: FakeBotAPI, database: Path) -> tuple[FakeGroup, FakeMember, FakeGroup, FakeMember]:
    """A staff group with topics and a volunteer; an organisation with an intake chat and a member."""
    staff_group = server.group(title="Staff", forum=True)
    volunteer = staff_group.member(first_name=STAFF_NAMES[0], username="evangelina_staff")
    intake = server.group(title="Alpha intake")
    member = intake.member(first_name=STAFF_NAMES[1], username="bartolomeu_org")
    return staff_group, volunteer, intake, member


async def import_directory(database: Path, intake: FakeGroup, member: FakeMember) -> None:
    store = await open_store(f"sqlite+aiosqlite:///{database}")
    directory = [organisation("alpha", "Alfa Ejemplo (ficticia)", intake, (member.id,))]
    await Referrals(store).import_directory(directory, dt.datetime.now(dt.UTC))
    await store.close()


async def accepted_then_talking(
    user: FakeUser, intake: FakeGroup, member: FakeMember, staff_group: FakeGroup
) -> tuple[ChatMessage, int, FakeTopic]:
    """After the questionnaire: the person shares with the organisation, which accepts; then they ask for a person
    (sharing their answers). Returns the organisation's card, the referral's id, and the person's staff topic."""
    await share_with(user, "alpha")
    card = await intake.wait_for(lambda m: bool(m.buttons))
    ref = referral_id(card)
    await member.tap(data=f"r:{ref}:1")
    await user.wait_for(lambda m: m.text.startswith("✅") and "Alfa Ejemplo" in m.text)
    await user.send("/human")
    ask = await user.wait_for(lambda m: any(b.data == "h:1" for r in m.buttons for b in r))
    await user.tap(data="h:1", message=ask)
    return card, ref, await staff_group.wait_for_topic()


async def everything_then_delete(
    server: FakeBotAPI, core: Core, staff_group: FakeGroup, volunteer: FakeMember, intake: FakeGroup, member: FakeMember
) -> None:
    """The whole life of one person's data with the bot, ending with /delete."""
    admin = server.user(user_id=ADMIN_ID, language_code="en")
    await admin.send(f"/grant volunteer {volunteer.id}")
    await admin.wait_for(lambda m: str(volunteer.id) in m.text, timeout=30)

    user = server.user(user_id=PERSON_ID, first_name=FIRST_NAME, username=USERNAME, language_code="es")
    await tap_through(user, server, core)

    card, _, topic = await accepted_then_talking(user, intake, member, staff_group)
    assert f"@{USERNAME}" in card.text  # shared on purpose, with the organisation only

    # The conversation with staff, both ways.
    await topic.wait_for(lambda m: "🎫" in m.text)
    await user.send(TYPED[1])
    copy = await topic.wait_for(lambda m: TYPED[1] in m.text)
    await user.send(TYPED[2])
    await topic.wait_for(lambda m: TYPED[2] in m.text)
    await user.edit(user.last_sent, TYPED[3])
    await user.send_photo(caption=TYPED[4])
    await topic.wait_for(lambda m: TYPED[4] in m.text)
    await volunteer.send(STAFF_TEXT[0], thread_id=topic.thread_id)
    await user.wait_for(lambda m: STAFF_TEXT[0] in m.text)
    await volunteer.reply(STAFF_TEXT[1], to=copy, thread_id=topic.thread_id)
    their_copy = await user.wait_for(lambda m: STAFF_TEXT[1] in m.text)
    await volunteer.edit(volunteer.last_sent, STAFF_TEXT[1] + ".")
    await user.wait_until(lambda: their_copy.text.endswith("expediente."))

    # And away: /delete, confirmed.
    await user.send("/delete")
    confirm = await user.wait_for(lambda m: any(b.data == "d:1" for r in m.buttons for b in r))
    await user.tap(data="d:1", message=confirm)
    await user.wait_for(lambda m: m.text == core.translator.text("es", T.DELETE_DONE))
    erased = core.translator.text("es", T.STAFF_ERASED_REMOVED, id=1)
    await staff_group.wait_for(lambda m: m.topic_id is None and erased in m.text)
    await asyncio.sleep(0.5)  # lines logged after the last visible effect

    # Nothing of theirs is left to read in the chats the bot wrote to about them: the topic went with everything
    # in it, and the organisation's card keeps one line.
    needles = needles_for(server, core)
    for chat in (staff_group, intake):
        left = [
            f"{m.message_id}: {found}" for m in chat.chat.log if not m.deleted for found in needles.found_in(m.text)
        ]
        assert not left, left


def needles_for(server: FakeBotAPI, core: Core) -> Needles:
    """Everything about the person (and the staff and organisation members who spoke with them)."""
    token_secret = server.token.partition(":")[2]
    return Needles(
        ids=frozenset({PERSON_ID}),
        texts=frozenset(
            {FIRST_NAME, USERNAME, *STAFF_NAMES, *TYPED, *STAFF_TEXT, server.token, token_secret}
            | option_labels(core, "es")
        ),
    )


def assert_clean_logs(lines: list[str], needles: Needles) -> None:
    set_id_secret(SECRET)
    assert any(hashed(PERSON_ID) in line for line in lines), "the person's lines are not there: nothing was checked"
    leaks = log_traces(lines, needles)
    assert not leaks, "\n".join(leaks)


async def assert_nothing_left(database: Path, needles: Needles) -> None:
    store = await open_store(f"sqlite+aiosqlite:///{database}")
    try:
        left = await database_traces(store.engine, needles)
    finally:
        await store.close()
    assert not left, "\n".join(left)


@pytest.mark.slow
async def test_process_logs_at_debug_carry_nothing_personal(server: FakeBotAPI, core: Core, tmp_path: Path) -> None:
    """The bot as its own process at LOG_LEVEL=DEBUG: no name, username, text, answer, raw id or token in any line
    of its stderr (hashed ids only); and after /delete no table holds anything of the person."""
    database = tmp_path / "puente.db"
    staff_group, volunteer, intake, member = staff_world(server, database)
    await import_directory(database, intake, member)
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"BOT_TOKEN", "DATABASE_URL", "TELEGRAM_API_URL"}},
        "BOT_TOKEN": server.token,
        "TELEGRAM_API_URL": server.base_url,
        "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "POLLING_TIMEOUT": "2",
        "FLOOD_BURST": "1000000",  # a scripted person taps faster than anyone reads
        **PACE_ENV,  # the fake's per-chat limit, scaled: the bot keeps to it
        "LOG_LEVEL": "DEBUG",
        "LOG_ID_SECRET": SECRET,
        "ADMIN_IDS": str(ADMIN_ID),
        "STAFF_CHAT_ID": str(staff_group.id),
        "OFFICE_HOURS": "mon-sun 00:00-23:59",
    }
    process = BotProcess(env, log=tmp_path / "bot.log")
    process.start()
    try:
        await everything_then_delete(server, core, staff_group, volunteer, intake, member)
    finally:
        process.stop()

    needles = needles_for(server, core)
    lines = (tmp_path / "bot.log").read_text(encoding="utf-8").splitlines()
    assert any('"update failed"' in line for line in lines)  # the error report was written, and checked
    assert_clean_logs(lines, needles)
    await assert_nothing_left(database, needles)


class Lines(logging.Handler):
    """Every record, formatted as bot.logs formats it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        # The fake Telegram runs in this process too: its lines (aiohttp's server side, tests.*) are not the bot's.
        if record.name.startswith(FAKE_SERVER_LOGGERS):
            return
        self.lines.append(self.format(record))


FAKE_SERVER_LOGGERS = ("tests.", "aiohttp.access", "aiohttp.server", "aiohttp.web")


async def test_every_library_at_debug_logs_nothing_personal(
    server: FakeBotAPI, core: Core, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With every logger of every library at DEBUG and the guards that quiet some of them off, bot.logs still
    writes no name, username, text, answer, raw id or token: a library's message is its template, not its data."""
    database = tmp_path / "puente.db"
    staff_group, volunteer, intake, member = staff_world(server, database)
    await import_directory(database, intake, member)
    monkeypatch.setattr(logs, "guard_third_party", lambda: None)
    everyone = [
        logging.getLogger(),
        *(v for v in logging.Logger.manager.loggerDict.values() if isinstance(v, logging.Logger)),
    ]
    levels = {logger: logger.level for logger in everyone}
    for logger in everyone:
        logger.setLevel(logging.DEBUG)
    capture = Lines()
    logging.getLogger().addHandler(capture)
    settings = settings_for(server, database).model_copy(
        update={
            "admin_ids": frozenset({ADMIN_ID}),
            "staff_chat_id": staff_group.id,
            "office_hours": "mon-sun 00:00-23:59",
        }
    )
    set_id_secret(SECRET)
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, core, handle_signals=False, stop=stop))
    try:
        await everything_then_delete(server, core, staff_group, volunteer, intake, member)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=15)
        logging.getLogger().removeHandler(capture)
        for logger, level in levels.items():
            logger.setLevel(level)

    lines = capture.lines
    assert any('"logger": "sqlalchemy.engine' in line for line in lines)  # the libraries did log: it was a test
    assert any('"logger": "aiogram' in line for line in lines)
    assert_clean_logs(lines, needles_for(server, core))


async def test_retention_forgets_someone_gone_quiet_and_clears_the_chats_too(
    server: FakeBotAPI, core: Core, tmp_path: Path
) -> None:
    """Someone shared with an organisation (accepted) and talked with staff, then went quiet for longer than the
    retention period: the scheduled purge erases them, deletes their topic, and clears the organisation's card
    down to one line saying why. Staff are not told one by one; nobody else is touched."""
    database = tmp_path / "puente.db"
    staff_group, _, intake, member = staff_world(server, database)
    await import_directory(database, intake, member)
    settings = settings_for(server, database).model_copy(
        update={
            "admin_ids": frozenset({ADMIN_ID}),
            "staff_chat_id": staff_group.id,
            "office_hours": "mon-sun 00:00-23:59",
            "retention_check_seconds": 0.3,
        }
    )
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, core, handle_signals=False, stop=stop))
    try:
        quiet = server.user(user_id=PERSON_ID, first_name=FIRST_NAME, username=USERNAME, language_code="es")
        active = server.user(first_name="Activa", language_code="es")
        for user in (quiet, active):
            await begin(user, "es")
            for question, option in PATH:
                await answer(user, question, option)
        card, ref, topic = await accepted_then_talking(quiet, intake, member, staff_group)
        await quiet.send(TYPED[1])
        await topic.wait_for(lambda m: TYPED[1] in m.text)

        # 91 days pass for one of them.
        store = await open_store(f"sqlite+aiosqlite:///{database}")
        try:
            long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=settings.retention_days + 1)
            async with store.writing() as conn:
                for table in (participants, tickets):
                    await conn.execute(update(table).where(table.c.user_id == PERSON_ID).values(updated_at=long_ago))
        finally:
            await store.close()

        await staff_group.wait_until(lambda: staff_group.topics == [], timeout=15)
        cleared = core.translator.text("es", T.CARD_CLEARED_EXPIRED, id=ref)
        await intake.wait_until(lambda: card.text == cleared)
        await staff_group.wait_idle(quiet=0.6)
        assert not [m.text for m in staff_group.messages if m.topic_id is None]  # no note per person purged
        assert [m.text for m in intake.messages if m is not card and "#" in m.text] == []  # and no notice
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=15)
    await assert_nothing_left(database, needles_for(server, core))
    store = await open_store(f"sqlite+aiosqlite:///{database}")
    try:
        assert await store.load(active.id) is not None
    finally:
        await store.close()


async def test_mydata_shows_everything_kept_and_nothing_once_erased(
    server: FakeBotAPI, core: Core, tmp_path: Path
) -> None:
    """/mydata, the right of access: in the person's language, their answers and result, the organisation they
    asked and where that stands, the conversation with staff, whether they get news, and how long it is kept.
    Someone who never accepted the notice, or who erased their data, is told nothing is kept."""
    database = tmp_path / "puente.db"
    staff_group, _, intake, member = staff_world(server, database)
    await import_directory(database, intake, member)
    settings = settings_for(server, database).model_copy(
        update={"staff_chat_id": staff_group.id, "office_hours": "mon-sun 00:00-23:59"}
    )

    def es(key: str, **params: object) -> str:
        return core.translator.text("es", key, **params)

    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, core, handle_signals=False, stop=stop))
    try:
        stranger = server.user(language_code="es")
        await stranger.send("/mydata")
        nothing = await stranger.wait_for(lambda m: es(T.DELETE_NOTHING) in m.text)
        assert core.translator.text("ht", T.DELETE_NOTHING) in nothing.text  # Telegram never says "ht"

        user = server.user(user_id=PERSON_ID, first_name=FIRST_NAME, username=USERNAME, language_code="es")
        await begin(user, "es")
        for question, option in PATH:
            await answer(user, question, option)
        await share_with(user, "alpha")
        await intake.wait_for(lambda m: bool(m.buttons))
        await user.send("/stop")
        await user.wait_idle(quiet=0.3)
        await user.send("/human")
        ask = await user.wait_for(lambda m: any(b.data == "h:0" for r in m.buttons for b in r))
        await user.tap(data="h:0", message=ask)
        await staff_group.wait_for_topic()

        await user.send("/mydata")  # while talking to staff too
        first = await user.wait_for(lambda m: m.text.startswith(es(T.MYDATA_TITLE)))
        await user.wait_for(lambda m: es(T.MYDATA_NOTHING_ELSE, days=settings.retention_days) in m.text)
        screen = user.messages[user.messages.index(first) :]
        assert all(len(m.text) <= READABLE for m in screen)  # several short messages, not one long one
        shown = "\n".join(m.text for m in screen)
        today = core.translator.date("es", dt.datetime.now(dt.UTC).date())
        session = (await stored(database, PERSON_ID)).session
        expected = [
            es(T.MYDATA_LANGUAGE, language="Español"),
            es(T.MYDATA_SINCE, date=today),
            es(T.MYDATA_ANSWERS),
            *Renderer(core.translator, core.programs).answers("es", session),
            es(T.MYDATA_RESULT, result=es("result.label.likely_eligible")),
            f"• Alfa Ejemplo (ficticia): {es('bc.referral.pending')}",
            es(T.MYDATA_TALKING),
            es(T.MYDATA_NEWS_OFF),
            es(T.MYDATA_NOTHING_ELSE, days=settings.retention_days),
        ]
        lines = shown.splitlines()
        assert [line for line in expected if line not in lines] == []
        # Never kept, so never shown.
        assert FIRST_NAME not in shown
        assert USERNAME not in shown

        await user.send("/delete")
        confirm = await user.wait_for(lambda m: any(b.data == "d:1" for r in m.buttons for b in r))
        await user.tap(data="d:1", message=confirm)
        await user.wait_for(lambda m: m.text == es(T.DELETE_DONE))
        await user.send("/mydata")
        await user.wait_for(lambda m: es(T.DELETE_NOTHING) in m.text)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=15)


async def test_mydata_in_creole_uses_creole_month_names(server: FakeBotAPI, core: Core, tmp_path: Path) -> None:
    """A Creole speaker reads their screen in Creole, the date with the glossary's month names."""
    database = tmp_path / "puente.db"
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings_for(server, database), core, handle_signals=False, stop=stop))
    try:
        user = server.user(language_code="ht")
        await begin(user, "ht")
        await user.send("/mydata")
        shown = await user.wait_for(lambda m: m.text.startswith(core.translator.text("ht", T.MYDATA_TITLE)))
        today = dt.datetime.now(dt.UTC).date()
        month = core.translator.text("ht", f"date.month.{today.month}")
        assert f"{today.day} {month} {today.year}" in shown.text
        assert core.translator.text("ht", T.MYDATA_NO_ANSWERS) in shown.text
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=15)


async def stored(database: Path, user_id: int) -> Participant:
    store = await open_store(f"sqlite+aiosqlite:///{database}")
    try:
        participant = await store.load(user_id)
    finally:
        await store.close()
    assert participant is not None
    return participant
