"""The directory and referrals in SQL (SQLite, and PostgreSQL when reachable): capacity holds under concurrency."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from types import MappingProxyType

import pytest
from sqlalchemy import delete

from bot.storage import Participant, SqlStore, open_store
from bot.storage.referrals import Referrals, ReferResult, Status, iso_week
from bot.storage.tables import answers, organisations, participants, processed_updates, referrals
from flows.directory import Organisation, parse_directory
from flows.engine import Session
from tests.directory import organisation
from tests.test_storage_contract import POSTGRES_URL, postgres_reachable

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
EXAMPLE = Path(__file__).resolve().parents[1] / "directory" / "example.yaml"


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlStore]:
    if request.param == "sqlite":
        backend = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'r.db'}")
    else:
        if not postgres_reachable():
            pytest.skip("no PostgreSQL on 127.0.0.1:5432")
        backend = await open_store(POSTGRES_URL)
        async with backend.engine.begin() as conn:
            for table in (referrals, organisations, answers, participants, processed_updates):
                await conn.execute(delete(table))
    yield backend
    await backend.close()


def org(org_id: str = "casa-ejemplo", capacity: int = 5, **changes: object) -> Organisation:
    fields: dict[str, object] = {"name": f"Casa {org_id} (ficticia)", "nationalities": ("any",), "verified": False}
    return organisation(org_id, weekly_capacity=capacity, **{**fields, **changes})


async def people(store: SqlStore, *user_ids: int) -> None:
    for user_id in user_ids:
        person = Participant(user_id, user_id, "es", NOW, Session("venezuela-2022", None, MappingProxyType({}), ()))
        await store.save(person, previous=None, update_id=None, now=NOW)


async def test_import_then_reimport(store: SqlStore) -> None:
    """Importing adds organisations; re-importing without one deactivates it (never deletes)."""
    directory = Referrals(store)
    example = parse_directory(EXAMPLE.read_text(encoding="utf-8"), "yaml")
    report = await directory.import_directory(example, NOW)
    assert (report.added, report.updated, report.deactivated) == (len(example), 0, 0)
    assert await directory.organisations() == sorted(example, key=lambda o: o.id)
    report = await directory.import_directory(example[1:], NOW)
    assert (report.added, report.updated, report.deactivated) == (0, len(example) - 1, 1)
    dropped = await directory.organisation(example[0].id)
    assert dropped is not None
    assert not dropped.active


async def test_capacity_is_never_exceeded_by_racing_referrals(store: SqlStore) -> None:
    """Twenty people racing for an organisation with three places: exactly three get in."""
    directory = Referrals(store)
    await directory.import_directory([org(capacity=3)], NOW)
    await people(store, *range(1, 21))
    results = await asyncio.gather(*(directory.refer(user_id, "casa-ejemplo", NOW) for user_id in range(1, 21)))
    outcomes = [result for result, _ in results]
    assert outcomes.count(ReferResult.CREATED) == 3
    assert outcomes.count(ReferResult.FULL) == 17
    assert (await directory.loads(iso_week(NOW.date())))["casa-ejemplo"] == 3


async def test_nobody_is_referred_twice_to_the_same_organisation(store: SqlStore) -> None:
    """A second Share to the same organisation is refused, even after a decline."""
    directory = Referrals(store)
    await directory.import_directory([org()], NOW)
    await people(store, 7)
    first, referral = await directory.refer(7, "casa-ejemplo", NOW)
    assert first is ReferResult.CREATED
    assert referral is not None
    await directory.settle(referral.id, Status.DECLINED, NOW)
    again, _ = await directory.refer(7, "casa-ejemplo", NOW)
    assert again is ReferResult.ALREADY
    assert await directory.referred_to(7) == {"casa-ejemplo"}


async def test_paused_organisation_takes_nobody(store: SqlStore) -> None:
    """A paused (inactive) organisation refuses new referrals."""
    directory = Referrals(store)
    await directory.import_directory([org()], NOW)
    await people(store, 7)
    assert await directory.change("casa-ejemplo", NOW, active=False)
    result, _ = await directory.refer(7, "casa-ejemplo", NOW)
    assert result is ReferResult.UNAVAILABLE


async def test_a_referral_is_settled_once(store: SqlStore) -> None:
    """Accept, then Decline (or a second Accept) changes nothing; only the person can withdraw theirs."""
    directory = Referrals(store)
    await directory.import_directory([org()], NOW)
    await people(store, 7, 8)
    _, referral = await directory.refer(7, "casa-ejemplo", NOW)
    assert referral is not None
    assert await directory.settle(referral.id, Status.WITHDRAWN, NOW, user_id=8) is None
    accepted = await directory.settle(referral.id, Status.ACCEPTED, NOW)
    assert accepted is not None
    assert accepted.status is Status.ACCEPTED
    assert await directory.settle(referral.id, Status.DECLINED, NOW) is None
    assert (await directory.listing(["accepted"]))[0].id == referral.id


async def test_declined_and_withdrawn_free_the_place(store: SqlStore) -> None:
    """Only pending and accepted referrals count against the week's capacity."""
    directory = Referrals(store)
    await directory.import_directory([org(capacity=1)], NOW)
    await people(store, 1, 2, 3)
    _, first = await directory.refer(1, "casa-ejemplo", NOW)
    assert first is not None
    assert (await directory.refer(2, "casa-ejemplo", NOW))[0] is ReferResult.FULL
    await directory.settle(first.id, Status.WITHDRAWN, NOW, user_id=1)
    assert (await directory.refer(3, "casa-ejemplo", NOW))[0] is ReferResult.CREATED


async def test_deleting_a_person_keeps_only_a_count(store: SqlStore) -> None:
    """After /delete the referral stays for the organisation's numbers, with no link to the person."""
    directory = Referrals(store)
    await directory.import_directory([org()], NOW)
    await people(store, 7)
    _, referral = await directory.refer(7, "casa-ejemplo", NOW)
    assert referral is not None
    await store.delete(7)
    kept = await directory.referral(referral.id)
    assert kept is not None
    assert kept.user_id is None
    assert (await directory.loads(iso_week(NOW.date())))["casa-ejemplo"] == 1
