"""An in-memory store: for the terminal chat and for tests that do not exercise persistence."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence

from bot.storage.base import Loaded, Participant
from bot.storage.stats import Count


class MemoryStore:
    def __init__(self) -> None:
        self._participants: dict[int, Participant] = {}
        self._updates: set[int] = set()
        #: The anonymous counts, by (day, count).
        self.counts: Counter[tuple[dt.date, Count]] = Counter()

    async def load(self, user_id: int) -> Participant | None:
        return self._participants.get(user_id)

    async def load_for(self, user_id: int, *, update_id: int | None) -> Loaded:
        return Loaded(self._participants.get(user_id), update_id is not None and update_id in self._updates)

    async def save(
        self,
        participant: Participant,
        *,
        previous: Participant | None,
        update_id: int | None,
        now: dt.datetime,
        counts: Sequence[Count] = (),
    ) -> bool:
        if update_id is not None:
            if update_id in self._updates:
                return False
            self._updates.add(update_id)
        self._participants[participant.user_id] = participant
        await self.count(counts, now)
        return True

    async def count(self, counts: Sequence[Count], now: dt.datetime) -> None:
        self.counts.update((now.date(), c) for c in counts)

    async def processed(self, update_id: int) -> bool:
        return update_id in self._updates

    async def delete(self, user_id: int) -> bool:
        return self._participants.pop(user_id, None) is not None

    async def close(self) -> None:
        self._participants.clear()
