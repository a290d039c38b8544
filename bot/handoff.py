"""Handing a person to a human: tickets, one forum topic per person in the staff group, and relay both ways.

What the person writes is copied into their topic; what staff write in the topic is copied back to the person.
Everything going into the staff group goes through the durable outbox, which keeps Telegram's limit of about
twenty messages a minute per group without dropping or reordering anything. Staff roles are checked at the
moment of every action. Messages starting with the note marker stay internal to the staff.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from aiogram.exceptions import TelegramAPIError, TelegramForbiddenError

from bot.hours import OfficeHours
from bot.i18n import Translator
from bot.intents import ShareWithHuman
from bot.logs import hashed
from bot.outbox import PROTECT, Entry, Outbox
from bot.outgoing import Button, Outgoing, Reply
from bot.render import Renderer
from bot.storage import Erasure, Participant, Store
from bot.storage.referrals import Referrals
from bot.storage.tickets import Role, StaffTraces, Ticket, Tickets, TicketStatus
from bot.texts import T
from flows.plaintext import shown_name
from flows.verdict import evaluate

log = logging.getLogger(__name__)

#: Outbox payload keys the relay adds to know, once a copy is sent, which pair to record; REQUEUED marks an entry
#: queued again after its topic was found gone (once only).
TICKET, DIRECTION, SOURCE, CARD, REQUEUED = "ticket_id", "direction", "source_message_id", "card", "requeued"
#: How Telegram refuses a message into a topic that staff deleted or closed in the app.
TOPIC_GONE = ("message thread not found", "TOPIC_CLOSED", "TOPIC_DELETED")
#: How fresh a ticket's `updated_at` is kept while messages go back and forth (retention counts in days).
ACTIVITY_EVERY = dt.timedelta(hours=1)
#: At most one "you may not answer people" notice per group member in this long: refusing a flood costs nothing.
REFUSAL_EVERY = dt.timedelta(minutes=5)


class StaffUnreachable(Exception):
    """The bot cannot post in the staff group: it was removed from it, or the group is gone."""


class StaffApi(Protocol):
    """What the handoff needs from Telegram beyond sending: topics and edits."""

    async def create_topic(self, chat_id: int, name: str) -> int | None:
        """The new topic's thread id, or None when the group has no topics (a plain group).

        Raises StaffUnreachable when the bot is not in the group.
        """

    async def reopen_topic(self, chat_id: int, thread_id: int) -> bool:
        """Whether the topic is open again; raises StaffUnreachable when the bot is not in the group."""

    async def edit_text(self, chat_id: int, message_id: int, text: str) -> None: ...

    async def delete_topic(self, chat_id: int, thread_id: int) -> bool:
        """Delete a forum topic with everything in it; False when Telegram refuses (no right to, or gone)."""

    async def delete_messages(self, chat_id: int, message_ids: Sequence[int]) -> None:
        """Delete messages, as many as Telegram allows (its own, or any as an admin; 48 hours old at most)."""


@dataclass(frozen=True)
class StaffMessage:
    """A message written in the staff group, as the relay needs it."""

    chat_id: int
    message_id: int
    sender_id: int
    sender_name: str
    thread_id: int | None
    reply_to_message_id: int | None
    text: str | None
    #: A photo's, document's, video's or voice message's caption: a note or a command as much as a text is.
    caption: str | None = None
    #: Forwarded from somewhere (another person's topic, perhaps): never copied to the person unless staff /send it.
    forwarded: bool = False
    #: The message replied to is the bot's own (a card, a copy of the person's message, a notice).
    reply_to_bot: bool = False

    @property
    def words(self) -> str:
        """What staff wrote: the text, or the caption of media."""
        return self.text or self.caption or ""


class Handoff:
    def __init__(
        self,
        *,
        staff_chat_id: int,
        tickets: Tickets,
        people: Store,
        referrals: Referrals,
        translator: Translator,
        renderer: Renderer,
        outbox: Outbox,
        api: StaffApi,
        clock: Callable[[], dt.datetime],
        admins: frozenset[int],
        office: OfficeHours,
        staff_language: str,
        note_marker: str,
        remind_after: dt.timedelta,
    ) -> None:
        self.staff_chat_id = staff_chat_id
        self.tickets = tickets
        self.people = people
        self.referrals = referrals
        self.tr = translator
        self.render = renderer
        self.outbox = outbox
        self.api = api
        self.clock = clock
        self.admins = admins
        self.office = office
        self.staff_language = staff_language
        self.note_marker = note_marker
        self.remind_after = remind_after
        self._refused: dict[int, dt.datetime] = {}  # member without a role -> when they were last told so

    # ------------------------------------------------------------------ the person's side

    async def ask(self, participant: Participant) -> Reply:
        """The person wants a human: say what staff would see, and let them choose about their answers."""
        lang = participant.language
        if await self.tickets.open_ticket_of(participant.user_id):
            return Reply((Outgoing(self.tr.text(lang, T.HANDOFF_ALREADY)),))
        return Reply(
            (
                Outgoing(
                    self.tr.text(lang, T.HANDOFF_ASK),
                    (
                        (Button(self.tr.text(lang, T.HANDOFF_SHARE_YES), ShareWithHuman(share=True)),),
                        (Button(self.tr.text(lang, T.HANDOFF_SHARE_NO), ShareWithHuman(share=False)),),
                    ),
                ),
            )
        )

    async def open(self, participant: Participant, *, share_answers: bool) -> Reply:
        lang = participant.language
        if await self.tickets.open_ticket_of(participant.user_id):
            return Reply((Outgoing(self.tr.text(lang, T.HANDOFF_ALREADY)),))
        now = self.clock()
        ticket = await self.tickets.create(
            participant.user_id, share_answers=share_answers, now=now, language=participant.language
        )
        try:
            thread_id = await self._topic_for(participant, ticket)
        except StaffUnreachable:
            # Nobody would read the card: say so now, rather than let the person write into the void.
            await self._unreachable(ticket)
            return Reply(
                (Outgoing(self.tr.text(lang, T.HANDOFF_UNAVAILABLE)),), edit_source=self.tr.text(lang, T.HANDOFF_ASK)
            )
        ticket = await self.tickets.update(ticket.id, now, thread_id=thread_id) or ticket
        card = await self._card(participant, ticket)
        await self.outbox.put(
            self.staff_chat_id,
            "text",
            {"text": card, TICKET: ticket.id, CARD: True, PROTECT: True},
            thread_id=thread_id,
        )
        log.info("ticket opened", extra={"user": hashed(participant.user_id), "ticket": ticket.id})
        key = T.HANDOFF_OPENED if self.office.on_duty(now) else T.HANDOFF_OPENED_OFF_DUTY
        hours = self.office.describe(self.tr, lang)
        return Reply((Outgoing(self.tr.text(lang, key, hours=hours)),), edit_source=self.tr.text(lang, T.HANDOFF_ASK))

    async def intercept(
        self, user_id: int, chat_id: int, message_id: int, reply_to: int | None, *, command: bool
    ) -> Reply | None:
        """While a person's ticket is open their messages go to staff, and the questionnaire waits.

        None when they have no open ticket (the conversation handles the message as usual).
        """
        ticket = await self.tickets.open_ticket_of(user_id)
        if ticket is None:
            return None
        if command:
            return Reply((Outgoing(await self.busy_text(user_id)),))
        await self.relay_in(ticket, chat_id, message_id, reply_to)
        return Reply()

    async def busy_text(self, user_id: int) -> str:
        participant = await self.people.load(user_id)
        return self.tr.text(participant.language if participant else self.staff_language, T.HANDOFF_BUSY)

    async def relay_in(self, ticket: Ticket, chat_id: int, message_id: int, reply_to: int | None) -> None:
        """Copy what the person wrote into their topic, replying to the staff message they replied to."""
        payload: dict[str, object] = {
            "from_chat_id": chat_id,
            "message_id": message_id,
            TICKET: ticket.id,
            DIRECTION: "in",
            SOURCE: message_id,
        }
        if reply_to is not None:
            staff_copy = await self.tickets.staff_copy_of(ticket.id, reply_to)
            if staff_copy is not None:
                payload["reply_to"] = staff_copy
        await self.outbox.put(self.staff_chat_id, "copy", payload, thread_id=ticket.thread_id)
        await self._still_talking(ticket)

    async def relay_edit_in(self, ticket: Ticket, message_id: int, text: str) -> None:
        staff_copy = await self._copy_of(ticket, message_id, self.staff_chat_id, self.tickets.staff_copy_of)
        if staff_copy is not None:
            await self.api.edit_text(self.staff_chat_id, staff_copy, text)

    async def _copy_of(
        self, ticket: Ticket, message_id: int, chat_id: int, lookup: Callable[[int, int], Awaitable[int | None]]
    ) -> int | None:
        """The copy of a message in the other chat. An edit can come while that copy is on its way (Telegram shows
        it before the bot hears back and records the pair): then the pair is read again once that send is done. A
        copy still queued needs nothing: it is made from the message as edited."""
        copy = await lookup(ticket.id, message_id)
        if copy is None:
            await self.outbox.in_flight(chat_id)
            copy = await lookup(ticket.id, message_id)
        return copy

    async def leave(self, participant: Participant) -> Reply:
        """/bot: the person closes the handoff themselves."""
        lang = participant.language
        ticket = await self.tickets.open_ticket_of(participant.user_id)
        if ticket is not None:
            await self._close(ticket, self.tr.text(self.staff_language, T.STAFF_LEFT))
        return Reply((Outgoing(self.tr.text(lang, T.HANDOFF_LEFT)),))

    async def forget(self, participant: Participant) -> StaffTraces:
        """Before a person's data is erased: close their open ticket, and read what the staff group shows of them
        (for `erased` to remove it once their rows are gone)."""
        ticket = await self.tickets.open_ticket_of(participant.user_id)
        if ticket is not None:
            now = self.clock()
            await self.tickets.update(ticket.id, now, status=TicketStatus.CLOSED, closed_at=now)
            log.info("ticket closed", extra={"ticket": ticket.id})
        return await self.tickets.traces_of(participant.user_id)

    async def erased(self, traces: StaffTraces, why: Erasure) -> None:
        """After a person's data is erased: the outbox forgets what it had read of their rows (they are gone), and
        their conversation leaves the staff group: their topics are deleted, or in a group without topics the
        messages the bot posted about them. When they asked, staff are told (in General, or in the topic Telegram
        would not let the bot delete) why nobody will answer there."""
        self.outbox.reload()
        if traces.latest_ticket is None:
            return
        kept = [thread for thread in traces.threads if not await self.api.delete_topic(self.staff_chat_id, thread)]
        if traces.messages:  # a group without topics: what Telegram lets the bot delete (48 hours at most)
            await self.api.delete_messages(self.staff_chat_id, traces.messages)
        log.info(
            "staff group cleared",
            extra={"topics": len(traces.threads) - len(kept), "kept": len(kept), "messages": len(traces.messages)},
        )
        if why is not Erasure.ASKED:
            return  # a retention purge: nobody is waiting on an answer, and staff need not hear of each one
        if kept or traces.messages:
            note = self.tr.text(self.staff_language, T.STAFF_ERASED, id=traces.latest_ticket)
            thread = kept[-1] if kept else None
        else:
            note = self.tr.text(self.staff_language, T.STAFF_ERASED_REMOVED, id=traces.latest_ticket)
            thread = None  # General
        await self.outbox.put(self.staff_chat_id, "text", {"text": note}, thread_id=thread)

    # ------------------------------------------------------------------ the staff's side

    async def role_of(self, user_id: int) -> Role | None:
        if user_id in self.admins:
            return Role.ADMIN
        return await self.tickets.role(user_id)

    async def from_staff(self, message: StaffMessage) -> str | None:
        """A message in the staff group. Returns a short notice to post back (a refusal, a command's answer), or None.

        Only what a volunteer, advisor or admin writes in a ticket's topic reaches the person, and not: a command
        (in a text or a caption), an internal note (a text or caption starting with the note marker), or a
        forwarded message, which may well be another person's words: staff send that one with /send, replying
        to it.
        """
        words = message.words
        if words.startswith("/queue"):
            return await self._queue() if await self.role_of(message.sender_id) else None
        ticket = await self._ticket_for(message)
        if ticket is None:
            return None  # the group's general chat, or a closed ticket's topic
        role = await self.role_of(message.sender_id)
        if role is None:
            log.warning("relay refused: not staff", extra={"user": hashed(message.sender_id), "ticket": ticket.id})
            return self._refusal(message.sender_id)
        if words.startswith("/"):
            return await self._command(ticket, message, words)
        if words.startswith(self.note_marker):
            return None  # an internal note
        if message.forwarded:
            return self.tr.text(self.staff_language, T.STAFF_FORWARD_KEPT)
        await self._relay_out(ticket, message.chat_id, message.message_id, message.reply_to_message_id, message)
        return None

    async def _relay_out(
        self, ticket: Ticket, chat_id: int, message_id: int, reply_to: int | None, by: StaffMessage
    ) -> None:
        """Copy a staff message to the person, replying to their message when staff replied to its copy."""
        payload: dict[str, object] = {
            "from_chat_id": chat_id,
            "message_id": message_id,
            TICKET: ticket.id,
            DIRECTION: "out",
            SOURCE: message_id,
        }
        if reply_to is not None:
            original = await self.tickets.user_copy_of(ticket.id, reply_to)
            if original is not None:
                payload["reply_to"] = original
        participant = await self.people.load(ticket.user_id)
        if participant is None:
            return
        await self.outbox.put(participant.chat_id, "copy", payload)
        await self.tickets.first_answer(ticket.id, self.clock())
        if ticket.status is TicketStatus.WAITING:
            await self.tickets.update(ticket.id, self.clock(), status=TicketStatus.CLAIMED, claimed_by=by.sender_id)
        else:
            await self._still_talking(ticket)

    def _refusal(self, sender_id: int) -> str | None:
        """The refusal notice for a member without a role, unless they were told within REFUSAL_EVERY."""
        now = self.clock()
        last = self._refused.get(sender_id)
        if last is not None and now - last < REFUSAL_EVERY:
            return None
        if len(self._refused) >= 1024:  # forget who was told long ago: the map stays small whatever happens
            self._refused = {who: at for who, at in self._refused.items() if now - at < REFUSAL_EVERY}
        self._refused[sender_id] = now
        return self.tr.text(self.staff_language, T.STAFF_NOT_ALLOWED)

    async def edited_by_staff(self, message: StaffMessage) -> str | None:
        """Staff edited a message in a topic: the person's copy follows a text's edit. A message edited into an
        internal note (or a command) is deleted from the person's chat: what it says now was never meant for them,
        and what it said before staff took back. Returns a notice for staff, or None."""
        ticket = await self._ticket_for(message)
        if ticket is None or await self.role_of(message.sender_id) is None:
            return None
        participant = await self.people.load(ticket.user_id)
        if participant is None:
            return None
        withdrawn = message.words.startswith((self.note_marker, "/"))
        if message.text is None and not withdrawn:
            return None  # a caption corrected: the person keeps the one they received
        user_copy = await self._copy_of(ticket, message.message_id, participant.chat_id, self.tickets.user_copy_of)
        if user_copy is None:
            return None  # never relayed (a note or a command from the start)
        if withdrawn:
            await self.api.delete_messages(participant.chat_id, [user_copy])
            log.info("relayed message withdrawn", extra={"ticket": ticket.id})
            return self.tr.text(self.staff_language, T.STAFF_WITHDRAWN)
        assert message.text is not None
        await self.api.edit_text(participant.chat_id, user_copy, message.text)
        return None

    async def sent(self, entry: Entry, message_id: int) -> None:
        """The outbox delivered a copy: remember the pair (or the card), so replies and edits find their way.

        The pair is written a few milliseconds after Telegram shows the copy; a reply faster than that (no human
        is) would not find its ticket in a group without topics.
        """
        ticket_id = entry.payload.get(TICKET)
        if not isinstance(ticket_id, int):
            return
        if entry.payload.get(CARD):
            await self.tickets.update(ticket_id, self.clock(), card_message_id=message_id)
            return
        source = int(entry.payload[SOURCE])
        try:
            if entry.payload.get(DIRECTION) == "in":
                await self.tickets.pair(ticket_id, source, message_id, "in")
            else:
                await self.tickets.pair(ticket_id, message_id, source, "out")
        except Exception:
            if await self.tickets.by_id(ticket_id) is None:
                return  # the person was erased while the copy was on its way: nothing to pair it with
            raise

    async def refused(self, entry: Entry, error: TelegramAPIError) -> None:
        """The outbox could not deliver a person's message into the staff group, for good.

        Staff closed or deleted the person's topic in the Telegram app while the ticket was open: the ticket gets
        its topic back (reopened, or a new one with the card) and the message is queued there again, so nothing
        is lost. The bot was removed from the group: the ticket is closed and the person told, rather than left
        writing to nobody. Anything else refused stays refused.
        """
        ticket_id = entry.payload.get(TICKET)
        if entry.chat_id != self.staff_chat_id or not isinstance(ticket_id, int) or entry.payload.get(REQUEUED):
            return
        ticket = await self.tickets.by_id(ticket_id)
        participant = await self.people.load(ticket.user_id) if ticket is not None and ticket.open else None
        if ticket is None or participant is None:
            return
        if isinstance(error, TelegramForbiddenError):
            await self._staff_lost(ticket, participant)
        elif entry.thread_id is not None and any(sign in error.message for sign in TOPIC_GONE):
            await self._topic_back(entry, ticket, participant)

    async def _topic_back(self, entry: Entry, ticket: Ticket, participant: Participant) -> None:
        if ticket.thread_id == entry.thread_id:  # the first of its messages to find the topic gone
            try:
                thread_id = await self._topic_for(participant, ticket)
            except StaffUnreachable:
                await self._staff_lost(ticket, participant)
                return
            ticket = await self.tickets.update(ticket.id, self.clock(), thread_id=thread_id) or ticket
            if thread_id != entry.thread_id and not entry.payload.get(CARD):
                card = {"text": await self._card(participant, ticket), TICKET: ticket.id, CARD: True, PROTECT: True}
                await self.outbox.put(self.staff_chat_id, "text", card, thread_id=thread_id)
            log.info("topic restored", extra={"ticket": ticket.id, "new": thread_id != entry.thread_id})
        again = {**entry.payload, REQUEUED: True}
        await self.outbox.put(self.staff_chat_id, entry.kind, again, thread_id=ticket.thread_id)

    async def _staff_lost(self, ticket: Ticket, participant: Participant) -> None:
        """The staff group can no longer be written to during a conversation: close it, and say so to the person."""
        await self._unreachable(ticket)
        lost = self.tr.text(participant.language, T.HANDOFF_LOST)
        await self.outbox.put(participant.chat_id, "text", {"text": lost})

    async def _unreachable(self, ticket: Ticket) -> None:
        """Close a ticket nobody in the staff group could read, and tell the operators how to mend it."""
        now = self.clock()
        await self.tickets.update(ticket.id, now, status=TicketStatus.CLOSED, closed_at=now)
        log.warning("the bot cannot post in the staff group: add it back as an admin who can manage topics")

    async def remind(self) -> int:
        """Post a reminder for each ticket waiting longer than allowed. Returns how many."""
        now = self.clock()
        late = await self.tickets.overdue(now - self.remind_after)
        for ticket in late:
            minutes = int((now - ticket.opened_at).total_seconds() // 60)
            text = self.tr.text(self.staff_language, T.STAFF_REMINDER, id=ticket.id, minutes=minutes)
            await self.outbox.put(self.staff_chat_id, "text", {"text": text})
            await self.tickets.update(ticket.id, now, reminded_at=now)
        return len(late)

    # ------------------------------------------------------------------ internals

    async def _command(self, ticket: Ticket, message: StaffMessage, text: str) -> str | None:
        lang, now = self.staff_language, self.clock()
        words = text.split()
        name = words[0].lstrip("/").split("@", 1)[0]
        who = shown_name(message.sender_name) or "—"  # a staff member's own name, cleaned like any shown name
        if name == "claim":
            await self.tickets.update(ticket.id, now, status=TicketStatus.CLAIMED, claimed_by=message.sender_id)
            return self.tr.text(lang, T.STAFF_CLAIMED, who=who)
        if name == "escalate":
            await self.tickets.update(ticket.id, now, status=TicketStatus.ESCALATED)
            return self.tr.text(lang, T.STAFF_ESCALATED)
        if name == "assign" and len(words) == 2 and words[1].isdigit():
            advisor = int(words[1])
            if await self.role_of(advisor) not in (Role.ADVISOR, Role.ADMIN):
                return self.tr.text(lang, T.STAFF_NOT_ADVISOR, id=advisor)
            await self.tickets.update(ticket.id, now, status=TicketStatus.ASSIGNED, assigned_to=advisor)
            return self.tr.text(lang, T.STAFF_ASSIGNED, id=advisor)
        if name == "send":
            return await self._send_replied(ticket, message)
        if name == "close":
            await self._close(ticket, self.tr.text(lang, T.STAFF_CLOSED, who=who))
            participant = await self.people.load(ticket.user_id)
            if participant is not None:
                notice = self.tr.text(participant.language, T.HANDOFF_CLOSED)
                await self.outbox.put(participant.chat_id, "text", {"text": notice})
            return None
        return self.tr.text(lang, T.STAFF_USAGE, marker=self.note_marker)

    async def _send_replied(self, ticket: Ticket, message: StaffMessage) -> str | None:
        """/send, replying to a message staff posted in the topic (a forward, say): copy that one to the person."""
        if message.reply_to_message_id is None or message.reply_to_bot or message.thread_id is None:
            return self.tr.text(self.staff_language, T.STAFF_SEND_USAGE)
        await self._relay_out(ticket, message.chat_id, message.reply_to_message_id, None, message)
        return None

    async def _close(self, ticket: Ticket, note: str) -> None:
        await self.tickets.update(ticket.id, self.clock(), status=TicketStatus.CLOSED, closed_at=self.clock())
        await self.outbox.put(self.staff_chat_id, "text", {"text": note}, thread_id=ticket.thread_id)
        log.info("ticket closed", extra={"ticket": ticket.id})

    async def _still_talking(self, ticket: Ticket) -> None:
        """A conversation going on is activity: retention keeps people whose ticket moved within its period.
        Recorded at most every ACTIVITY_EVERY, so a burst of messages costs no extra writes."""
        now = self.clock()
        if now - ticket.updated_at >= ACTIVITY_EVERY:
            await self.tickets.update(ticket.id, now)

    async def _ticket_for(self, message: StaffMessage) -> Ticket | None:
        if message.thread_id is not None:
            found = await self.tickets.by_thread(message.thread_id)
            if found is not None:
                return found
        if message.reply_to_message_id is not None:  # a group without topics: staff answer by replying
            return await self.tickets.ticket_of_staff_message(message.reply_to_message_id)
        return None

    async def _topic_for(self, participant: Participant, ticket: Ticket) -> int | None:
        previous = await self.tickets.last_thread_of(participant.user_id)
        if previous is not None and await self.api.reopen_topic(self.staff_chat_id, previous):
            return previous
        return await self.api.create_topic(self.staff_chat_id, f"#{ticket.id} · {participant.language.upper()}")

    async def _queue(self) -> str:
        now, lang = self.clock(), self.staff_language
        waiting = await self.tickets.queue()
        if not waiting:
            return self.tr.text(lang, T.STAFF_QUEUE_EMPTY)
        lines = [self.tr.text(lang, T.STAFF_QUEUE_HEADER)]
        for ticket in waiting:
            minutes = int((now - ticket.opened_at).total_seconds() // 60)
            status = self.tr.text(lang, f"staff.status.{ticket.status.value}")
            lines.append(self.tr.text(lang, T.STAFF_QUEUE_LINE, id=ticket.id, status=status, minutes=minutes))
        return "\n".join(lines)

    async def _card(self, participant: Participant, ticket: Ticket) -> str:
        """What staff see first: the ticket, the person's language and since when they wait. Their answers, result
        and its reasons, and the organisations they asked to contact them only if they agreed: each of those
        reveals answers (a removal order, how they crossed, their nationality), so "only my messages" shows none."""
        lang = self.staff_language
        language = self.tr.text(participant.language, T.LANG_NAME)
        lines = [self.tr.text(lang, T.STAFF_CARD, id=ticket.id, language=language, since=ticket.opened_at.date())]
        if not ticket.share_answers:
            lines.append(self.tr.text(lang, T.STAFF_NO_ANSWERS))
            return "\n".join(lines)
        if participant.outcome:
            result = self.tr.text(lang, f"result.label.{participant.outcome}")
            lines.append(self.tr.text(lang, T.STAFF_RESULT, result=result))
            verdict = evaluate(self.render.program, participant.session.answers)
            for reason in (*verdict.failed, *verdict.uncertain, *verdict.pending):
                lines.append(f"• {self.tr.text(lang, reason.text, date=reason.date)}")
        lines.append(self.tr.text(lang, T.CARD_ANSWERS))
        lines += self.render.answers(lang, participant.session)
        for referral in await self.referrals.of_person(participant.user_id):
            lines.append(self.tr.text(lang, T.STAFF_REFERRAL, org=referral.org_id, status=referral.status.value))
        return "\n".join(lines)
