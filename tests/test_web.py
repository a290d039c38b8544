"""The web console without a browser: one-time links, signed sessions, CSRF, the sandboxes' bounds, the sandbox
never touching the real store, escaping, and /web for admins (the browser tests are in tests/browser/)."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import select

from bot.admin import Admin, parse_command
from bot.app import Core
from bot.insights import Insights
from bot.storage import SqlStore, open_store
from bot.storage.referrals import Referrals
from bot.storage.tables import stats, web_links
from bot.storage.tickets import Tickets
from bot.web import app as web_console
from bot.web.catalogs import review
from bot.web.links import SignInLinks, WebCommand, digest
from bot.web.preview import MAX_LINES, Sandboxes
from bot.web.session import COOKIE


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    opened = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'puente.db'}")
    yield opened
    await opened.close()


@pytest.fixture
async def client(core: Core, store: SqlStore) -> AsyncIterator[TestClient[web_console.web.Request, object]]:
    clock = Clock()
    console = web_console.console_for(
        core.programs,
        core.translator,
        core.vocabulary,
        clock,
        links=SignInLinks(store, clock),
        insights=Insights(store.engine, clock, core.programs),
    )
    async with TestClient(TestServer(web_console.build_app(console))) as opened:
        yield opened


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert found is not None
    return found.group(1)


async def test_a_link_signs_in_once(store: SqlStore) -> None:
    """A link works once; a second use, an unknown token and an expired link are refused."""
    clock = Clock()
    links = SignInLinks(store, clock)
    token = await links.issue()
    assert await links.consume(token)
    assert not await links.consume(token)
    assert not await links.consume("not-a-token")
    late = await links.issue()
    clock.now += dt.timedelta(minutes=11)
    assert not await links.consume(late)


async def test_two_uses_at_once_sign_in_once(store: SqlStore) -> None:
    """Two requests racing with the same link: exactly one signs in."""
    links = SignInLinks(store, Clock())
    token = await links.issue()
    assert sorted(await asyncio.gather(links.consume(token), links.consume(token))) == [False, True]


async def test_only_the_tokens_hash_is_stored(store: SqlStore) -> None:
    """The database holds the token's SHA-256, never the token."""
    token = await SignInLinks(store, Clock()).issue()
    async with store.engine.connect() as conn:
        stored = (await conn.execute(select(web_links.c.token_hash))).scalars().all()
    assert stored == [digest(token)]
    assert token not in stored


async def test_cookie_is_signed_httponly_and_strict(client: TestClient) -> None:  # type: ignore[type-arg]
    """The session cookie is HttpOnly and SameSite=Strict; a forged one is a new anonymous session."""
    response = await client.get("/preview")
    header = response.headers["Set-Cookie"]
    assert "HttpOnly" in header
    assert "SameSite=Strict" in header
    client.session.cookie_jar.update_cookies({COOKIE: "eyJzaWQiOiJ4Iiwic3RhZmYiOnRydWV9.forged.sig"})
    response = await client.get("/insights", allow_redirects=False)
    assert (response.status, response.headers["Location"]) == (303, "/signin")
    # Well formed, claiming a signed-in session, but signed with another key.
    other_key = URLSafeTimedSerializer("another key", salt="puente-console-session")
    client.session.cookie_jar.update_cookies({COOKIE: other_key.dumps({"sid": "x", "staff": True})})
    response = await client.get("/insights", allow_redirects=False)
    assert (response.status, response.headers["Location"]) == (303, "/signin")


async def test_forms_without_their_csrf_token_are_refused(client: TestClient) -> None:  # type: ignore[type-arg]
    """A POST with no CSRF token, or another session's, is refused and changes nothing."""
    page = await (await client.get("/preview")).text()
    token = csrf_of(page)
    refused = await client.post("/preview/start", data={"lang": "ht", "program": "venezuela-2022"})
    assert refused.status == 403
    wrong = await client.post("/preview/start", data={"lang": "ht", "program": "venezuela-2022", "csrf": "0" * 64})
    assert wrong.status == 403
    assert 'class="chat"' not in await (await client.get("/preview")).text()
    started = await client.post("/preview/start", data={"lang": "ht", "program": "venezuela-2022", "csrf": token})
    assert started.status == 200
    assert 'class="chat"' in await started.text()


async def test_staff_pages_need_a_sign_in_and_a_link_gives_one(
    client: TestClient,  # type: ignore[type-arg]
) -> None:
    """Insights, their CSV and the texts redirect to /signin until a one-time link is used; then they show."""
    for path in ("/insights", "/insights.csv", "/texts"):
        response = await client.get(path, allow_redirects=False)
        assert (response.status, response.headers["Location"]) == (303, "/signin")
    console = client.app[web_console.CONSOLE]  # type: ignore[index]
    token = await console.links.issue()
    page = await (await client.get(f"/login/{token}")).text()
    signed = await client.post("/login", data={"token": token, "csrf": csrf_of(page)}, allow_redirects=False)
    assert (signed.status, signed.headers["Location"]) == (303, "/insights")
    assert (await client.get("/texts")).status == 200
    csv = await client.get("/insights.csv?period=7d")
    assert csv.headers["Content-Type"].startswith("text/csv")
    again = await client.post("/login", data={"token": token, "csrf": csrf_of(page)})
    assert again.status == 403


async def test_the_preview_never_touches_the_real_store(
    client: TestClient,  # type: ignore[type-arg]
    store: SqlStore,
) -> None:
    """A whole test chat leaves the database without a participant or a count; what is typed is escaped."""
    token = csrf_of(await (await client.get("/preview")).text())
    await client.post("/preview/start", data={"lang": "es", "program": "venezuela-2022", "csrf": token})
    await client.post("/preview/send", data={"b": "0", "csrf": token})
    page = await (await client.post("/preview/send", data={"text": "<script>x</script>", "csrf": token})).text()
    assert "<script>x</script>" not in page
    assert "&lt;script&gt;x&lt;/script&gt;" in page
    assert await store.load(1) is None
    async with store.engine.connect() as conn:
        assert (await conn.execute(select(stats))).all() == []


async def test_sandboxes_are_bounded_and_idle_ones_expire(core: Core) -> None:
    """No more than `cap` sandboxes live at once (the least recently used goes), and idle ones are dropped."""
    ticks = [0.0]
    boxes = Sandboxes(
        core.programs, core.translator, core.vocabulary, Clock(), cap=2, idle=60, monotonic=lambda: ticks[0]
    )
    await boxes.open("a", "venezuela-2022", "es")
    await boxes.open("b", "venezuela-2022", "ht")
    assert boxes.get("a") is not None  # "a" is now the most recent
    await boxes.open("c", "chnv-2023", "en")
    assert len(boxes) == 2
    assert boxes.get("b") is None
    ticks[0] = 61.0
    assert boxes.get("a") is None
    assert len(boxes) == 0


async def test_a_sandbox_keeps_the_latest_lines_only(core: Core) -> None:
    """Someone typing on and on fills no memory: the chat keeps its latest MAX_LINES bubbles, the last one live."""
    boxes = Sandboxes(core.programs, core.translator, core.vocabulary, Clock())
    sandbox = await boxes.open("a", "venezuela-2022", "en")
    for n in range(MAX_LINES):
        await sandbox.type(f"answer {n}")
    assert len(sandbox.lines) == MAX_LINES
    assert any(line.text == f"answer {MAX_LINES - 1}" for line in sandbox.lines[-3:])
    assert not any(line.text == "answer 0" for line in sandbox.lines)


async def test_web_gives_an_admin_a_protected_one_time_link(core: Core, store: SqlStore) -> None:
    """/web answers an admin with a link in their language that works once, in a message Telegram protects."""
    clock = Clock()
    links = SignInLinks(store, clock)
    admin = Admin(
        Referrals(store),
        core.translator,
        clock,
        frozenset({7}),
        Tickets(store),
        web=WebCommand(links, "https://c.example"),
    )
    command = parse_command("/web")
    assert command is not None
    reply = await admin.handle(7, "ht", command)
    (message,) = reply.messages
    assert message.protect
    assert "10 minit" in message.text
    token = message.text.rsplit("https://c.example/login/", 1)[1]
    assert await links.consume(token)
    assert not await links.consume(token)


def test_texts_review_flags_missing_fuzzy_and_over_long_strings(tmp_path: Path) -> None:
    """A key missing in one catalog, a fuzzy translation and one over 700 characters are flagged; the rest is not."""
    long = "a" * 701
    catalogs = {
        "es": 'msgid "ok"\nmsgstr "bien"\n\nmsgid "gap"\nmsgstr "hueco"\n\n#, fuzzy\nmsgid "doubt"\nmsgstr "duda"\n',
        "ht": f'msgid "ok"\nmsgstr "byen"\n\nmsgid "doubt"\nmsgstr "dout"\n\nmsgid "gap"\nmsgstr "{long}"\n',
        "en": 'msgid "ok"\nmsgstr "fine"\n\nmsgid "doubt"\nmsgstr "doubt"\n',
    }
    for lang, text in catalogs.items():
        folder = tmp_path / lang / "LC_MESSAGES"
        folder.mkdir(parents=True)
        (folder / "messages.po").write_text(text, "utf-8")
    rows = {row.key: row for row in review(tmp_path)}
    assert not rows["ok"].flagged
    assert rows["doubt"].cells["es"].fuzzy
    assert not rows["doubt"].cells["ht"].flagged
    assert rows["gap"].cells["en"].missing
    assert rows["gap"].cells["ht"].too_long
