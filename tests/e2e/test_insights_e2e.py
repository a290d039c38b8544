"""NGO insights end to end: scripted people go through the real bot, an admin reads /stats and /stats_csv, and
the counts stay exactly the same after those people /delete themselves."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
from collections.abc import AsyncIterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.app import Core, serve
from bot.figures import BUCKETS
from bot.hours import DAY_CODES
from bot.insights import spoken
from bot.texts import T
from tests.e2e.conftest import answer, begin, settings_for, with_answers
from tests.e2e.test_handoff_e2e import ADMIN_ID, grant, has, open_ticket, staff_world
from tests.fakebotapi import FakeBotAPI, FakeUser


@pytest.fixture
async def bot_with_admin(server: FakeBotAPI, core: Core, tmp_path: Path) -> AsyncIterator[FakeBotAPI]:
    settings = settings_for(server, tmp_path / "puente.db").model_copy(update={"admin_ids": frozenset({ADMIN_ID})})
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, core, handle_signals=False, stop=stop))
    yield server
    stop.set()
    await asyncio.wait_for(task, timeout=10)


async def finish(user: FakeUser, language: str, path: list[tuple[str, str]]) -> None:
    await begin(user, language)
    for question, option in path:
        await answer(user, question, option)


async def declines(user: FakeUser) -> None:
    await user.send("/start")
    await user.wait_for(lambda m: bool(m.buttons))
    await user.tap(data="l:en")
    await user.wait_for(lambda m: any(b.data == "c:en:0" for row in m.buttons for b in row))
    await user.tap(data="c:en:0")
    await user.next_message()


async def export(admin: FakeUser) -> list[list[str]]:
    await admin.send("/stats_csv all")
    sent = await admin.wait_for(lambda m: m.document is not None and m.document.file_name.endswith(".csv"))
    assert sent.document is not None
    return list(csv.reader(io.StringIO(sent.document.content.decode())))


async def test_scripted_people_yield_exactly_the_expected_counts_which_outlive_them(
    bot_with_admin: FakeBotAPI, core: Core
) -> None:
    server = bot_with_admin
    eligible = [server.user(language_code="es") for _ in range(6)]
    ruled_out = [server.user(language_code="ht") for _ in range(2)]
    await asyncio.gather(
        *(finish(u, "es", with_answers()) for u in eligible),
        *(finish(u, "ht", with_answers(removal_order="yes")) for u in ruled_out),
        declines(server.user(language_code="en")),
    )

    admin = server.user(user_id=ADMIN_ID, language_code="en")
    await admin.send("/stats all")
    title = core.translator.text("en", T.STATS_TITLE, period=core.translator.text("en", T.STATS_PERIOD_ALL))
    text = await admin.wait_for(lambda m: m.text.startswith(title))
    assert "Opened the bot: 9 · picked a language: 9 · declined the notice: <5" in text.text
    assert "Accepted the notice: 8 people · got a result: 8" in text.text
    async with asyncio.timeout(20):
        while len(charts := [m for m in admin.messages if m.photo is not None]) < 4:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    for chart in charts:
        assert chart.photo is not None
        biggest = chart.photo.sizes[-1]
        assert (biggest["width"], biggest["height"]) == (800, 500)
        assert chart.photo.content.startswith(b"\x89PNG\r\n\x1a\n")
    titles = [m.caption for m in charts]
    assert titles[0] == core.translator.text("en", T.STATS_CHART_FUNNEL)

    rows = await export(admin)
    assert rows[0] == ["period", "from", "to", "program", "section", "item", "breakdown", "value"]
    cells = {(r[4], r[5], r[6]): r[7] for r in rows[1:]}
    assert cells[("funnel", "started", "")] == "9"
    assert cells[("funnel", "declined", "")] == "<5"
    assert cells[("funnel", "consented", "")] == "8"
    assert cells[("results", "likely_eligible", "")] == "6"
    assert cells[("results", "not_eligible", "")] == "<5"
    assert cells[("results_by_language", "likely_eligible", "es")] == "6"
    assert cells[("dropoff", "nationality", "answered")] == "8"
    assert not any(str(u.id) in ",".join(r) for u in [*eligible, *ruled_out] for r in rows)

    for user in [*eligible, *ruled_out]:
        await user.send("/delete")
        confirm = await user.wait_for(lambda m: any(b.data and b.data.startswith("d:") for r in m.buttons for b in r))
        yes = next(b.data for row in confirm.buttons for b in row if b.data and b.data.endswith(":1"))
        await user.tap(data=yes, message=confirm)
        await user.next_message()
    assert await export(admin) == rows


async def test_stats_do_not_exist_for_anyone_but_admins(bot_with_admin: FakeBotAPI, core: Core) -> None:
    someone = bot_with_admin.user(language_code="en")
    await someone.send("/stats all")
    reply = await someone.next_message()
    assert "Puente in numbers" not in reply.text
    assert reply.photo is None
    assert reply.document is None


async def test_handoff_figures_and_the_weekly_digest_in_the_staff_group(
    server: FakeBotAPI, core: Core, tmp_path: Path
) -> None:
    """Five people talk to a volunteer and are closed: /stats counts five tickets answered and closed within a
    minute. Started again with STATS_DIGEST due, the bot posts the week's digest into the staff group once, and a
    restart does not post it again."""
    staff = staff_world(server, core, tmp_path, forum=True)
    await staff.start()
    await grant(server, "volunteer", staff.volunteer)
    people = [server.user(language_code="en") for _ in range(5)]
    for number, person in enumerate(people, start=1):
        topic = await open_ticket(person, staff, topic=f"#{number} · EN")
        await staff.volunteer.send("Hola, soy Vera.", thread_id=topic.thread_id)
        await person.wait_for(has("soy Vera"))
        await staff.volunteer.send("/close", thread_id=topic.thread_id)
        await person.wait_for(has("Our team closed this conversation"))

    admin = server.user(user_id=ADMIN_ID, language_code="en")
    await admin.send("/stats 7d")
    within = spoken(core.translator, "en", dt.timedelta(seconds=BUCKETS[0]))
    handoff = core.translator.text("en", T.STATS_HANDOFF, opened=5, median=within, p90=within, close=within, waiting=0)
    text = await admin.wait_for(lambda m: m.text.startswith("Puente in numbers"))
    assert handoff in text.text.splitlines()
    await staff.shutdown()

    today = DAY_CODES[dt.datetime.now(ZoneInfo(staff.settings.office_timezone)).weekday()]
    staff.settings = staff.settings.model_copy(
        update={"stats_digest": f"{today} 00:00", "stats_digest_check_seconds": 0.2}
    )
    general = [m for m in staff.group.messages if m.topic_id is None]
    title = core.translator.text("es", T.STATS_DIGEST)
    await staff.start()
    await staff.group.wait_for(lambda m: m.topic_id is None and m.text.startswith(title), timeout=10)
    await staff.shutdown()
    await staff.start()  # the same week, after a restart: the bot looks again and again, and posts nothing
    polls = len(server.calls_to("getUpdates"))
    async with asyncio.timeout(10):
        while len(server.calls_to("getUpdates")) < polls + 2:  # noqa: ASYNC110 (the bot is in its loop)
            await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)  # five more looks
    await staff.shutdown()
    digests = [m for m in staff.group.messages if m.topic_id is None and m not in general]
    assert [m.text.split("\n")[0] for m in digests] == [title]
    es_handoff = core.translator.text(
        "es",
        T.STATS_HANDOFF,
        opened=5,
        median=spoken(core.translator, "es", dt.timedelta(seconds=BUCKETS[0])),
        p90=spoken(core.translator, "es", dt.timedelta(seconds=BUCKETS[0])),
        close=spoken(core.translator, "es", dt.timedelta(seconds=BUCKETS[0])),
        waiting=0,
    )
    assert es_handoff in digests[0].text.splitlines()
    assert not any(str(p.id) in digests[0].text for p in people)
