"""The weekly digest: the last 7 days' /stats summary, posted to the staff group once a week (STATS_DIGEST).

STATS_DIGEST = "mon 09:00" posts every Monday from 9:00 in OFFICE_TIMEZONE, in STAFF_LANGUAGE, in the group's
general topic. The post is an outbox row queued in the same transaction that marks the week as posted (the
`deployment` table, key `stats_digest`), so a restart, a second worker or a leader change never posts one week
twice, and a bot that was down at the hour posts as soon as it is back that same week. A week the bot was down
for entirely gets no digest. Only the leader runs it (bot.app). Same figures, same "<5" as /stats: no person in it.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from sqlalchemy import delete, insert, select

from bot.hours import DigestTime
from bot.i18n import Translator
from bot.insights import Insights, summary
from bot.jobs import in_rounds
from bot.outbox import Outbox
from bot.storage import SqlStore
from bot.storage.tables import deployment
from bot.texts import T

log = logging.getLogger(__name__)

KEY = "stats_digest"


class WeeklyDigest:
    def __init__(
        self,
        when: DigestTime,
        insights: Insights,
        store: SqlStore,
        outbox: Outbox,
        tr: Translator,
        *,
        chat_id: int,
        language: str,
        clock: Callable[[], dt.datetime],
    ) -> None:
        self.when = when
        self.insights = insights
        self.store = store
        self.outbox = outbox
        self.tr = tr
        self.chat_id = chat_id
        self.language = language
        self.clock = clock

    async def post_if_due(self) -> bool:
        """Queue this week's digest unless it is not due yet or was queued already; True if it was queued now."""
        now = self.clock()
        week = self.when.due(now)
        if week is None or await self._posted() == week:
            return False
        figures = await self.insights.figures("7d", "")
        text = "\n\n".join((self.tr.text(self.language, T.STATS_DIGEST), summary(figures, self.tr, self.language)))
        async with self.store.writing() as conn:
            # Checked again inside the write: another worker that led a moment ago may have posted meanwhile. Two
            # writes racing past this check both insert the key: the primary key lets one of them commit.
            if (await conn.execute(_posted_week)).scalar_one_or_none() == week:
                return False
            await conn.execute(delete(deployment).where(deployment.c.key == KEY))
            await conn.execute(insert(deployment).values(key=KEY, value=week, changed_by=0, changed_at=now))
            await self.outbox.put(self.chat_id, "text", {"text": text}, conn=conn)
        log.info("weekly digest queued", extra={"week": week})
        return True

    async def run(self, every: float) -> None:
        """Look every `every` seconds until cancelled; a failed look is logged and the next one comes."""
        await in_rounds(self.post_if_due, every, failed="weekly digest failed")

    async def _posted(self) -> str | None:
        async with self.store.engine.connect() as conn:
            return (await conn.execute(_posted_week)).scalar_one_or_none()


_posted_week = select(deployment.c.value).where(deployment.c.key == KEY)
