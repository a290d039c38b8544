"""The update middlewares that keep order and let shutdown be clean, driven directly (no Telegram needed)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.telegram.middlewares import Handling, OnePersonAtATime


async def test_finish_waits_for_the_updates_being_handled() -> None:
    """Shutdown waits for an update half-way through its handler, which completes (its reply is not lost)."""
    handling = Handling()
    started, release = asyncio.Event(), asyncio.Event()
    done: list[str] = []

    async def handler(event: Any, data: dict[str, Any]) -> str:
        started.set()
        await release.wait()
        done.append(event)
        return "handled"

    update = asyncio.create_task(handling(handler, "update 1", {}))  # type: ignore[arg-type]
    await started.wait()
    finishing = asyncio.create_task(handling.finish(grace=5))
    await asyncio.sleep(0.05)
    assert not finishing.done()  # still waiting for the update
    release.set()
    await finishing
    assert done == ["update 1"]
    assert await update == "handled"


async def test_finish_cancels_what_outlives_the_grace_period(caplog: pytest.LogCaptureFixture) -> None:
    """An update stuck past the grace period is cancelled, and the count (only) is logged."""
    handling = Handling()
    started = asyncio.Event()

    async def stuck(event: Any, data: dict[str, Any]) -> None:
        started.set()
        await asyncio.Event().wait()

    update = asyncio.create_task(handling(stuck, "update 1", {}))  # type: ignore[arg-type]
    await started.wait()
    await handling.finish(grace=0.05)
    assert update.cancelled()
    assert [r.getMessage() for r in caplog.records] == ["updates cancelled at shutdown"]
    await handling.finish(grace=0.05)  # nothing left: returns at once


async def test_one_person_at_a_time_keeps_their_order_and_lets_others_through() -> None:
    """Two updates of one person run one after the other, in arrival order; another person's does not wait."""
    in_order = OnePersonAtATime()
    log: list[str] = []
    gate = asyncio.Event()

    async def slow(name: str) -> None:
        log.append(f"{name} starts")
        await gate.wait()
        log.append(f"{name} ends")

    async def quick(name: str) -> None:
        log.append(name)

    first = asyncio.create_task(in_order.run(1, lambda: slow("ana 1")))
    second = asyncio.create_task(in_order.run(1, lambda: quick("ana 2")))
    other = asyncio.create_task(in_order.run(2, lambda: quick("ben 1")))
    await other
    assert log == ["ana 1 starts", "ben 1"]
    gate.set()
    await asyncio.gather(first, second)
    assert log == ["ana 1 starts", "ben 1", "ana 1 ends", "ana 2"]
