"""The SQL backend: SQLite (aiosqlite) by default, PostgreSQL (asyncpg) by changing DATABASE_URL."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    String,
    and_,
    bindparam,
    cast,
    delete,
    event,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from bot.storage import stats
from bot.storage.base import Loaded, Participant
from bot.storage.lane import DriverConnection, SqliteThread
from bot.storage.stats import Count
from bot.storage.tables import (
    answers,
    broadcast_optouts,
    broadcast_recipients,
    broadcasts,
    outbox,
    participants,
    processed_updates,
    referrals,
    relayed,
    tickets,
)
from flows.engine import Session

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
#: How long applied update ids are remembered; Telegram keeps unconfirmed updates for 24 hours.
UPDATE_MEMORY = dt.timedelta(hours=24)
#: The WAL is cut back to this size whenever it starts over after a checkpoint, so old page images (rows since
#: deleted among them) do not linger in a file that only ever grows.
WAL_SIZE_LIMIT = 1 << 20
#: How long a writer waits for another (another process: this one queues its own writers).
BUSY_TIMEOUT_MS = 5000
#: How long a checkpoint waits for readers to finish before it gives up until the next erasure or purge.
CHECKPOINT_WAIT_MS = 1000
#: SQLite's side files; it creates them with the database file's mode.
SIDE_FILES = ("-wal", "-shm", "-journal")

log = logging.getLogger(__name__)
_T = TypeVar("_T")


#: The PostgreSQL advisory lock that workers starting at once take in turn to migrate (any fixed number will do).
MIGRATION_LOCK = 0x7075656E7465  # "puente"


def migrate(connection: Connection) -> None:
    """Bring the schema to the newest revision (idempotent; run at every start).

    On PostgreSQL several workers may start at once: each waits for a transaction-scoped advisory lock, so one
    migrates and the others find the schema already at head. SQLite's write lock does the same there.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def open_store(url: str) -> SqlStore:
    """Connect, create the SQLite folder and files if needed (readable by this user only), and migrate."""
    parsed = make_url(url)
    is_sqlite = parsed.get_backend_name() == "sqlite"
    if is_sqlite and parsed.database and parsed.database != ":memory:":
        _private_files(Path(parsed.database))
    engine = create_async_engine(url, pool_pre_ping=not is_sqlite)
    if is_sqlite:
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    async with engine.begin() as conn:
        await conn.run_sync(migrate)
    on_disk = parsed.database if is_sqlite and parsed.database not in (None, "", ":memory:") else None
    lane = SqliteThread(on_disk, _sqlite_pragmas) if on_disk else None
    return SqlStore(engine, single_writer=is_sqlite, lane=lane)


def _private_files(database: Path) -> None:
    """The database's folder 0700 when it is created here, the database and its side files 0600.

    An existing folder keeps its mode (the operator chose it, perhaps for a backup user) but a warning says when
    others can list it. The database file is created here, before SQLite opens it, so that SQLite gives the -wal
    and -shm files it creates the same 0600; files left by an earlier run are tightened.
    """
    folder = database.parent
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)  # parents it creates follow the umask (0077 in the bot)
    if folder.stat().st_mode & 0o077:
        log.warning("other users can open the database folder: chmod 700 it", extra={"folder": str(folder)})
    # Only when missing: closing a descriptor of a database this process has open would drop SQLite's locks.
    with contextlib.suppress(FileExistsError):
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for path in (database, *(database.with_name(database.name + suffix) for suffix in SIDE_FILES)):
        try:
            if path.stat().st_mode & 0o077:
                path.chmod(0o600)
        except FileNotFoundError:
            continue
        except PermissionError:  # another user's file: theirs to change
            log.warning("other users can read a database file: chmod 600 it", extra={"file": path.name})


def _sqlite_pragmas(dbapi_connection: Any, _record: Any = None) -> None:
    # WAL survives a killed process with every committed transaction; foreign keys make deletes cascade.
    # secure_delete zeroes what is deleted instead of leaving it in free pages (the default of some builds only);
    # the WAL keeps old page images until SqlStore.checkpoint empties it, and is cut back after other checkpoints.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
    cursor.close()


# The hot path's statements, built once (a tap only binds values).
_SEEN = select(processed_updates.c.update_id).where(processed_updates.c.update_id == bindparam("update_id"))
_PERSON = select(participants).where(participants.c.user_id == bindparam("user_id"))
_ANSWERED = (
    select(answers.c.question_id, answers.c.option_id)
    .where(answers.c.user_id == bindparam("user_id"))
    .order_by(answers.c.position)
)
_MARK_SEEN = insert(processed_updates)
_NEW_PERSON = insert(participants)
_PERSON_FIELDS = ("chat_id", "language", "consented_at", "program_id", "node", "outcome", "updated_at", "counted")
_UPDATE_PERSON = (
    update(participants)
    .where(participants.c.user_id == bindparam("b_user_id"))
    .values({field: bindparam(f"b_{field}") for field in _PERSON_FIELDS})
)
_ADD_ANSWERS = insert(answers)
_DROP_ANSWER = delete(answers).where(
    answers.c.user_id == bindparam("user_id"), answers.c.question_id == bindparam("question_id")
)
_MOVE_ANSWER = (
    update(answers)
    .where(answers.c.user_id == bindparam("b_user_id"), answers.c.question_id == bindparam("b_question_id"))
    .values(option_id=bindparam("b_option_id"), position=bindparam("b_position"), answered_at=bindparam("b_at"))
)


def _load(conn: Connection | DriverConnection, user_id: int, update_id: int | None) -> Loaded:
    seen = update_id is not None and conn.execute(_SEEN, {"update_id": update_id}).first() is not None
    row = conn.execute(_PERSON, {"user_id": user_id}).first()
    if row is None:
        return Loaded(None, already_processed=seen)
    answered = conn.execute(_ANSWERED, {"user_id": user_id}).all()
    return Loaded(_participant(row, [(q, o) for q, o in answered]), already_processed=seen)


def _save(
    conn: Connection | DriverConnection,
    participant: Participant,
    previous: Participant | None,
    update_id: int | None,
    now: dt.datetime,
    counts: Sequence[Count],
) -> None:
    session = participant.session
    fields = {
        "chat_id": participant.chat_id,
        "language": participant.language,
        "consented_at": participant.consented_at,
        "program_id": session.program_id,
        "node": session.node,
        "outcome": participant.outcome,
        "updated_at": now,
        "counted": " ".join(sorted(participant.counted)) or None,
    }
    if update_id is not None:
        conn.execute(_MARK_SEEN, {"update_id": update_id, "processed_at": now})
    if previous is None:
        conn.execute(_NEW_PERSON, {"user_id": participant.user_id, **fields})
    else:
        conn.execute(_UPDATE_PERSON, {"b_user_id": participant.user_id, **{f"b_{k}": v for k, v in fields.items()}})
    _write_answers(conn, participant.user_id, previous, session, now)
    stats.record(conn, now.date(), counts)


def _write_answers(
    conn: Connection | DriverConnection, user_id: int, previous: Participant | None, session: Session, now: dt.datetime
) -> None:
    """Write the difference between the answers as loaded and as they are now."""
    before = previous.session if previous is not None else None
    stored = {q: (before.answers[q], p) for p, q in enumerate(before.history)} if before else {}
    wanted = {q: (session.answers[q], p) for p, q in enumerate(session.history)}
    gone = [q for q in stored if q not in wanted]
    if gone:
        conn.execute(_DROP_ANSWER, [{"user_id": user_id, "question_id": q} for q in gone])
    fresh = [
        {"user_id": user_id, "question_id": q, "option_id": o, "position": p, "answered_at": now}
        for q, (o, p) in wanted.items()
        if q not in stored
    ]
    if fresh:
        conn.execute(_ADD_ANSWERS, fresh)
    moved = [
        {"b_user_id": user_id, "b_question_id": q, "b_option_id": o, "b_position": p, "b_at": now}
        for q, (o, p) in wanted.items()
        if q in stored and stored[q] != (o, p)
    ]
    if moved:
        conn.execute(_MOVE_ANSWER, moved)


class SqlStore:
    def __init__(self, engine: AsyncEngine, *, single_writer: bool = False, lane: SqliteThread | None = None) -> None:
        self.engine = engine
        #: SQLite on disk: the hot path's transactions, one thread hop each (PostgreSQL runs them on `engine`).
        self._lane = lane
        self._saves = 0
        # SQLite takes one writer at a time and makes the others sleep-and-retry (busy_timeout), which under
        # load costs far more than queueing writes here. PostgreSQL needs no such thing.
        self._write_lock: asyncio.Lock | contextlib.nullcontext[None] = (
            asyncio.Lock() if single_writer else contextlib.nullcontext()
        )

    @contextlib.asynccontextmanager
    async def writing(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction, queued behind other writers on SQLite."""
        async with self._write_lock, self.engine.begin() as conn:
            yield conn

    async def load(self, user_id: int) -> Participant | None:
        return (await self.load_for(user_id, update_id=None)).participant

    async def load_for(self, user_id: int, *, update_id: int | None) -> Loaded:
        if self._lane is not None:
            return await self._lane.read(lambda conn: _load(conn, user_id, update_id))
        async with self.engine.connect() as conn:
            return await conn.run_sync(_load, user_id, update_id)

    async def everyone(self) -> list[Participant]:
        """Every participant with their answers (for re-judging all results when the program changes)."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(participants).order_by(participants.c.user_id))).all()
            answered = (
                await conn.execute(
                    select(answers.c.user_id, answers.c.question_id, answers.c.option_id).order_by(
                        answers.c.user_id, answers.c.position
                    )
                )
            ).all()
        by_person: dict[int, list[tuple[str, str]]] = {}
        for user_id, question_id, option_id in answered:
            by_person.setdefault(user_id, []).append((question_id, option_id))
        return [_participant(row, by_person.get(row.user_id, [])) for row in rows]

    async def save(
        self,
        participant: Participant,
        *,
        previous: Participant | None,
        update_id: int | None,
        now: dt.datetime,
        counts: Sequence[Count] = (),
    ) -> bool:
        """The session, its answers, the update id and the counts in one transaction, committed before this
        returns."""
        try:
            async with self._write_lock:
                if self._lane is not None:
                    await self._lane.write(lambda conn: _save(conn, participant, previous, update_id, now, counts))
                else:
                    async with self.engine.begin() as conn:
                        await conn.run_sync(_save, participant, previous, update_id, now, counts)
        except IntegrityError:
            if update_id is not None and await self.processed(update_id):
                return False
            raise
        self._saves += 1
        if self._saves % 1000 == 0:
            await self.forget_updates(now - UPDATE_MEMORY)
        return True

    async def count(self, counts: Sequence[Count], now: dt.datetime) -> None:
        """Anonymous counts on their own: taps before the privacy notice, when nothing else is written."""
        if counts:
            async with self.writing() as conn:
                await conn.run_sync(stats.record, now.date(), counts)

    async def menu_shown(self, user_id: int, menu: str) -> None:
        """Their chat now shows command menu `menu` ("es:1a2b3c4d"); nothing happens for someone not stored."""
        async with self.writing() as conn:
            await conn.execute(update(participants).where(participants.c.user_id == user_id).values(menu=menu))

    async def stale_menus(self, wanted: Mapping[str, str]) -> list[tuple[int, int, str]]:
        """(user id, chat id, language) of everyone whose chat does not show `wanted[language]`: never set, set
        in a language they have since left, or of an older version of the commands."""
        current = or_(
            *(and_(participants.c.language == lang, participants.c.menu == menu) for lang, menu in wanted.items())
        )
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(participants.c.user_id, participants.c.chat_id, participants.c.language)
                .where(or_(participants.c.menu.is_(None), ~current))
                .order_by(participants.c.user_id)
            )
            return [(row.user_id, row.chat_id, row.language) for row in rows]

    async def processed(self, update_id: int) -> bool:
        async with self.engine.connect() as conn:
            found = await conn.execute(
                select(processed_updates.c.update_id).where(processed_updates.c.update_id == update_id)
            )
            return found.first() is not None

    async def delete(self, user_id: int) -> bool:
        """Erase everything about the person in one transaction; False when they had no profile.

        Their profile and answers; their tickets with the pairs of relayed message ids; their broadcast rows and
        opt-out, and their id in a broadcast's list of people (a program switch's "those affected"); every outbox
        row that concerns them: messages queued or sent to their chat, copies of their messages into the staff
        group, and whatever was posted in their tickets' topics (the card with their answers). Referrals stay as
        counts for the organisations, with nothing pointing back at the person: no user id, and not the card
        either (it quotes their contact and answers in the intake chat).
        Foreign keys would cascade most of this; it is spelled out so no backend setting can leave a row behind.
        """
        async with self.writing() as conn:
            chat_id = (
                await conn.execute(select(participants.c.chat_id).where(participants.c.user_id == user_id))
            ).scalar_one_or_none()
            chats = {user_id} if chat_id is None else {user_id, chat_id}  # a private chat's id is the user's
            their_tickets = (
                await conn.execute(select(tickets.c.id, tickets.c.thread_id).where(tickets.c.user_id == user_id))
            ).all()
            ticket_ids = [t.id for t in their_tickets]
            threads = {t.thread_id for t in their_tickets if t.thread_id is not None}
            await conn.execute(delete(outbox).where(_concerning(chats, ticket_ids, threads)))
            if ticket_ids:
                await conn.execute(delete(relayed).where(relayed.c.ticket_id.in_(ticket_ids)))
            await conn.execute(delete(tickets).where(tickets.c.user_id == user_id))
            await conn.execute(
                update(referrals)
                .where(referrals.c.user_id == user_id)
                .values(user_id=None, card_chat_id=None, card_message_id=None, notice_message_id=None)
            )
            await conn.execute(delete(broadcast_recipients).where(broadcast_recipients.c.user_id == user_id))
            await conn.execute(delete(broadcast_optouts).where(broadcast_optouts.c.user_id == user_id))
            await _drop_from_audiences(conn, user_id)
            await conn.execute(delete(answers).where(answers.c.user_id == user_id))
            removed = await conn.execute(delete(participants).where(participants.c.user_id == user_id))
        await self.checkpoint()
        return bool(removed.rowcount)

    async def inactive(self, before: dt.datetime) -> list[int]:
        """People who have done nothing since `before`: their questionnaire was last saved earlier, and no ticket
        of theirs moved since (a conversation with staff goes on without touching the questionnaire)."""
        talking = (
            select(tickets.c.id)
            .where(tickets.c.user_id == participants.c.user_id, tickets.c.updated_at >= before)
            .exists()
        )
        async with self.engine.connect() as conn:
            found = await conn.execute(
                select(participants.c.user_id)
                .where(participants.c.updated_at < before, ~talking)
                .order_by(participants.c.updated_at)
            )
            return list(found.scalars())

    async def forget_outbox(self, before: dt.datetime) -> int:
        """Drop outbox rows queued before `before` that are done with (sent, or failed for good). Returns how many."""
        async with self.writing() as conn:
            removed = await conn.execute(
                delete(outbox).where(
                    outbox.c.created_at < before, or_(outbox.c.sent_at.is_not(None), outbox.c.failed.is_not(None))
                )
            )
        return int(removed.rowcount or 0)

    async def forget_updates(self, before: dt.datetime) -> int:
        """Drop the ids of updates applied before `before` (Telegram redelivers for 24 hours at most)."""
        async with self.writing() as conn:
            removed = await conn.execute(delete(processed_updates).where(processed_updates.c.processed_at < before))
        return int(removed.rowcount or 0)

    async def checkpoint(self) -> bool:
        """On SQLite, copy the WAL into the database file and truncate it to nothing, so that rows just deleted
        leave no old page image behind (secure_delete has zeroed them in the database file). Run after an erasure
        or a purge has committed. True when the WAL is empty, or there is none (PostgreSQL).

        Readers still on an older snapshot keep the WAL from being truncated: after waiting CHECKPOINT_WAIT_MS for
        them, this logs a warning and returns False, and the next erasure or retention round (hourly) tries again.
        """
        if self.engine.dialect.name != "sqlite":
            return True
        try:
            # Under the write lock, so none of this process's writers is made to wait on SQLite's busy handler;
            # in autocommit, since a checkpoint cannot run inside a transaction.
            async with self._write_lock, self.engine.connect() as conn:
                autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await autocommit.exec_driver_sql(f"PRAGMA busy_timeout={CHECKPOINT_WAIT_MS}")
                try:
                    checkpointed = await autocommit.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                    busy, frames, copied = tuple(checkpointed.one())
                except BaseException:
                    # Failed, or cancelled mid-statement (then no statement runs on it any more): the connection
                    # keeps the short busy_timeout, so it is thrown away rather than pooled, and the error (the
                    # cancellation above all) goes on as it was.
                    await conn.invalidate()
                    raise
                await autocommit.exec_driver_sql(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        except OperationalError as exc:
            log.warning(
                "WAL checkpoint failed; tried again at the next erasure or purge", extra={"error": str(exc.orig)}
            )
            return False
        if busy:
            log.warning(
                "WAL not emptied: readers in progress; tried again at the next erasure or purge",
                extra={"frames": frames, "copied": copied},
            )
            return False
        return True

    async def close(self) -> None:
        if self._lane is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._lane.close)
        await self.engine.dispose()


async def _drop_from_audiences(conn: AsyncConnection, user_id: int) -> None:
    """Take the person out of every broadcast audience that lists people by id (an empty list stays: nobody)."""
    # The JSON as text narrows the rows on any backend; the list itself decides.
    candidates = await conn.execute(
        select(broadcasts.c.id, broadcasts.c.audience).where(cast(broadcasts.c.audience, String).like(f"%{user_id}%"))
    )
    for broadcast_id, audience in candidates.all():
        people = audience.get("people") if isinstance(audience, dict) else None
        if isinstance(people, list) and user_id in [int(p) for p in people]:
            kept = [p for p in people if int(p) != user_id]
            await conn.execute(
                update(broadcasts).where(broadcasts.c.id == broadcast_id).values(audience={**audience, "people": kept})
            )


def _concerning(chats: set[int], ticket_ids: list[int], threads: set[int]) -> ColumnElement[bool]:
    """Outbox rows about a person: to their chat, copying from their chat, for their tickets, in their topics."""
    payload = outbox.c.payload
    conditions: list[ColumnElement[bool]] = [
        outbox.c.chat_id.in_(chats),
        # JSON numbers read as text then cast: the same SQL works on SQLite and PostgreSQL, and fits 64-bit ids.
        cast(payload["from_chat_id"].as_string(), BigInteger).in_(chats),
    ]
    if ticket_ids:
        conditions.append(cast(payload["ticket_id"].as_string(), BigInteger).in_(ticket_ids))
    if threads:
        conditions.append(and_(outbox.c.kind == "text", outbox.c.thread_id.in_(threads)))
    return or_(*conditions)


def _participant(row: Any, answered: list[tuple[str, str]]) -> Participant:
    """A participant from their row and their answers in path order."""
    session = Session(
        program_id=row.program_id,
        node=row.node,
        answers=MappingProxyType(dict(answered)),
        history=tuple(q for q, _ in answered),
    )
    return Participant(
        user_id=row.user_id,
        chat_id=row.chat_id,
        language=row.language,
        consented_at=utc(row.consented_at),
        session=session,
        outcome=row.outcome,
        counted=frozenset(row.counted.split()) if row.counted else frozenset(),
    )


def utc(value: dt.datetime) -> dt.datetime:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
