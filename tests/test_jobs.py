"""bot.jobs: a background job goes on past a failed round, and stops when cancelled, even if the cancellation
reaches it as another error."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.jobs import in_rounds


async def test_a_failed_round_is_logged_and_the_next_one_comes(caplog: pytest.LogCaptureFixture) -> None:
    rounds: list[int] = []

    async def flaky() -> None:
        rounds.append(len(rounds))
        if len(rounds) == 1:
            raise RuntimeError("the database hiccuped")

    job = asyncio.create_task(in_rounds(flaky, 0.01, failed="test round failed"))
    async with asyncio.timeout(2):
        while len(rounds) < 3:  # noqa: ASYNC110 (the job's own progress)
            await asyncio.sleep(0.005)
    job.cancel()
    await asyncio.wait({job})
    assert job.cancelled()
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.getMessage() == "test round failed"
    assert record.exc_info is not None


async def test_a_round_failing_because_it_was_cancelled_ends_the_job(caplog: pytest.LogCaptureFixture) -> None:
    started = asyncio.Event()

    async def round_() -> None:
        started.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            raise RuntimeError("what a database driver made of the cancellation") from None

    job = asyncio.create_task(in_rounds(round_, 3600, failed="test round failed"))
    await started.wait()
    job.cancel()
    await asyncio.wait({job}, timeout=2)
    assert job.cancelled()  # not asleep until the next round, an hour away
    assert [r for r in caplog.records if r.levelno == logging.ERROR] == []
