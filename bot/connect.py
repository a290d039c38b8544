"""Connecting people with sponsorship organisations, only with their consent.

The flow: organisations that fit the person are shown (at most three, fairly spread); "ask them to contact me"
shows exactly what would be shared; only Share creates a referral, within the organisation's weekly capacity;
the organisation's intake chat gets a card with Accept and Decline, which only its registered members can use;
the person hears back in their language, and can withdraw while the request is open.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from bot.i18n import Translator
from bot.intents import Decide, Intent, PickOrganisation, ShareWith, ShowOrganisations, Withdraw
from bot.logs import hashed
from bot.outgoing import Button, Outgoing, Reply
from bot.programs import Programs
from bot.render import Renderer
from bot.storage import Erasure, Participant, Store
from bot.storage.referrals import Referral, Referrals, ReferResult, Status, iso_week
from bot.texts import T
from flows.directory import Offer, Organisation
from flows.matching import Seeker, match
from flows.plaintext import shown_name

log = logging.getLogger(__name__)

#: What a person is looking for, by the result they got.
NEEDS_BY_OUTCOME: dict[str | None, frozenset[Offer]] = {
    "likely_eligible": frozenset({"find_supporter", "act_as_supporter", "travel_help"}),
    "needs_review": frozenset({"legal_advice", "find_supporter"}),
    "not_eligible": frozenset({"legal_advice"}),
}
ALL_NEEDS: frozenset[Offer] = frozenset({"find_supporter", "act_as_supporter", "legal_advice", "travel_help"})


class Messenger(Protocol):
    """Sends to chats other than the one that wrote: an intake chat, or a person the organisation answered."""

    async def send(self, chat_id: int, message: Outgoing) -> int | None:
        """The new message's id, or None when the chat cannot be reached."""

    async def edit(self, chat_id: int, message_id: int, message: Outgoing) -> None:
        """Replace a message's text and buttons; a refusal (deleted, too old) is logged, not raised."""


#: What Telegram allows in a username; anything else in that field is not shown as one.
_USERNAME = re.compile(r"[A-Za-z0-9_]{4,32}")


@dataclass(frozen=True)
class Contact:
    """How the organisation can reach the person, read from the update at the moment they share; never stored.

    Only a username Telegram vouches for is written with "@"; a first name is anything the person typed, so
    it is labelled as a name and shown without hidden characters or "@" (`flows.plaintext.shown_name`): a
    first name "@helpdesk" must not pass for the account @helpdesk.
    """

    user_id: int
    username: str | None = None
    first_name: str | None = None

    @property
    def link(self) -> str:
        return f"tg://user?id={self.user_id}"

    @property
    def handle(self) -> str | None:
        """The "@username", or None when there is none (or it is not one Telegram could have issued)."""
        return f"@{self.username}" if self.username and _USERNAME.fullmatch(self.username) else None

    @property
    def name(self) -> str:
        return shown_name(self.first_name) or "—"


class Connector:
    def __init__(
        self,
        referrals: Referrals,
        people: Store,
        translator: Translator,
        programs: Programs,
        messenger: Messenger,
        clock: Callable[[], dt.datetime],
        default_language: str = "es",
    ) -> None:
        self.referrals = referrals
        self.default_language = default_language
        self.people = people
        self.tr = translator
        self.messenger = messenger
        self.clock = clock
        self.render = Renderer(translator, programs)

    # ------------------------------------------------------------------ the person's side

    def wanted_after(self, participant: Participant) -> bool:
        """Whether a result should be followed by organisations: no supporter yet, or a case for review."""
        if participant.outcome == "needs_review":
            return True
        return participant.outcome == "likely_eligible" and participant.session.answers.get("supporter") != "yes"

    async def offer(self, participant: Participant, *, lead: str | None = None) -> list[Outgoing]:
        """Up to three organisations that fit the person, each with what it offers and how to reach it."""
        lang = participant.language
        orgs = await self._matches(participant)
        if not orgs:
            return [Outgoing(self._join(lead, self.tr.text(lang, T.ORGS_NONE)))]
        messages = [Outgoing(self._join(lead, self.tr.text(lang, T.ORGS_INTRO)))]
        for org in orgs:
            buttons: tuple[tuple[Button, ...], ...] = ()
            if org.intake_chat_id is not None:
                label = self.tr.text(lang, T.ORGS_ASK, name=org.name)
                buttons = ((Button(label, PickOrganisation(org.id)),),)
            messages.append(Outgoing(self._card_for_person(lang, org), buttons))
        return messages

    async def handle(self, participant: Participant, contact: Contact, intent: Intent) -> Reply:
        lang = participant.language
        match intent:
            case ShowOrganisations():
                return Reply(tuple(await self.offer(participant)))
            case PickOrganisation(org_id=org_id) | ShareWith(org_id=org_id):
                org = await self.referrals.organisation(org_id)
                # The button names an organisation, so check it is one this person could have been offered:
                # forged data must not send their answers to an organisation that does not serve them.
                if org is None or org.intake_chat_id is None or not self._fits(participant, org):
                    name = org.name if org else "—"
                    return Reply((Outgoing(self.tr.text(lang, T.REFERRAL_UNAVAILABLE, name=name)),))
                screen = self._sharing_screen(participant, contact, org)
                if isinstance(intent, PickOrganisation):
                    return Reply((screen,))
                if not intent.share:
                    return Reply((Outgoing(self.tr.text(lang, T.CONSENT_NOT_SHARED)),), edit_source=screen.text)
                return replace(await self._share(participant, contact, org), edit_source=screen.text)
            case Withdraw(referral_id=referral_id):
                return await self._withdraw(participant, referral_id)
        raise TypeError(f"not an organisation intent: {intent!r}")

    async def _share(self, participant: Participant, contact: Contact, org: Organisation) -> Reply:
        lang = participant.language
        result, referral = await self.referrals.refer(participant.user_id, org.id, self.clock())
        if result is ReferResult.ALREADY:
            return Reply((Outgoing(self.tr.text(lang, T.REFERRAL_ALREADY, name=org.name)),))
        if result is not ReferResult.CREATED or referral is None:
            key = T.REFERRAL_FULL if result is ReferResult.FULL else T.REFERRAL_UNAVAILABLE
            return Reply(tuple(await self.offer(participant, lead=self.tr.text(lang, key, name=org.name))))
        log.info(
            "referral created", extra={"user": hashed(participant.user_id), "org": org.id, "referral": referral.id}
        )
        assert org.intake_chat_id is not None  # checked before the sharing screen was offered
        message_id = await self.messenger.send(org.intake_chat_id, self._card(org, referral, participant, contact))
        if message_id is None:
            # The organisation would never see it: say so now rather than leave the person waiting.
            log.warning("intake chat unreachable", extra={"org": org.id, "referral": referral.id})
            await self.referrals.settle(referral.id, Status.UNDELIVERED, self.clock())
            lead = self.tr.text(lang, T.REFERRAL_UNDELIVERED, name=org.name)
            return Reply(tuple(await self.offer(participant, lead=lead)))
        await self.referrals.attach_card(referral.id, org.intake_chat_id, message_id)
        # Sent here rather than as the reply, to keep its id: the Withdraw button goes once the organisation decides.
        sent = Outgoing(
            self.tr.text(lang, T.REFERRAL_SENT, name=org.name),
            ((Button(self.tr.text(lang, T.REFERRAL_WITHDRAW_BUTTON), Withdraw(referral.id)),),),
        )
        notice_id = await self.messenger.send(participant.chat_id, sent)
        if notice_id is not None:
            await self.referrals.attach_notice(referral.id, notice_id)
        return Reply(())

    async def _withdraw(self, participant: Participant, referral_id: int) -> Reply:
        lang = participant.language
        referral = await self._close(participant, referral_id)
        if referral is None:
            return Reply((Outgoing(self.tr.text(lang, T.REFERRAL_CLOSED)),))
        org = await self.referrals.organisation(referral.org_id)
        name = org.name if org else "—"
        return Reply(
            (Outgoing(self.tr.text(lang, T.REFERRAL_WITHDRAWN, name=name)),),
            edit_source=self.tr.text(lang, T.REFERRAL_SENT, name=name),
        )

    async def forget(self, participant: Participant, why: Erasure) -> None:
        """Before a person's data is erased: no card in an intake chat keeps their contact or answers.

        Open requests are withdrawn and the organisation told. Every card is cleared down to one line saying why.
        An organisation that accepted them is asked to respect the erasure as well, when the person asked for it.
        """
        cleared = T.CARD_CLEARED_ERASED if why is Erasure.ASKED else T.CARD_CLEARED_EXPIRED
        for referral in await self.referrals.of_person(participant.user_id):
            if referral.status is Status.PENDING:
                await self._close(participant, referral.id, cleared=cleared)
                continue
            org = await self.referrals.organisation(referral.org_id)
            await self._clear_card(referral, org, cleared)
            taken = referral.status is Status.ACCEPTED and why is Erasure.ASKED
            if taken and org is not None and referral.card_chat_id is not None:
                notice = self.tr.text(_org_language(org), T.CARD_ERASED_ACCEPTED, id=referral.id)
                await self.messenger.send(referral.card_chat_id, Outgoing(notice))

    async def _close(
        self, participant: Participant, referral_id: int, *, cleared: T = T.CARD_CLEARED_WITHDRAWN
    ) -> Referral | None:
        """Withdraw one of the person's open requests: clear its card and tell the organisation's intake chat."""
        referral = await self.referrals.settle(referral_id, Status.WITHDRAWN, self.clock(), user_id=participant.user_id)
        if referral is None:
            return None
        org = await self.referrals.organisation(referral.org_id)
        await self._clear_card(referral, org, cleared)
        if org is not None and referral.card_chat_id is not None:
            notice = self.tr.text(_org_language(org), T.CARD_WITHDRAWN, id=referral.id)
            await self.messenger.send(referral.card_chat_id, Outgoing(notice))
        log.info("referral withdrawn", extra={"user": hashed(participant.user_id), "referral": referral.id})
        return referral

    async def _clear_card(self, referral: Referral, org: Organisation | None, why: T) -> None:
        """Replace the request's card with one line: the person's contact and answers leave the intake chat."""
        if org is None or referral.card_chat_id is None or referral.card_message_id is None:
            return
        line = Outgoing(self.tr.text(_org_language(org), why, id=referral.id))
        await self.messenger.edit(referral.card_chat_id, referral.card_message_id, line)

    # ------------------------------------------------------------------ the organisation's side

    async def decide(
        self, member_id: int, member_name: str, decision: Decide, card_text: str, card: tuple[int, int]
    ) -> Reply:
        """An Accept or Decline tapped in an intake chat. Only the organisation's registered members count;
        anyone else changes nothing (and is logged, without personal data). `card` is the (chat id, message id)
        tapped: only the referral's own card decides it, so forged data on another message changes nothing."""
        referral = await self.referrals.referral(decision.referral_id)
        org = await self.referrals.organisation(referral.org_id) if referral else None
        if referral is None or org is None:
            # A card for a referral that no longer exists: no organisation to take the language from.
            return Reply(toast=self.tr.text(self.default_language, T.CARD_CLOSED))
        lang = _org_language(org)
        if member_id not in org.members:
            log.warning(
                "referral decision refused: not a member",
                extra={"user": hashed(member_id), "org": org.id, "referral": referral.id},
            )
            return Reply(toast=self.tr.text(lang, T.CARD_NOT_MEMBER))
        if card != (referral.card_chat_id, referral.card_message_id):
            log.warning(
                "referral decision refused: not its card",
                extra={"user": hashed(member_id), "org": org.id, "referral": referral.id},
            )
            return Reply(toast=self.tr.text(lang, T.CARD_CLOSED))
        status = Status.ACCEPTED if decision.accept else Status.DECLINED
        settled = await self.referrals.settle(referral.id, status, self.clock())
        if settled is None:
            return Reply(toast=self.tr.text(lang, T.CARD_CLOSED))
        log.info("referral decided", extra={"org": org.id, "referral": referral.id, "status": status.value})
        who = shown_name(member_name) or "—"
        verdict = self.tr.text(lang, T.CARD_ACCEPTED if decision.accept else T.CARD_DECLINED, who=who)
        await self._tell_person(settled, org)
        return Reply(edit_source=f"{card_text}\n\n{verdict}")

    async def _tell_person(self, referral: Referral, org: Organisation) -> None:
        if referral.user_id is None:
            return  # the person deleted their data since sharing
        participant = await self.people.load(referral.user_id)
        if participant is None:
            return
        lang = participant.language
        if referral.notice_message_id is not None:
            # Nothing left to withdraw: the "request sent" message keeps its words and loses its button.
            done = Outgoing(self.tr.text(lang, T.REFERRAL_SENT, name=org.name))
            await self.messenger.edit(participant.chat_id, referral.notice_message_id, done)
        if referral.status is Status.ACCEPTED:
            messages = [Outgoing(self.tr.text(lang, T.REFERRAL_ACCEPTED, name=org.name))]
        else:
            messages = await self.offer(participant, lead=self.tr.text(lang, T.REFERRAL_DECLINED, name=org.name))
        for message in messages:
            await self.messenger.send(participant.chat_id, message)

    # ------------------------------------------------------------------ texts

    async def _matches(self, participant: Participant) -> list[Organisation]:
        week = iso_week(self.clock().date())
        orgs = await self.referrals.organisations()
        loads = await self.referrals.loads(week)
        exclude = await self.referrals.referred_to(participant.user_id)
        return match(orgs, _seeker(participant), loads, exclude=exclude)

    @staticmethod
    def _fits(participant: Participant, org: Organisation) -> bool:
        """Whether `org` serves this person (active, their language, nationality, region and needs): whether
        /organisations could offer it to them. This week's load and earlier referrals are left out: the referral's
        own transaction says "full" or "already asked", as it does for a genuine tap on an older offer."""
        return bool(match([org], _seeker(participant), {}, limit=1))

    def _card_for_person(self, lang: str, org: Organisation) -> str:
        lines = [f"🏢 {org.name}"]
        if not org.verified:
            lines.append(self.tr.text(lang, T.ORGS_UNVERIFIED))
        lines += [f"• {self.tr.text(lang, f'offer.{offer}')}" for offer in org.offers]
        languages = ", ".join(self.tr.text(code, T.LANG_NAME) for code in org.languages)
        lines.append(self.tr.text(lang, T.ORGS_LANGUAGES, value=languages))
        for channel, key in ((org.website, T.ORGS_WEBSITE), (org.phone, T.ORGS_PHONE), (org.email, T.ORGS_EMAIL)):
            if channel:
                lines.append(self.tr.text(lang, key, value=channel))
        lines.append(self.tr.text(lang, T.ORGS_FREE))
        return "\n".join(lines)

    def _sharing_screen(self, participant: Participant, contact: Contact, org: Organisation) -> Outgoing:
        lang = participant.language
        text = "\n".join(
            [
                self.tr.text(lang, T.CONSENT_TITLE, name=org.name),
                "",
                self.tr.text(lang, T.CONSENT_LANGUAGE, language=self.tr.text(lang, T.LANG_NAME)),
                self._contact(lang, contact, T.CONSENT_CONTACT, T.CONSENT_CONTACT_NAME),
                self.tr.text(lang, T.CONSENT_ANSWERS),
                *self.render.answers(lang, participant.session),
                "",
                self.tr.text(lang, T.ORGS_FREE),
            ]
        )
        return Outgoing(
            text,
            (
                (Button(self.tr.text(lang, T.CONSENT_SHARE), ShareWith(org.id, share=True)),),
                (Button(self.tr.text(lang, T.CONSENT_DONT), ShareWith(org.id, share=False)),),
            ),
        )

    def _card(self, org: Organisation, referral: Referral, participant: Participant, contact: Contact) -> Outgoing:
        lang = _org_language(org)
        text = "\n".join(
            [
                self.tr.text(lang, T.CARD_TITLE, id=referral.id),
                self.tr.text(lang, T.CARD_LANGUAGE, language=self.tr.text(participant.language, T.LANG_NAME)),
                self._contact(lang, contact, T.CARD_CONTACT, T.CARD_CONTACT_NAME),
                self.tr.text(lang, T.CARD_ANSWERS),
                *self.render.answers(lang, participant.session),
                "",
                self.tr.text(lang, T.CARD_FREE),
            ]
        )
        return Outgoing(
            text,
            (
                (
                    Button(self.tr.text(lang, T.CARD_ACCEPT), Decide(referral.id, accept=True)),
                    Button(self.tr.text(lang, T.CARD_DECLINE), Decide(referral.id, accept=False)),
                ),
            ),
            protect=True,  # the person's contact and answers: nobody forwards them out of the intake chat
        )

    def _contact(self, lang: str, contact: Contact, by_username: T, by_name: T) -> str:
        """The line saying how to reach the person: "Telegram: @username (link)", or "Name: … (link)"."""
        if contact.handle:
            return self.tr.text(lang, by_username, contact=f"{contact.handle} ({contact.link})")
        return self.tr.text(lang, by_name, name=contact.name, link=contact.link)

    @staticmethod
    def _join(lead: str | None, text: str) -> str:
        return f"{lead}\n\n{text}" if lead else text


def _seeker(participant: Participant) -> Seeker:
    answers = participant.session.answers
    return Seeker(
        user_id=participant.user_id,
        language=participant.language,
        nationality=answers.get("nationality", "any"),
        region=answers.get("location"),
        needs=NEEDS_BY_OUTCOME.get(participant.outcome, ALL_NEEDS),
    )


def _org_language(org: Organisation) -> str:
    return org.languages[0]
