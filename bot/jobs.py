"""What the bot's background jobs (retention, reminders, the digest, broadcasts) share about failing and stopping."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


async def in_rounds(round_: Callable[[], Awaitable[object]], every: float, *, failed: str) -> None:
    """`round_` now, then every `every` seconds, until cancelled. A failed round is logged (as `failed`, with its
    traceback) and the next one comes; a cancellation always ends the job (`stop_if_cancelled`)."""
    while True:
        try:
            await round_()
        except Exception:
            stop_if_cancelled()
            log.exception(failed)
        await asyncio.sleep(every)


def stop_if_cancelled() -> None:
    """Call first in a job loop's `except Exception:`. While the job's task is being cancelled (shutdown, a lost
    lease), the error caught may be that cancellation turned into another on its way out: SQLAlchemy, cancelled
    mid-statement, fails the next statement with `PendingRollbackError`. Logging it and sleeping until the next round
    would swallow the cancellation, and whoever waits for the job (a shutdown) would wait for ever; this raises
    `CancelledError` instead."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
