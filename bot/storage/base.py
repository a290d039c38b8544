"""The storage contract every backend meets (tests/test_storage_contract.py runs against each)."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from bot.storage.stats import Count
from flows.engine import Session


@dataclass(frozen=True)
class Participant:
    """A person who accepted the privacy notice: only what the questionnaire needs, no name, no messages."""

    user_id: int
    chat_id: int
    language: str
    consented_at: dt.datetime
    session: Session
    #: The result once finished (for later segmenting), else None.
    outcome: str | None = None
    #: Which of their milestones the anonymous counts already hold (bot.insights.tally): counted once each.
    counted: frozenset[str] = frozenset()


class Erasure(enum.StrEnum):
    """Why a person's data is erased: they asked (/delete), or they were inactive past the retention period."""

    ASKED = "asked"
    INACTIVE = "inactive"


@dataclass(frozen=True)
class Loaded:
    participant: Participant | None
    #: The update being handled was already applied (Telegram delivered it again): change nothing.
    already_processed: bool


class Store(Protocol):
    async def load(self, user_id: int) -> Participant | None:
        """The participant, or None if they never consented or were deleted."""

    async def load_for(self, user_id: int, *, update_id: int | None) -> Loaded:
        """The participant and whether this update was already applied, in one round trip."""

    async def save(
        self,
        participant: Participant,
        *,
        previous: Participant | None,
        update_id: int | None,
        now: dt.datetime,
        counts: Sequence[Count] = (),
    ) -> bool:
        """Write the participant, their answers, the update id and `counts` in one transaction.

        `previous` is the participant as loaded for this update (None if new): the store writes only what
        changed. Returns False, writing nothing, when `update_id` was already processed.
        """

    async def count(self, counts: Sequence[Count], now: dt.datetime) -> None:
        """Add to the anonymous counts on their own (what happens before anyone is stored)."""

    async def processed(self, update_id: int) -> bool:
        """Whether an update was already applied (Telegram may deliver one twice)."""

    async def delete(self, user_id: int) -> bool:
        """Erase the participant and everything stored about them, in one transaction. False when there was nothing."""

    async def close(self) -> None: ...
