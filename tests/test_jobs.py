"""bot.jobs: a background job stops when cancelled, even if the cancellation reaches it as another error."""

from __future__ import annotations

import asyncio

from bot.jobs import stop_if_cancelled


async def _job(failed: list[str]) -> None:
    """A job loop's shape: a round, its failure logged (here: noted), a pause, the next round."""
    while True:
        try:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                raise RuntimeError("what a database driver made of the cancellation") from None
        except Exception as exc:
            stop_if_cancelled()
            failed.append(str(exc))
        await asyncio.sleep(3600)


async def test_a_round_failing_because_it_was_cancelled_ends_the_job() -> None:
    failed: list[str] = []
    job = asyncio.create_task(_job(failed))
    await asyncio.sleep(0.01)
    job.cancel()
    await asyncio.wait({job}, timeout=2)
    assert job.cancelled()
    assert failed == []


async def test_a_round_failing_on_its_own_goes_on() -> None:
    async def failing() -> str:
        try:
            raise RuntimeError("the database hiccuped")
        except RuntimeError:
            stop_if_cancelled()
            return "logged, next round"

    assert await failing() == "logged, next round"
