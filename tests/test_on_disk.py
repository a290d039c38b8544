"""What the SQLite files hold after an erasure, byte for byte, and who can read the files the bot writes.

The erasure tests in test_erasure.py read the database back through SQL; these read the database file, its -wal
and its -shm as bytes, where a deleted row can outlive its deletion: in free space inside a page, or in an old
page image in the WAL. They look for a person's ids as decimal text (how JSON payloads and texts hold them) and
as SQLite stores an integer in a row, big-endian in 6 bytes or 8; the ids are large enough (over 2**40) that
SQLite uses the 6-byte form, so a chance match is implausible (about one in 2**48 at each offset). They look for
the texts of their answers and messages, which are ASCII, so UTF-8 and JSON's escaping write them the same.
They cannot see what the filesystem keeps of blocks a truncated WAL gave back, SQLite's temporary files (deleted
as soon as they are opened), or what the operating system and the disk keep: that is for encrypted storage.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import re
import sqlite3
import stat
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, update

from bot import directory_cli
from bot.config import Settings
from bot.outbox import Outbox
from bot.retention import Retention
from bot.storage import SqlStore, open_store
from bot.storage.sql import WAL_SIZE_LIMIT
from bot.storage.tables import outbox
from tests.test_erasure import KEEP, NOW, STAFF_CHAT, Clock, build_person, erasing, never_sent, setup_directory

ROOT = Path(__file__).resolve().parent.parent
#: Over 2**40 and under 2**47: SQLite writes them in 6 bytes, none of them zero.
GONE, KEPT = 123_456_789_012_345, 98_765_432_109_876


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """The umask most shells start with, so that only the code under test can make a file private."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def _secure_delete_off(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA secure_delete=OFF")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    """A SQLite store whose connections start with secure_delete off, as upstream SQLite builds do (Debian's
    turns it on by default), so that what the store turns on itself is what is tested."""
    sqlite = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'puente.db'}")
    event.listen(sqlite.engine.sync_engine, "connect", _secure_delete_off, insert=True)
    await sqlite.engine.dispose()  # the connections opened while migrating go, the next ones start with it off
    try:
        yield sqlite
    finally:
        await sqlite.close()


def database_file(store: SqlStore) -> Path:
    database = store.engine.url.database
    assert database is not None
    return Path(database)


def raw_traces(database: Path, ids: set[int], texts: set[str]) -> list[str]:
    """Every (file: needle) where the database file, its -wal or its -shm holds an id or a text as bytes."""
    found = []
    for suffix in ("", "-wal", "-shm"):
        path = database.with_name(database.name + suffix)
        data = path.read_bytes() if path.exists() else b""
        for person in sorted(ids):
            if re.search(rb"(?<!\d)%d(?!\d)" % person, data):
                found.append(f"{path.name}: {person} as text")
            found += [f"{path.name}: {person} in {n} bytes" for n in (6, 8) if person.to_bytes(n, "big") in data]
        found += [f"{path.name}: {text!r}" for text in sorted(texts) if text.encode() in data]
    return found


async def test_delete_leaves_no_byte_of_the_person_in_the_database_files(store: SqlStore) -> None:
    """After /delete's erasure, neither the database file nor its -wal nor its -shm holds the person's ids or the
    texts of their answers and messages; the other person's are found by the same search."""
    await setup_directory(store)
    gone = await build_person(store, GONE, GONE + 1, "Wilmarys")
    kept = await build_person(store, KEPT, KEPT + 1, "Yorbis")
    path = database_file(store)
    texts = {*gone.needles.texts, "Wilmarys"}
    before = raw_traces(path, set(gone.needles.ids), texts)
    assert any("in 6 bytes" in hit for hit in before), before
    assert any("as text" in hit for hit in before), before

    assert await store.delete(gone.user_id)

    assert raw_traces(path, set(gone.needles.ids), texts) == []
    assert raw_traces(path, set(kept.needles.ids), {*kept.needles.texts, "Yorbis"}), "the search sees what is there"
    assert path.with_name(path.name + "-wal").stat().st_size == 0


async def test_retention_purge_leaves_no_byte_of_what_it_erased(store: SqlStore) -> None:
    """After a retention round, the files hold nothing of the person it erased, nor the texts of the old sent
    outbox messages it dropped; a recent one is still there."""
    await setup_directory(store)
    old = await build_person(store, GONE, GONE + 1, "Antigua", at=NOW - dt.timedelta(days=91))
    box = Outbox(store, never_sent, now=Clock(NOW - dt.timedelta(days=91)))
    sent_long_ago = await box.put(STAFF_CHAT, "text", {"text": "Caso cerrado de Eulogia"})
    recent = await Outbox(store, never_sent, now=Clock(NOW - dt.timedelta(days=3))).put(
        STAFF_CHAT, "text", {"text": "Caso abierto de Gisela"}
    )
    async with store.writing() as conn:
        await conn.execute(update(outbox).where(outbox.c.id.in_([sent_long_ago, recent])).values(sent_at=NOW))
    path = database_file(store)
    assert raw_traces(path, set(), {"Eulogia"})

    purged = await Retention(store, erasing(store)[1], Clock(NOW), KEEP).purge()  # type: ignore[arg-type]

    assert (purged.people, purged.outbox_rows) == (1, 1)
    assert raw_traces(path, set(old.needles.ids), {*old.needles.texts, "Antigua", "Eulogia"}) == []
    assert raw_traces(path, set(), {"Gisela"})


async def test_a_checkpoint_blocked_by_a_reader_is_retried_at_the_next_purge(
    store: SqlStore, caplog: pytest.LogCaptureFixture
) -> None:
    """While a reader holds an old snapshot the erasure still succeeds, but the WAL cannot be emptied: a warning
    says so (without who), and the next retention round empties it."""
    await setup_directory(store)
    gone = await build_person(store, GONE, GONE + 1, "Wilmarys")
    path = database_file(store)
    reader = sqlite3.connect(path, isolation_level=None)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM participants").fetchone()
        caplog.set_level(logging.WARNING, logger="bot.storage.sql")

        assert await store.delete(gone.user_id)

        (warning,) = [r for r in caplog.records if r.name == "bot.storage.sql"]
        assert "readers in progress" in warning.getMessage()
        assert str(GONE) not in str(warning.__dict__)
        assert path.with_name(path.name + "-wal").stat().st_size > 0
        reader.execute("COMMIT")
    finally:
        reader.close()

    await Retention(store, erasing(store)[1], Clock(NOW), KEEP).purge()  # type: ignore[arg-type]

    assert raw_traces(path, set(gone.needles.ids), {*gone.needles.texts, "Wilmarys"}) == []
    assert path.with_name(path.name + "-wal").stat().st_size == 0


async def test_a_purge_cancelled_while_its_checkpoint_waits_stops(store: SqlStore) -> None:
    """Shutting down while a retention round waits for a reader to let the checkpoint through: the job ends there,
    rather than turning the cancellation into a failed round and sleeping until the next one (a shutdown that never
    ended), and the store goes on working."""
    await setup_directory(store)
    await build_person(store, GONE, GONE + 1, "Wilmarys")
    reader = sqlite3.connect(database_file(store), isolation_level=None)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM participants").fetchone()
        await build_person(store, GONE + 2, GONE + 3, "Yorbis")  # frames the reader's snapshot keeps in the WAL
        job = asyncio.create_task(Retention(store, erasing(store)[1], Clock(NOW), KEEP).run(every=3600))  # type: ignore[arg-type]
        await asyncio.sleep(0.3)  # in the checkpoint, waiting (up to a second) for the reader
        job.cancel()
        await asyncio.wait({job}, timeout=5)
        assert job.cancelled()
    finally:
        reader.close()
    assert await store.load(GONE + 2) is not None
    assert await store.checkpoint()


async def test_every_connection_zeroes_deletions_and_bounds_the_wal(store: SqlStore) -> None:
    """Every connection the store opens runs with secure_delete on and the WAL size limit set."""
    async with store.engine.connect() as conn:
        secure = (await conn.exec_driver_sql("PRAGMA secure_delete")).scalar_one()
        limit = (await conn.exec_driver_sql("PRAGMA journal_size_limit")).scalar_one()
    assert (secure, limit) == (1, WAL_SIZE_LIMIT)


# ---------------------------------------------------------------------------------------------- file modes


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_a_new_data_folder_and_the_database_files_are_private(tmp_path: Path, loose_umask: None) -> None:
    """Under a umask of 022, the store creates its folder 0700, and the database, -wal and -shm 0600."""
    folder = tmp_path / "data"
    store = await open_store(f"sqlite+aiosqlite:///{folder / 'puente.db'}")
    try:
        await setup_directory(store)
        assert mode(folder) == 0o700
        for name in ("puente.db", "puente.db-wal", "puente.db-shm"):
            assert mode(folder / name) == 0o600, name
    finally:
        await store.close()


async def test_database_files_left_readable_are_tightened(
    tmp_path: Path, loose_umask: None, caplog: pytest.LogCaptureFixture
) -> None:
    """Database files an earlier run left readable by others are made 0600; an existing folder keeps the mode the
    operator gave it, with a warning that others can open it."""
    folder = tmp_path / "data"
    folder.mkdir(mode=0o755)
    url = f"sqlite+aiosqlite:///{folder / 'puente.db'}"
    await (await open_store(url)).close()
    sqlite3.connect(folder / "puente.db").close()  # a plain connection to make sure side files exist
    for name in ("puente.db", "puente.db-wal", "puente.db-shm"):
        (folder / name).touch()
        (folder / name).chmod(0o644)
    caplog.set_level(logging.WARNING, logger="bot.storage.sql")

    store = await open_store(url)
    try:
        for name in ("puente.db", "puente.db-wal", "puente.db-shm"):
            assert mode(folder / name) == 0o600, name
        assert mode(folder) == 0o755
        assert any("database folder" in r.getMessage() for r in caplog.records)
    finally:
        await store.close()


async def test_exports_are_private_whatever_the_umask(tmp_path: Path, loose_umask: None) -> None:
    """`orgs export` and `referrals export` write 0600 files even under a umask of 022, over an existing
    readable file too."""
    settings = Settings(_env_file=None, database_url=f"sqlite+aiosqlite:///{tmp_path / 'p.db'}")
    existing = tmp_path / "referrals.csv"
    existing.write_text("old\n")
    existing.chmod(0o644)
    # The commands run their own event loop (asyncio.run): in a thread, away from the test's.
    assert await asyncio.to_thread(directory_cli.export_referrals, settings, existing) == 0
    assert await asyncio.to_thread(directory_cli.export_file, settings, tmp_path / "orgs.csv") == 0
    assert await asyncio.to_thread(directory_cli.export_file, settings, tmp_path / "orgs.yaml") == 0
    for name in ("referrals.csv", "orgs.csv", "orgs.yaml"):
        assert mode(tmp_path / name) == 0o600, name
    assert existing.read_text().startswith("id,")  # written, not just chmodded


def test_the_command_line_creates_only_private_files(tmp_path: Path) -> None:
    """`python -m bot` started with a umask of 022 sets 077: folders it creates on the way to the database are
    0700 as well as its own, and the export 0600."""
    env = {k: v for k, v in os.environ.items() if k not in {"BOT_TOKEN", "TELEGRAM_API_URL", "DATABASE_URL"}}
    env["DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'var' / 'puente' / 'data' / 'p.db'}"
    exported = tmp_path / "out.csv"
    done = subprocess.run(
        [sys.executable, "-m", "bot", "referrals", "export", str(exported)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        umask=0o022,
    )
    assert done.returncode == 0, done.stderr
    assert mode(exported) == 0o600
    for folder in ("var", "var/puente", "var/puente/data"):
        assert mode(tmp_path / folder) == 0o700, folder
    assert mode(tmp_path / "var" / "puente" / "data" / "p.db") == 0o600
