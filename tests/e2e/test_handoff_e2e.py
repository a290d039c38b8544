"""Volunteers and advisors take over a conversation inside Telegram, end to end through the fake Bot API.

The staff group is a forum supergroup (one topic per person). Roles are granted by an admin with /grant, as in
real use. Telegram's group limit is scaled down (20 messages per second instead of per minute) so a burst of
100 messages takes seconds, and the fake server enforces it with 429s.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.app import Core, serve
from bot.config import Settings
from bot.hours import DAY_CODES
from tests.conftest import FIGURES
from tests.e2e.conftest import answer, begin, settings_for, with_answers
from tests.fakebotapi import FakeBotAPI, FakeUser
from tests.fakebotapi.chat import ChatMessage, new_file_ids
from tests.fakebotapi.group import FakeGroup, FakeMember, FakeTopic

ADMIN_ID = 515151
WINDOW = 1.0  # seconds standing in for Telegram's minute


@dataclass
class Staff:
    server: FakeBotAPI
    group: FakeGroup
    volunteer: FakeMember
    advisor: FakeMember
    outsider: FakeMember
    settings: Settings
    core: Core
    stop: asyncio.Event | None = None
    task: asyncio.Task[int] | None = None

    async def start(self) -> None:
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(serve(self.settings, self.core, handle_signals=False, stop=self.stop))

    async def shutdown(self) -> None:
        assert self.stop is not None
        assert self.task is not None
        self.stop.set()
        await asyncio.wait_for(self.task, timeout=15)

    def es(self, key: str, **params: object) -> str:
        """A staff-side text as the bot writes it (the staff group reads Spanish by default)."""
        return self.core.translator.text("es", key, **params)


async def grant(server: FakeBotAPI, role: str, member: FakeMember) -> None:
    admin = server.user(user_id=ADMIN_ID, language_code="en")
    await admin.send(f"/grant {role} {member.id}")
    await admin.wait_for(lambda m: str(member.id) in m.text and role in m.text)


def staff_world(server: FakeBotAPI, core: Core, tmp_path: Path, *, forum: bool) -> Staff:
    group = server.group(title="Staff", forum=forum)
    settings = settings_for(server, tmp_path / "puente.db").model_copy(
        update={
            "admin_ids": frozenset({ADMIN_ID}),
            "staff_chat_id": group.id,
            "group_messages_per_window": 20,
            "group_window_seconds": WINDOW,
            # Always on duty in these tests, whatever the clock says.
            "office_hours": "mon-sun 00:00-23:59",
            "remind_after_seconds": 1,
            "reminder_check_seconds": 0.2,
        }
    )
    server.set_rate_limits(per_group_per_minute=20, group_window_seconds=WINDOW)
    return Staff(
        server,
        group,
        volunteer=group.member(first_name="Vera", language_code="es"),
        advisor=group.member(first_name="Adam", language_code="en"),
        outsider=group.member(first_name="Olga", language_code="es"),
        settings=settings,
        core=core,
    )


@pytest.fixture
async def staff(server: FakeBotAPI, core: Core, tmp_path: Path) -> AsyncIterator[Staff]:
    world = staff_world(server, core, tmp_path, forum=True)
    await world.start()
    await grant(server, "volunteer", world.volunteer)
    await grant(server, "advisor", world.advisor)
    yield world
    await world.shutdown()


async def open_ticket(
    user: FakeUser, staff: Staff, *, share_answers: bool = True, topic: str | None = None
) -> FakeTopic:
    """A person reaches a result that needs review, taps "Talk to a person", and chooses about their answers.

    Returns the staff group's first topic, or the one named `topic` (e.g. "#2 · EN" for a second ticket)."""
    await begin(user, "en")
    for question, option in with_answers(passport="dont_know"):
        await answer(user, question, option)
    await user.tap(data="h:")
    ask = await user.wait_for(lambda m: any(b.data == "h:1" for r in m.buttons for b in r))
    await user.tap(data="h:1" if share_answers else "h:0", message=ask)
    await user.wait_for(lambda m: m.text.startswith("✅ Write your question here"))
    return await staff.group.wait_for_topic(topic)


def has(text: str) -> Callable[[ChatMessage], bool]:
    return lambda m: text in m.text


async def test_request_opens_a_topic_with_a_card_and_relays_both_ways(staff: Staff) -> None:
    """A person asks for a human: a topic opens with their card; messages go both ways; notes stay internal."""
    user = staff.server.user(language_code="en")
    topic = await open_ticket(user, staff)
    card = await topic.wait_for(has("🎫"))
    assert "English" in card.text
    assert staff.es("result.label.needs_review") in card.text
    assert staff.es("unknown.passport") in card.text  # why it needs review
    assert staff.core.translator.text("es", "q.passport") in card.text  # answers shared: in the staff language

    await user.send("Hello, I need help with my passport")
    copy = await topic.wait_for(has("Hello, I need help"))
    await user.send_photo(caption="my passport")
    await topic.wait_for(has("my passport"))

    await staff.volunteer.send("Hola, soy Vera. ¿Qué pasó con tu pasaporte?", thread_id=topic.thread_id)
    answer_to_user = await user.wait_for(has("soy Vera"))
    await staff.volunteer.send("# nota: parece vencido", thread_id=topic.thread_id)
    await staff.volunteer.reply("Can you send the expiry date?", to=copy, thread_id=topic.thread_id)
    reply = await user.wait_for(has("expiry date"))
    assert reply.reply_to is not None
    assert "Hello, I need help" in reply.reply_to.text
    assert not any("nota" in m.text for m in user.messages)

    await staff.volunteer.edit(staff.volunteer.last_sent, "Can you send the expiry date, please?")
    await user.wait_until(lambda: reply.text.endswith("please?"))
    await user.send("My passport expired in 2021")
    their_copy = await topic.wait_for(has("expired in 2021"))
    await user.edit(user.last_sent, "My passport expired in 2020")
    await topic.wait_until(lambda: their_copy.text.endswith("2020"))
    assert answer_to_user.text.startswith("Hola")


async def test_lifecycle_claim_escalate_assign_close(staff: Staff) -> None:
    """/claim, /escalate, /queue, /assign and /close move the ticket; on close the person is told and freed."""
    user = staff.server.user(language_code="en")
    topic = await open_ticket(user, staff, share_answers=False)
    card = await topic.wait_for(has("🎫"))
    assert staff.es("staff.no_answers") in card.text

    await staff.volunteer.send("/queue")
    queue = await staff.group.wait_for(lambda m: m.topic_id is None and "#1" in m.text)
    assert staff.es("staff.status.waiting") in queue.text
    await staff.volunteer.send("/claim", thread_id=topic.thread_id)
    await topic.wait_for(has(staff.es("staff.claimed", who="Vera")))
    await staff.volunteer.send("/escalate", thread_id=topic.thread_id)
    await topic.wait_for(has(staff.es("staff.escalated")))
    await staff.volunteer.send(f"/assign {staff.outsider.id}", thread_id=topic.thread_id)
    await topic.wait_for(has(staff.es("staff.not_advisor", id=staff.outsider.id)))
    await staff.volunteer.send(f"/assign {staff.advisor.id}", thread_id=topic.thread_id)
    await topic.wait_for(has(staff.es("staff.assigned", id=staff.advisor.id)))
    await staff.advisor.send("/close", thread_id=topic.thread_id)
    await topic.wait_for(has(staff.es("staff.closed", who="Adam")))
    await user.wait_for(has("Our team closed this conversation"))

    await user.send("/start")  # back with the bot: the questionnaire answers again
    await user.wait_for(has("Rules as of"))  # the result again, from the questionnaire


async def test_outsider_in_the_group_cannot_write_to_people(staff: Staff) -> None:
    """A group member without a staff role writing in a topic reaches nobody and is told why."""
    user = staff.server.user(language_code="en")
    topic = await open_ticket(user, staff)
    await staff.outsider.send("Te puedo conseguir un sponsor por 500 dólares", thread_id=topic.thread_id)
    await topic.wait_for(has(staff.es("staff.not_allowed")))
    await user.wait_idle(quiet=0.5)
    assert not any("500" in m.text for m in user.messages)


async def test_burst_of_100_messages_arrives_complete_and_in_order(staff: Staff) -> None:
    """100 messages sent at once all reach the topic, in order, within the group limit (no 429 needed)."""
    user = staff.server.user(language_code="en")
    topic = await open_ticket(user, staff)
    await topic.wait_for(has("🎫"))
    for number in range(100):
        await user.send(f"message {number:03d}")
    await topic.wait_until(lambda: sum(m.text.startswith("message ") for m in topic.messages) == 100, timeout=30)
    relayed = [m.text for m in topic.messages if m.text.startswith("message ")]
    assert relayed == [f"message {n:03d}" for n in range(100)]
    assert staff.server.stats.rate_limited == 0


async def test_questionnaire_waits_while_talking_and_bot_leaves(staff: Staff) -> None:
    """During a handoff old buttons and commands are held; /bot closes it and brings the questionnaire back."""
    user = staff.server.user(language_code="en")
    topic = await open_ticket(user, staff)
    # An answer button from before (Telegram keeps old keyboards on screen when an edit fails).
    await user.tap(data="a:nationality:venezuelan", message=user.last_message, forge=True)
    await user.wait_until(lambda: any(a.text and "/bot" in a.text for a in user.callback_answers))
    await user.send("/restart")
    await user.wait_for(has("Send /bot first"))
    await user.send("/bot")
    await user.wait_for(has("You are back with the bot"))
    await topic.wait_for(has(staff.es("staff.left")))
    await user.send("I should not reach staff now")
    await user.wait_idle(quiet=0.4)
    assert not any("should not reach" in m.text for m in topic.messages)


async def test_ticket_survives_a_restart(staff: Staff) -> None:
    """With a ticket open the bot restarts: the person's next message still reaches their topic, and back."""
    user = staff.server.user(language_code="en")
    topic = await open_ticket(user, staff)
    await topic.wait_for(has("🎫"))
    await staff.shutdown()
    await user.send("Are you still there?")
    await staff.start()
    await topic.wait_for(has("still there"), timeout=20)
    await staff.volunteer.send("Sí, aquí estamos", thread_id=topic.thread_id)
    await user.wait_for(has("aquí estamos"))


async def test_plain_group_without_topics_relays_through_replies(
    server: FakeBotAPI, core: Core, tmp_path: Path
) -> None:
    """In a group without forum topics, staff answer by replying to the card or to a relayed message."""
    world = staff_world(server, core, tmp_path, forum=False)
    await world.start()
    try:
        await grant(server, "volunteer", world.volunteer)
        user = server.user(language_code="en")
        await begin(user, "en")
        await user.send("/human")
        ask = await user.wait_for(lambda m: any(b.data == "h:0" for r in m.buttons for b in r))
        await user.tap(data="h:0", message=ask)
        card = await world.group.wait_for(has("🎫"))
        await user.send("Is anyone there?")
        relayed = await world.group.wait_for(has("Is anyone there?"))
        await world.group.wait_idle(quiet=0.2)  # a person reads before answering
        await world.volunteer.reply("Yes, I am here", to=relayed)
        await user.wait_for(has("I am here"))
        await world.volunteer.reply("Replying to the card works too", to=card)
        await user.wait_for(has("card works too"))
        await world.volunteer.send("Not a reply: stays in the group")
        await user.wait_idle(quiet=0.4)
        assert not any("stays in the group" in m.text for m in user.messages)
    finally:
        await world.shutdown()


async def test_waiting_ticket_gets_a_reminder_and_topic_is_reused(staff: Staff) -> None:
    """Nobody takes a ticket: staff are reminded. Closed and asked again, the person gets the same topic."""
    user = staff.server.user(language_code="en")
    topic = await open_ticket(user, staff)
    reminder = await staff.group.wait_for(lambda m: m.topic_id is None and "⏰" in m.text, timeout=10)
    assert "#1" in reminder.text
    await staff.volunteer.send("/close", thread_id=topic.thread_id)
    await user.wait_for(has("Our team closed this conversation"))
    await user.send("/human")
    ask = await user.wait_for(lambda m: any(b.data == "h:0" for r in m.buttons for b in r))
    await user.tap(data="h:0", message=ask)
    await topic.wait_for(lambda m: "🎫 Ticket #2" in m.text)
    assert len(staff.group.topics) == 1


async def test_revoked_volunteer_can_no_longer_write(staff: Staff) -> None:
    """An admin revokes a volunteer: their next message in a topic reaches nobody."""
    user = staff.server.user(language_code="en")
    topic = await open_ticket(user, staff)
    admin = staff.server.user(user_id=ADMIN_ID, language_code="en")
    await admin.send(f"/revoke {staff.volunteer.id}")
    await admin.wait_for(has("no longer has a staff role"))
    await staff.volunteer.send("Still here?", thread_id=topic.thread_id)
    await topic.wait_for(has(staff.es("staff.not_allowed")))
    assert not any("Still here?" in m.text for m in user.messages)


async def test_delete_during_a_conversation_removes_the_topic_and_tells_staff(staff: Staff) -> None:
    """/delete while talking to staff: their topic leaves the staff group with everything in it, staff read why in
    General, and no ticket is left in the queue."""
    user = staff.server.user(language_code="en")
    topic = await open_ticket(user, staff)
    await user.send("My passport number is X123")
    await topic.wait_for(has("X123"))
    await user.send("/delete")
    confirm = await user.wait_for(lambda m: any(b.data == "d:1" for r in m.buttons for b in r))
    await user.tap(data="d:1", message=confirm)
    await staff.group.wait_for(lambda m: m.topic_id is None and staff.es("staff.erased_removed", id=1) in m.text)
    assert staff.group.topics == []
    assert not any("X123" in m.text for m in staff.group.messages)
    await staff.volunteer.send("/queue")
    await staff.group.wait_for(has(staff.es("staff.queue_empty")))


async def test_delete_when_the_topic_cannot_be_removed_tells_staff_in_it(staff: Staff) -> None:
    """Telegram refuses to delete the topic (the bot lost that right): staff are told in the topic itself that
    the ticket is closed, and what they write there no longer reaches the person."""
    user = staff.server.user(language_code="en")
    topic = await open_ticket(user, staff)
    staff.server.fail_next(
        "deleteForumTopic", status=400, description="Bad Request: not enough rights to delete the topic"
    )
    await user.send("/delete")
    confirm = await user.wait_for(lambda m: any(b.data == "d:1" for r in m.buttons for b in r))
    await user.tap(data="d:1", message=confirm)
    await topic.wait_for(has(staff.es("staff.erased", id=1)))
    await staff.volunteer.send("¿Sigues ahí?", thread_id=topic.thread_id)
    await staff.group.wait_idle(quiet=0.4)
    assert not any("Sigues" in m.text for m in user.messages)


async def test_removed_from_the_staff_group_the_person_is_told_and_nothing_waits(staff: Staff) -> None:
    """Someone removes the bot from the staff group: a person asking for a human is told nobody can answer now,
    and no ticket is left waiting. Once the bot is back, asking again opens a topic as usual."""
    owner = staff.group.member(first_name="Dueña")
    await staff.group.remove_bot(owner)
    user = staff.server.user(language_code="es")
    await begin(user, "es")
    await user.send("/human")
    ask = await user.wait_for(lambda m: any(b.data == "h:0" for r in m.buttons for b in r))
    await user.tap(data="h:0", message=ask)
    await user.wait_for(has(staff.es("handoff.unavailable")))
    await user.send("¿Hola?")  # not held for staff: the questionnaire answers
    await user.wait_idle(quiet=0.4)
    assert not any(staff.es("handoff.busy") in m.text for m in user.messages)

    await staff.group.add_bot(owner, admin=True)
    await user.send("/human")
    ask = await user.wait_for(lambda m: m is not ask and any(b.data == "h:0" for r in m.buttons for b in r))
    await user.tap(data="h:0", message=ask)
    topic = await staff.group.wait_for_topic()
    card = await topic.wait_for(has("🎫"))
    assert "#2" in card.text  # the first ticket was closed, not reused


async def test_an_edit_made_while_its_copy_is_on_its_way_is_not_lost(staff: Staff) -> None:
    """Telegram shows a copy before the bot hears back (here a second later): an edit made in that second, by
    staff or by the person, still reaches the copy."""
    user = staff.server.user(language_code="es")
    topic = await open_ticket(user, staff)
    await topic.wait_for(has("🎫"))

    staff.server.slow_next("copyMessage", 1.0, chat_id=user.id)
    await staff.volunteer.send("Tu cita es el lunes", thread_id=topic.thread_id)
    to_person = await user.wait_for(has("lunes"))
    await staff.volunteer.edit(staff.volunteer.last_sent, "Tu cita es el martes")
    await user.wait_until(lambda: to_person.text == "Tu cita es el martes")

    staff.server.slow_next("copyMessage", 1.0, chat_id=staff.group.id)
    await user.send("Gracias, el lunes puedo")
    to_staff = await topic.wait_for(has("lunes puedo"))
    await user.edit(user.last_sent, "Gracias, el martes puedo")
    await topic.wait_until(lambda: to_staff.text == "Gracias, el martes puedo")


async def test_a_topic_staff_closed_or_deleted_in_the_app_comes_back_when_the_person_writes(staff: Staff) -> None:
    """Staff close the person's topic in the Telegram app (not /close): that is no answer to anyone, and the next
    message from the person reopens it. Staff then delete the topic: the next message opens a new topic with the
    card, and arrives there. Nothing the person wrote is lost, in order."""
    user = staff.server.user(language_code="en")
    topic = await open_ticket(user, staff)
    await topic.wait_for(has("🎫"))

    await staff.volunteer.close_topic(topic.thread_id)
    await user.send("Hello? Anyone?")
    await topic.wait_for(has("Anyone?"))
    assert not topic.closed
    assert not any("closed" in m.text.lower() for m in user.messages)  # closing the topic told the person nothing

    staff.volunteer.delete_topic(topic.thread_id)
    await user.send("first after the topic went")
    await user.send("second after the topic went")
    fresh = await staff.group.wait_for_topic(lambda t: t.thread_id != topic.thread_id)
    await fresh.wait_for(has("second after"))
    relayed = [m.text for m in fresh.messages if not m.text.startswith("🎫")]
    assert relayed == ["first after the topic went", "second after the topic went"]
    assert any(m.text.startswith("🎫 Ticket #1") for m in fresh.messages)  # the card again, same ticket

    await staff.volunteer.send("We are here", thread_id=fresh.thread_id)
    await user.wait_for(has("We are here"))


async def test_removed_from_the_staff_group_mid_conversation_the_person_is_told(staff: Staff) -> None:
    """The bot is removed from the staff group while a person talks to staff: their next message cannot arrive,
    so they are told the conversation is closed, and they are back with the bot (nothing held for staff)."""
    user = staff.server.user(language_code="en")
    topic = await open_ticket(user, staff)  # in English
    await topic.wait_for(has("🎫"))
    await staff.group.remove_bot(staff.group.member(first_name="Dueña"))
    await user.send("Are you still there?")
    await user.wait_for(has(staff.core.translator.text("en", "handoff.lost")))
    await user.send("/help")
    await user.wait_for(has("/mydata"))  # the help text: the questionnaire answers again
    assert not any(staff.core.translator.text("en", "handoff.busy") in m.text for m in user.messages)


# ---------------------------------------------------------------------------------------------- what staff can do


async def test_only_my_messages_shows_staff_no_answer_result_or_reason(staff: Staff) -> None:
    """ "No, only my messages": the card shows the language and nothing that reveals an answer; the prompt says so."""
    user = staff.server.user(language_code="en")
    topic = await open_ticket(user, staff, share_answers=False)
    ask = next(m for m in user.messages if m.text == staff.core.translator.text("en", "handoff.ask"))
    assert "they see only your language and the messages you send here" in ask.text
    assert "your result and why" in ask.text
    card = await topic.wait_for(has("🎫"))
    assert "English" in card.text
    assert staff.es("staff.no_answers") in card.text
    assert staff.es("result.label.needs_review") not in card.text
    assert staff.es("unknown.passport") not in card.text
    assert staff.core.translator.text("es", "q.passport") not in card.text
    assert staff.core.translator.text("es", "q.nationality") not in card.text
    assert card.text.count("\n") == staff.es("staff.card", id=1, language="x", since="y").count("\n") + 1


async def test_notes_and_commands_in_captions_never_reach_the_person(staff: Staff) -> None:
    """A photo, document or voice message whose caption starts with the note marker stays internal, and a command
    written as a caption is run, not relayed."""
    user = staff.server.user(language_code="en")
    topic = await open_ticket(user, staff)
    await topic.wait_for(has("🎫"))
    where = topic.thread_id
    await staff.volunteer.send_photo(caption="# foto del pasaporte, vencido", thread_id=where)
    await staff.volunteer.send_document("notas.pdf", caption="#notas del caso", thread_id=where)
    voice = {"voice": {**new_file_ids("Voice"), "duration": 2, "mime_type": "audio/ogg"}, "caption": "# audio"}
    await staff.volunteer.send_content(voice, thread_id=where)
    await staff.volunteer.send_photo(caption="/claim", thread_id=where)
    await topic.wait_for(has(staff.es("staff.claimed", who="Vera")))
    await staff.volunteer.send("Hola, ya estoy aquí", thread_id=where)
    await user.wait_for(has("ya estoy aquí"))
    await user.wait_idle(quiet=0.3)
    relayed = [m for m in user.messages if m.photo or m.document or "voice" in m.content or "claim" in m.text]
    assert relayed == []


async def test_a_message_edited_into_a_note_is_deleted_from_the_persons_chat(staff: Staff) -> None:
    """Staff turn a relayed message into an internal note: the person's copy is deleted, and staff are told."""
    user = staff.server.user(language_code="en")
    topic = await open_ticket(user, staff)
    await staff.volunteer.send("Tu cita es el lunes a las 9", thread_id=topic.thread_id)
    copy = await user.wait_for(has("cita es el lunes"))
    await staff.volunteer.edit(staff.volunteer.last_sent, "# ojo: era para otra persona")
    await topic.wait_for(has(staff.es("staff.withdrawn")))
    await user.wait_until(lambda: copy.deleted)
    assert not any("otra persona" in version.content.get("text", "") for version in copy.history)
    assert "otra persona" not in copy.text


async def test_a_forward_from_another_topic_reaches_nobody_until_staff_send_it(staff: Staff) -> None:
    """A message forwarded from one person's topic into another's is not copied to the second person; a /send
    in reply to it is how staff say they mean it. Cards cannot be forwarded at all (protect_content)."""
    ana, luis = staff.server.user(language_code="en"), staff.server.user(language_code="en")
    ana_topic = await open_ticket(ana, staff)
    ana_card = await ana_topic.wait_for(has("🎫"))
    assert ana_card.protected
    with pytest.raises(AssertionError, match="protect_content"):
        await staff.volunteer.forward(ana_card, thread_id=ana_topic.thread_id)
    await ana.send("Mi número es 555-0199")
    ana_words = await ana_topic.wait_for(has("555-0199"))
    luis_topic = await open_ticket(luis, staff, topic="#2 · EN")
    await luis_topic.wait_for(has("🎫"))

    await staff.volunteer.forward(ana_words, thread_id=luis_topic.thread_id)
    forwarded = staff.volunteer.last_sent
    await luis_topic.wait_for(has(staff.es("staff.forward_kept")))
    await staff.volunteer.send("/send", thread_id=luis_topic.thread_id)  # not a reply: it says how
    await luis_topic.wait_for(has(staff.es("staff.send_usage")))
    await staff.volunteer.reply("/send", to=ana_card, thread_id=ana_topic.thread_id)  # the bot's own: never
    await ana_topic.wait_for(has(staff.es("staff.send_usage")))
    await luis.wait_idle(quiet=0.3)
    assert not any("555-0199" in m.text for m in luis.messages)
    assert not any("🎫" in m.text for m in ana.messages)

    await staff.volunteer.reply("/send", to=forwarded, thread_id=luis_topic.thread_id)  # staff mean it
    await luis.wait_for(has("555-0199"))


async def test_an_outsider_flooding_topics_delays_no_relay(staff: Staff, request: pytest.FixtureRequest) -> None:
    """300 messages from a member without a role get one refusal notice, and a person's next message reaches
    staff as fast as before the flood."""
    user = staff.server.user(language_code="en")
    topic = await open_ticket(user, staff)
    await topic.wait_for(has("🎫"))

    async def relay_seconds(text: str) -> float:
        started = time.monotonic()
        await user.send(text)
        copy = await topic.wait_for(has(text), timeout=60)
        return copy.sent_at - started

    before = await relay_seconds("antes de la avalancha")
    for number in range(300):
        await staff.outsider.send(f"spam {number}", thread_id=topic.thread_id)
    during = await relay_seconds("¿hay alguien ahí?")
    await topic.wait_idle(quiet=0.5)
    notices = [m for m in topic.messages if m.text == staff.es("staff.not_allowed")]
    request.config.stash[FIGURES].append(
        f"outsider flood in a topic: 300 messages, {len(notices)} refusal notice; a person's message reached staff "
        f"in {before * 1000:.0f} ms before it, {during * 1000:.0f} ms right after"
    )
    assert len(notices) == 1
    assert during < 3.0  # the 300 notices the bot used to queue took 15 s at this group's pace
    assert not any("spam" in m.text for m in user.messages)


async def test_the_hours_people_read_come_from_the_settings(server: FakeBotAPI, core: Core, tmp_path: Path) -> None:
    """Off duty, a Creole speaker is told when someone answers in Creole, written from OFFICE_HOURS and
    OFFICE_TIMEZONE: a Bogotá office open one day, three days from today, so never now."""
    zone = ZoneInfo("America/Bogota")
    day = (dt.datetime.now(zone).weekday() + 3) % 7
    world = staff_world(server, core, tmp_path, forum=True)
    world.settings = world.settings.model_copy(
        update={"office_hours": f"{DAY_CODES[day]} 08:30-14:00", "office_timezone": zone.key}
    )
    creole_day = core.translator.text("ht", f"date.day.{day + 1}")
    await world.start()
    try:
        user = server.user(language_code="fr")
        await begin(user, "ht")
        for question, option in with_answers(passport="dont_know"):
            await answer(user, question, option)
        await user.tap(data="h:")
        ask = await user.wait_for(lambda m: any(b.data == "h:1" for r in m.buttons for b in r))
        await user.tap(data="h:1", message=ask)
        told = await user.wait_for(has(f"chak {creole_day}, soti 8:30 rive 14:00 (lè Bogota)"))
        assert told.text.startswith(core.translator.text("ht", "handoff.opened_off_duty").split(".")[0])
    finally:
        await world.shutdown()
