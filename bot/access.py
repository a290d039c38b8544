"""The right of access: /mydata shows a person everything the bot keeps about them, in their own language.

It reads the rows /delete erases and says what they hold in plain words: the language, when they accepted the
privacy notice, their answers and result, their requests to organisations, a conversation with staff, whether
they get program news and how many reached them. Only bookkeeping is left out (message ids, messages waiting to be
delivered). No name, username or phone number is kept, so none is shown.
"""

from __future__ import annotations

from bot.i18n import Translator
from bot.outgoing import READABLE, Outgoing, split_text
from bot.render import Renderer
from bot.storage import Participant
from bot.storage.broadcasts import Broadcasts
from bot.storage.referrals import Referrals
from bot.storage.tickets import Tickets
from bot.texts import T


class Access:
    def __init__(
        self,
        translator: Translator,
        renderer: Renderer,
        retention_days: int,
        *,
        referrals: Referrals | None = None,
        tickets: Tickets | None = None,
        broadcasts: Broadcasts | None = None,
    ) -> None:
        self.tr = translator
        self.render = renderer
        self.retention_days = retention_days
        self.referrals = referrals
        self.tickets = tickets
        self.broadcasts = broadcasts

    async def screen(self, participant: Participant) -> tuple[Outgoing, ...]:
        """Everything kept about the person, in as many short messages as it takes (cut between paragraphs)."""
        return tuple(Outgoing(piece) for piece in split_text(await self.text(participant), READABLE))

    async def text(self, participant: Participant) -> str:
        lang = participant.language
        lines = [
            self.tr.text(lang, T.MYDATA_TITLE),
            "",
            self.tr.text(lang, T.MYDATA_LANGUAGE, language=self.tr.text(lang, T.LANG_NAME)),
            self.tr.text(lang, T.MYDATA_SINCE, date=self.tr.date(lang, participant.consented_at.date())),
        ]
        answers = self.render.answers(lang, participant.session)
        heading = T.MYDATA_ANSWERS if answers else T.MYDATA_NO_ANSWERS
        lines += ["", self.tr.text(lang, heading), *answers]
        if participant.outcome is not None:
            result = self.tr.text(lang, f"result.label.{participant.outcome}")
            lines.append(self.tr.text(lang, T.MYDATA_RESULT, result=result))
        lines += await self._requests(participant)
        if self.tickets is not None and await self.tickets.open_ticket_of(participant.user_id) is not None:
            lines += ["", self.tr.text(lang, T.MYDATA_TALKING)]
        if self.broadcasts is not None:
            stopped = await self.broadcasts.stopped(participant.user_id)
            lines += ["", self.tr.text(lang, T.MYDATA_NEWS_OFF if stopped else T.MYDATA_NEWS_ON)]
            if received := await self.broadcasts.received(participant.user_id):
                lines.append(self.tr.text(lang, T.MYDATA_NEWS_RECEIVED, count=received))
        lines += ["", self.tr.text(lang, T.MYDATA_NOTHING_ELSE, days=self.retention_days)]
        return "\n".join(lines)

    async def _requests(self, participant: Participant) -> list[str]:
        """One line per organisation they asked: its name and where the request stands."""
        if self.referrals is None:
            return []
        lang = participant.language
        lines = []
        for referral in await self.referrals.of_person(participant.user_id):
            org = await self.referrals.organisation(referral.org_id)
            status = self.tr.text(lang, f"bc.referral.{referral.status.value}")
            lines.append(f"• {org.name if org else '—'}: {status}")
        return ["", self.tr.text(lang, T.MYDATA_REQUESTS), *lines] if lines else []
