"""Roles and forged buttons, end to end: whatever callback data or command someone without the role sends, nothing
changes in the database and nobody else's data reaches them.

The world: Vicenta (the victim) shared her answers with the organisation Alpha (a card with Accept/Decline in
Alpha's intake chat) and is talking to staff (a topic in the staff group). An admin has a scheduled broadcast and a
draft. Kreyòl Example serves only Creole speakers (never offered to an English speaker), Closed Example is paused.
Then Mallory (an ordinary person who finished the questionnaire), a stranger who never started, Olga (in the staff
group without a role), a member of Alpha tapping outside Alpha's card, an admin removed from ADMIN_IDS and a volunteer
whose role was revoked try everything. Callback data is forged (``forge=True``) with ids that belong to others.

"Nothing changed" is a snapshot of every table (update ids aside) before and after; the actor's own rows may move
(going back a question is theirs to do), everything else must be identical, and nothing may be queued for a person.
"Nothing leaked" is every text the actor could read (messages, their edits, files, button answers) checked for the
victim's name, username and id, and, in private chats, for any admin or staff screen.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bot.app import Core, serve, utc_now
from bot.config import Settings
from bot.storage import open_store
from bot.storage.broadcasts import Broadcasts, Version
from bot.storage.referrals import Referrals
from bot.texts import T
from tests.e2e.conftest import begin, settings_for, telegram_limits
from tests.e2e.test_referrals_e2e import finish_without_supporter, organisation, referral_id, share_with
from tests.fakebotapi import ChatMessage, FakeBotAPI, FakeUser
from tests.fakebotapi.group import FakeGroup, FakeMember, FakeTopic

ADMIN_ID = 616161
VICTIM = {"first_name": "Vicenta", "username": "vicenta_private"}

#: Tables whose rows are bookkeeping, not data anyone could change on purpose. `stats` holds anonymous counts with no
#: person in them: the actor's own taps (/start, /stop) add to them, and nothing there can be anyone else's.
IGNORED_TABLES = {"processed_updates", "alembic_version", "stats"}
#: Where a person's own rows are theirs to change (their answers, language, subscription); their referrals and
#: tickets are not among them: those reach other people.
OWN_TABLES = {"participants", "answers", "broadcast_optouts"}

# ---------------------------------------------------------------------------------------------- what is tried

#: Callback data a person forges in their private chat, every prefix; {ref} is the victim's referral, {broadcast}
#: the admin's scheduled broadcast, {program} a program to switch to.
FORGED_IN_PRIVATE = (
    "o:kreyol", "o:closed", "o:nowhere",  # organisations never offered: another language, paused, unknown
    "s:kreyol:1", "s:closed:1", "s:nowhere:1", "s:kreyol:0",  # share with them
    "w:{ref}", "w:0", "w:999999",  # withdraw someone else's request
    "r:{ref}:1", "r:{ref}:0",  # decide a referral from a private chat
    "bc:send:", "bc:cancel:", "bc:skip:es", "bc:filter:language", "bc:set:en", "bc:continue:",  # the admin's draft
    "bx:{broadcast}:cancel", "bx:{broadcast}:pause", "bx:{broadcast}:resume",  # the admin's broadcast
    "pg:{program}:ask", "pg:{program}:do", "pg:{program}:tell",  # switch the rules
    "h:",  # ask for a human: only ever about oneself
    "d:0", "l:zz", "l:en", "c:en:1", "c:zz:1", "c:en:0",  # one's own language, consent, deletion
    "a:nationality:venezuelan", "a:supporter:yes", "a:no_such_question:x", "b",  # one's own answers
    "zz:not-ours", "w:not-a-number", "r:1",  # data this bot never issued
)  # fmt: skip

#: Callback data tapped on group messages: the referral card in Alpha's chat and the ticket card in the staff group.
FORGED_IN_GROUPS = ("r:{ref}:1", "r:{ref}:0", "w:{ref}", "s:alpha:1", "bx:{broadcast}:cancel", "d:1", "h:1")

PEOPLE_COMMANDS = (
    "/start", "/back", "/language", "/organisations", "/human", "/help", "/privacy", "/mydata", "/stop", "/subscribe",
    "/delete", "/bot", "/restart",
)  # fmt: skip
#: {me} is the actor's id, {volunteer} a volunteer's, {alpha} Alpha's intake chat.
ADMIN_COMMANDS = (
    "/orgs", "/org_pause alpha", "/org_resume closed", "/org_capacity alpha 0", "/referrals", "/referrals pending",
    "/referrals_csv", "/grant volunteer {me}", "/grant advisor {me}", "/revoke {volunteer}", "/broadcast",
    "/broadcasts", "/cancel", "/program", "/stats all", "/stats_csv 7d", "/web",
    "/org_set\nid: alpha\nname: Alfa Ejemplo (ficticia)\noffers: [find_supporter]\nlanguages: [en]\n"  # me a member
    "nationalities: [any]\nregions: [any]\nintake_chat_id: {alpha}\nmembers: [{me}]\nweekly_capacity: 10",
)  # fmt: skip
STAFF_COMMANDS = ("/claim", "/escalate", "/assign {me}", "/assign {volunteer}", "/close", "/queue")


# ---------------------------------------------------------------------------------------------- the world


@dataclass
class World:
    server: FakeBotAPI
    core: Core
    database: Path
    settings: Settings
    alpha: FakeGroup
    alpha_member: FakeMember
    kreyol: FakeGroup
    closed: FakeGroup
    staff: FakeGroup
    volunteer: FakeMember
    outsider: FakeMember
    admin: FakeUser
    broadcast: int = 0
    victim: FakeUser | None = None
    card: ChatMessage | None = None
    topic: FakeTopic | None = None
    ticket_card: ChatMessage | None = None
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[int] | None = None

    @property
    def ref(self) -> int:
        assert self.card is not None
        return referral_id(self.card)

    @property
    def program(self) -> str:
        """A program to forge a switch to: another shipped one if there is one."""
        others = [p.id for p in self.core.programs.all() if p.id != self.core.program.id]
        return others[0] if others else self.core.program.id

    def fill(self, template: str, me: int) -> str:
        return template.format(
            ref=self.ref,
            broadcast=self.broadcast,
            program=self.program,
            me=me,
            volunteer=self.volunteer.id,
            alpha=self.alpha.id,
        )

    async def start(self, settings: Settings | None = None) -> None:
        self.settings = settings or self.settings
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(serve(self.settings, self.core, handle_signals=False, stop=self.stop))

    async def shutdown(self) -> None:
        assert self.task is not None
        self.stop.set()
        await asyncio.wait_for(self.task, timeout=15)

    def snapshot(self, *, mine: int | None = None) -> dict[str, list[tuple[object, ...]]]:
        """Every row of every table, update ids aside; without the rows of `mine` (the actor's own), and of the
        outbox only what is queued for people (notices to the staff group are expected)."""
        with sqlite3.connect(self.database) as db:
            tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            found: dict[str, list[tuple[object, ...]]] = {}
            for table in sorted(set(tables) - IGNORED_TABLES):
                cursor = db.execute(f"SELECT * FROM {table}")  # table names from sqlite_master
                columns = [c[0] for c in cursor.description]
                rows = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
                if mine is not None and table in OWN_TABLES:
                    rows = [r for r in rows if r["user_id"] != mine]
                if table == "outbox":
                    rows = [{k: r[k] for k in ("id", "chat_id", "kind", "payload")} for r in rows if r["chat_id"] > 0]
                found[table] = sorted(tuple(r.items()) for r in rows)  # type: ignore[arg-type]
        return found

    async def outbox_drained(self) -> None:
        """Wait until the outbox sent (or gave up on) everything queued, so every notice can be read."""
        await self.rows_until("SELECT count(*) FROM outbox WHERE sent_at IS NULL AND failed IS NULL", 0)

    async def rows_until(self, query: str, wanted: int, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Poll the database until `query` (a count) gives `wanted`."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            with sqlite3.connect(self.database) as db:
                (count,) = db.execute(query).fetchone()
            if count == wanted:
                return
            assert asyncio.get_running_loop().time() < deadline, f"{query}: {count}, not {wanted}"
            await asyncio.sleep(0.05)

    def victim_markers(self) -> tuple[str, ...]:
        assert self.victim is not None
        return (VICTIM["first_name"], VICTIM["username"], str(self.victim.id))


def seen_by(user: FakeUser, groups: tuple[FakeGroup, ...] = ()) -> list[str]:
    """Every text `user` could read from the bot: their private chat (every version of every message, files), and
    the answers to their taps, private or in groups."""
    texts: list[str] = []
    for message in user.messages:
        texts += [message.text, *(version.text for version in message.history)]
        if message.document is not None:
            texts.append(message.document.content.decode(errors="replace"))
    texts += [a.text or "" for a in user.callback_answers]
    for group in groups:
        texts += [a.text or "" for a in group.callback_answers if a.user_id == user.id]
    return texts


def new_in(group: FakeGroup, before: int) -> list[str]:
    """Texts of the bot's messages in `group` after the first `before`, and of any edit made since."""
    messages = group.messages
    return [m.text for m in messages[before:]] + [m.text for m in messages[:before] if m.edited]


def screens_for_staff(core: Core) -> list[str]:
    """The fixed opening words of every admin, broadcast, program and staff screen (English), to spot one shown to
    someone who should not see it."""
    prefixes = []
    for key in T:
        if key.name.startswith(("ADMIN_", "BC_", "PROGRAM_", "STAFF_")):
            words = core.translator.text("en", key.value).split("{", 1)[0].strip()
            if len(words) >= 12:
                prefixes.append(words[:24])
    return prefixes


def leaks(texts: list[str], markers: tuple[str, ...]) -> list[str]:
    return [t for t in texts if any(marker in t for marker in markers)]


async def build_world(server: FakeBotAPI, core: Core, tmp_path: Path) -> World:
    alpha, kreyol, closed = (server.group(title=t) for t in ("Alpha intake", "Kreyol intake", "Closed intake"))
    staff = server.group(title="Staff", forum=True)
    alpha_member = alpha.member(first_name="Marta", language_code="es")
    database = tmp_path / "puente.db"
    settings = settings_for(server, database).model_copy(
        update={
            "admin_ids": frozenset({ADMIN_ID}),
            "staff_chat_id": staff.id,
            "group_messages_per_window": 200,
            "group_window_seconds": 1.0,
            "office_hours": "mon-sun 00:00-23:59",
        }
    )
    telegram_limits(server, per_group=200, group_window=1.0)  # the group limit scaled as the bot is told
    store = await open_store(f"sqlite+aiosqlite:///{database}")
    try:
        now = utc_now()
        await Referrals(store).import_directory(
            [
                organisation("alpha", "Alfa Ejemplo (ficticia)", alpha, (alpha_member.id,)),
                organisation("kreyol", "Kreyol Example (fictional)", kreyol, (kreyol.member().id,), languages=("ht",)),
                organisation("closed", "Closed Example (fictional)", closed, (closed.member().id,), active=False),
            ],
            now,
        )
        broadcasts = Broadcasts(store)
        scheduled = await broadcasts.new_draft(ADMIN_ID, "en", "preview", now)
        await broadcasts.edit_draft(scheduled.id, versions={"en": Version("Scheduled news.")}, fallback="en")
        await broadcasts.submit(scheduled.id, scheduled_for=now + dt.timedelta(days=30), timezone="UTC")
        draft = await broadcasts.new_draft(ADMIN_ID, "en", "audience", now)
        await broadcasts.edit_draft(draft.id, versions={"en": Version("Draft news.")}, fallback="en")
    finally:
        await store.close()
    world = World(
        server,
        core,
        database,
        settings,
        alpha,
        alpha_member,
        kreyol,
        closed,
        staff,
        volunteer=staff.member(first_name="Vera", language_code="es"),
        outsider=staff.member(first_name="Olga", language_code="es"),
        admin=server.user(user_id=ADMIN_ID, language_code="en"),
        broadcast=scheduled.id,
    )
    await world.start()
    await world.admin.send(f"/grant volunteer {world.volunteer.id}")
    await world.admin.wait_for(lambda m: str(world.volunteer.id) in m.text)

    victim = server.user(language_code="en", **VICTIM)
    await finish_without_supporter(victim)
    await share_with(victim, "alpha")
    world.card = await alpha.wait_for(lambda m: bool(m.buttons))
    assert VICTIM["username"] in world.card.text
    await victim.send("/human")
    ask = await victim.wait_for(lambda m: any(b.data == "h:1" for r in m.buttons for b in r))
    await victim.tap(data="h:1", message=ask)
    world.topic = await staff.wait_for_topic()
    world.ticket_card = await world.topic.wait_for(lambda m: m.text.startswith("🎫"))
    world.victim = victim
    await world.outbox_drained()
    await victim.wait_idle(quiet=0.5)  # the replies to their last tap, paced, have all arrived
    return world


@pytest.fixture
async def world(server: FakeBotAPI, core: Core, tmp_path: Path) -> AsyncIterator[World]:
    built = await build_world(server, core, tmp_path)
    yield built
    await built.shutdown()


async def participant(world: World) -> FakeUser:
    """Mallory: an ordinary person who finished the questionnaire (so her taps reach every service)."""
    mallory = world.server.user(first_name="Mallory", language_code="en")
    offers = await finish_without_supporter(mallory)
    assert {b.data for m in offers for r in m.buttons for b in r} == {"o:alpha"}  # Kreyol and Closed not offered
    return mallory


async def stranger(world: World) -> FakeUser:
    """Someone who never got past the language picker: nothing of theirs is stored."""
    nobody = world.server.user(first_name="Stan", language_code="en")
    await nobody.send("/start")
    await nobody.wait_for(lambda m: bool(m.buttons))
    return nobody


def assert_untouched(world: World, actor: FakeUser, before: dict[str, list[tuple[object, ...]]], tried: str) -> None:
    after = world.snapshot(mine=actor.id)
    changed = {table for table in before.keys() | after.keys() if before.get(table) != after.get(table)}
    assert not changed, f"{tried!r} from {actor} changed {sorted(changed)}"


def assert_nothing_seen(world: World, actor: FakeUser, *, groups: tuple[FakeGroup, ...] = ()) -> None:
    shown = seen_by(actor, groups)
    assert not leaks(shown, world.victim_markers()), f"{actor} was shown the victim's data"
    private = seen_by(actor)
    screens = [t for t in private if any(prefix in t for prefix in screens_for_staff(world.core))]
    assert not screens, f"{actor} was shown a staff screen: {screens}"
    assert not any(m.document for m in actor.messages), f"{actor} got a file"


# ---------------------------------------------------------------------------------------------- the tests


@pytest.mark.parametrize("who", [participant, stranger], ids=["participant", "stranger"])
async def test_forged_buttons_in_a_private_chat_change_nothing(world: World, who) -> None:  # type: ignore[no-untyped-def]
    """Every callback prefix, forged with other people's ids, from an ordinary person's private chat: nothing changes
    but their own place in the questionnaire, and they see nothing of anyone else's."""
    actor: FakeUser = await who(world)
    assert world.victim is not None
    victim_seen = len(world.victim.messages)
    before = world.snapshot(mine=actor.id)
    for template in FORGED_IN_PRIVATE:
        data = world.fill(template, actor.id)
        answered = len(actor.callback_answers)
        await actor.tap(data=data, message=actor.last_message, forge=True)
        await actor.wait_until(lambda n=answered: len(actor.callback_answers) > n)  # handled, not dropped
        await actor.wait_idle(quiet=0.1)
        assert_untouched(world, actor, before, data)
    await world.outbox_drained()
    assert_untouched(world, actor, before, "all of them")
    assert_nothing_seen(world, actor)
    assert len(world.victim.messages) == victim_seen
    assert world.card is not None
    assert world.card.buttons
    assert not world.card.edited
    assert world.alpha.messages == [world.card]  # no withdrawal notice, no second card
    assert world.kreyol.messages == world.closed.messages == []


@pytest.mark.parametrize("who", [participant, stranger], ids=["participant", "stranger"])
async def test_forged_buttons_on_group_messages_change_nothing(world: World, who) -> None:  # type: ignore[no-untyped-def]
    """Forged data tapped on the referral card (Alpha's chat) and the ticket card (staff group) by someone who is in
    neither: refused, nothing changes, the cards stay as they were."""
    actor: FakeUser = await who(world)
    assert world.card is not None
    assert world.ticket_card is not None
    ticket_card = world.ticket_card
    in_staff = len(world.staff.messages)
    before = world.snapshot(mine=actor.id)
    for target, group in ((world.card, world.alpha), (ticket_card, world.staff)):
        for template in FORGED_IN_GROUPS:
            data = world.fill(template, actor.id)
            answered = len(group.callback_answers)
            await actor.tap(data=data, message=target, forge=True)
            await group.wait_until(lambda g=group, n=answered: len(g.callback_answers) > n)  # handled, not dropped
            await group.wait_idle(quiet=0.1)
            assert_untouched(world, actor, before, data)
    assert_nothing_seen(world, actor, groups=(world.alpha, world.staff))
    assert world.card.buttons
    assert not world.card.edited
    assert world.alpha.messages == [world.card]
    assert len(world.staff.messages) == in_staff


@pytest.mark.parametrize("who", [participant, stranger], ids=["participant", "stranger"])
async def test_every_command_from_an_ordinary_person(world: World, who) -> None:  # type: ignore[no-untyped-def]
    """People's, admin and staff commands from someone with no role: admin and staff ones are plain text to them,
    and nothing changes but their own conversation."""
    actor: FakeUser = await who(world)
    before = world.snapshot(mine=actor.id)
    for template in (*ADMIN_COMMANDS, *STAFF_COMMANDS, *PEOPLE_COMMANDS):
        command = world.fill(template, actor.id)
        await actor.send(command)
        assert await actor.wait_idle(quiet=0.1), f"no answer to {command!r}"  # handled, not dropped
        assert_untouched(world, actor, before, command)
    assert_nothing_seen(world, actor)


async def test_group_member_without_a_role(world: World) -> None:
    """Olga, in the staff group without a role, sends every staff and admin command in the victim's topic and in
    the general chat, writes to the victim and edits it: the ticket does not move, the victim hears nothing."""
    assert world.topic is not None
    assert world.victim is not None
    olga = world.outsider
    victim_seen = len(world.victim.messages)
    in_staff = len(world.staff.messages)
    before = world.snapshot(mine=olga.id)
    texts = [world.fill(t, olga.id) for t in (*STAFF_COMMANDS, *ADMIN_COMMANDS, "Te consigo un sponsor por 500 $")]
    for text in texts:  # in the victim's topic: each is refused
        await olga.send(text, thread_id=world.topic.thread_id)
        await world.staff.wait_idle(quiet=0.1)
        assert_untouched(world, olga.private, before, text)
    await olga.edit(olga.last_sent, "editado: 600 $")
    for text in texts:  # in the general chat: no ticket, nothing happens (so one wait for them all)
        await olga.send(text)
    await world.staff.wait_idle(quiet=0.3)
    await world.outbox_drained()
    assert_untouched(world, olga.private, before, "everything")
    assert len(world.victim.messages) == victim_seen
    refusal = world.core.translator.text(world.settings.staff_language, T.STAFF_NOT_ALLOWED)
    posted = new_in(world.staff, in_staff)
    assert posted
    assert set(posted) == {refusal}  # a refusal in the topic, nothing in the general chat, no card edited
    assert not leaks(seen_by(olga.private), world.victim_markers())


async def test_member_cannot_decide_from_another_message(world: World) -> None:
    """Regression: a member of Alpha forging Accept for Alpha's referral on a message that is not its card (here,
    in the staff group) used to settle it and edit that message. Only the referral's own card decides it now."""
    assert world.ticket_card is not None
    assert world.card is not None
    ticket_card = world.ticket_card
    before = world.snapshot()
    for data in (f"r:{world.ref}:1", f"r:{world.ref}:0"):
        await world.alpha_member.private.tap(data=data, message=ticket_card, forge=True)
        await world.staff.wait_idle(quiet=0.1)
    assert world.snapshot() == before
    assert not ticket_card.edited
    closed = world.core.translator.text("es", T.CARD_CLOSED)  # Alpha's chat reads Spanish
    assert [a.text for a in world.staff.callback_answers] == [closed, closed]
    await world.alpha_member.tap(data=f"r:{world.ref}:1", message=world.card)  # the real card still works
    await world.alpha.wait_until(lambda: bool(world.card and world.card.edited))


async def test_only_organisations_that_fit_can_be_shared_with(world: World) -> None:
    """Regression: forged "share with" an organisation that was never offered (it does not speak the person's
    language) used to send the person's answers and contact to its intake chat."""
    mallory = await participant(world)
    kreyol = world.kreyol
    refusal = world.core.translator.text("en", T.REFERRAL_UNAVAILABLE, name="Kreyol Example (fictional)")
    await mallory.tap(data="o:kreyol", message=mallory.last_message, forge=True)
    await mallory.wait_for(lambda m: m.text == refusal)  # not the sharing screen
    await mallory.tap(data="s:kreyol:1", message=mallory.last_message, forge=True)
    await mallory.wait_for(lambda m: m.text == refusal)
    await kreyol.wait_idle(quiet=0.2)
    assert kreyol.messages == []
    store = await open_store(f"sqlite+aiosqlite:///{world.database}")
    try:
        assert [r.org_id for r in await Referrals(store).listing()] == ["alpha"]  # the victim's only
    finally:
        await store.close()


async def test_removed_admin_has_no_powers(world: World) -> None:
    """An admin removed from ADMIN_IDS (a restart with the new setting): their commands are plain text, the buttons
    still on their screen do nothing, and in the staff group they are refused like anyone without a role."""
    admin = world.admin
    assert world.topic is not None
    await admin.send("/broadcasts")  # real admin buttons, still on screen after the removal
    listing = await admin.wait_for(lambda m: any(b.data.startswith("bx:") for r in m.buttons for b in r))
    await admin.send("/program")
    rules_in_use = world.core.translator.text("en", T.PROGRAM_ACTIVE).split("{", 1)[0]
    program = await admin.wait_for(lambda m: m.text.startswith(rules_in_use))
    await admin.send("/broadcast")
    composer = await admin.wait_for(lambda m: any(b.data.startswith("bc:") for r in m.buttons for b in r))
    await world.shutdown()
    await world.start(world.settings.model_copy(update={"admin_ids": frozenset()}))
    await begin(admin, "en")
    admin.drain()

    before = world.snapshot(mine=admin.id)
    for message in (listing, program, composer):
        for row in message.buttons:
            for button in row:
                await admin.tap(data=button.data, message=message)
                await admin.wait_idle(quiet=0.1)
                assert_untouched(world, admin, before, button.data)
    for template in (*ADMIN_COMMANDS, "Texto para la difusión"):
        command = world.fill(template, admin.id)
        await admin.send(command)
        await admin.wait_idle(quiet=0.1)
        assert_untouched(world, admin, before, command)
    ex_admin = world.staff.member(admin.id)
    await ex_admin.send("/claim", thread_id=world.topic.thread_id)
    refusal = world.core.translator.text(world.settings.staff_language, T.STAFF_NOT_ALLOWED)
    await world.topic.wait_for(lambda m: m.text == refusal)
    await world.outbox_drained()
    assert_untouched(world, admin, before, "/claim in the staff group")
    shown = [m.text for m in admin.drain()] + [a.text or "" for a in admin.callback_answers]
    assert not [t for t in shown if any(prefix in t for prefix in screens_for_staff(world.core))]


async def test_revoked_volunteer_is_refused_at_once(world: World) -> None:
    """A volunteer whose role is revoked cannot claim, close or write to the person from the next message on."""
    assert world.topic is not None
    assert world.victim is not None
    vera = world.volunteer
    await vera.send("Hola, soy Vera", thread_id=world.topic.thread_id)
    await world.victim.wait_for(lambda m: "soy Vera" in m.text)
    await world.rows_until("SELECT count(*) FROM relayed", 1)  # the pair is recorded just after the copy lands
    await world.admin.send(f"/revoke {vera.id}")
    await world.admin.wait_for(lambda m: str(vera.id) in m.text)
    await world.outbox_drained()
    victim_seen = len(world.victim.messages)
    before = world.snapshot()
    for text in ("/claim", "/close", "/escalate", f"/assign {vera.id}", "Sigo aquí"):
        await vera.send(text, thread_id=world.topic.thread_id)
        await world.staff.wait_idle(quiet=0.1)
    await world.outbox_drained()
    assert world.snapshot() == before
    assert len(world.victim.messages) == victim_seen
