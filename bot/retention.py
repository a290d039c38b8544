"""Keeping as little as possible for as short as possible: people who went quiet are forgotten, on a schedule.

Someone inactive for longer than the retention period (nothing saved in their questionnaire and no conversation
with staff moving since) is erased exactly as /delete erases them. What is left of everyone else ages out too:
outbox rows already sent or refused (they hold message texts and chat ids) after the same period, and the ids of
applied updates after 24 hours. Each round ends with the SQLite WAL emptied (`SqlStore.checkpoint`), so what
was deleted leaves no copy in it. Purges are logged as counts, never with who.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.jobs import in_rounds
from bot.storage import Erasure, Participant, SqlStore
from bot.storage.sql import UPDATE_MEMORY

log = logging.getLogger(__name__)

Erase = Callable[[Participant, Erasure], Awaitable[bool]]


@dataclass(frozen=True)
class Purged:
    people: int
    outbox_rows: int
    update_ids: int
    #: People whose erasure failed this round (tried again next round).
    failed: int = 0


class Retention:
    def __init__(self, store: SqlStore, erase: Erase, clock: Callable[[], dt.datetime], keep: dt.timedelta) -> None:
        self.store = store
        self.erase = erase
        self.clock = clock
        self.keep = keep

    async def purge(self) -> Purged:
        """One round: erase the people inactive for longer than `keep`, then the old bookkeeping."""
        now = self.clock()
        cutoff = now - self.keep
        people = failed = 0
        for user_id in await self.store.inactive(cutoff):
            participant = await self.store.load(user_id)
            if participant is None:
                continue  # erased meanwhile (/delete)
            try:
                if await self.erase(participant, Erasure.INACTIVE):
                    people += 1
            except Exception:
                # One person's failure (Telegram unreachable while telling their organisation) must not keep
                # everyone else's data: they are tried again next round. No id in the line.
                failed += 1
                log.exception("retention: one erasure failed")
        outbox_rows = await self.store.forget_outbox(cutoff)
        update_ids = await self.store.forget_updates(now - UPDATE_MEMORY)
        # Every round, even an empty one: it also retries a checkpoint an erasure found busy.
        await self.store.checkpoint()
        purged = Purged(people, outbox_rows, update_ids, failed)
        log.info(
            "retention purge",
            extra={
                "people": people,
                "outbox_rows": outbox_rows,
                "update_ids": update_ids,
                "failed": failed,
                "older_than_days": self.keep / dt.timedelta(days=1),
            },
        )
        return purged

    async def run(self, every: float) -> None:
        """Purge now, then every `every` seconds, until cancelled; a failed round is logged and the next one comes."""
        await in_rounds(self.purge, every, failed="retention purge failed")
