"""Claims with a lease: how several worker processes share the rows of one queue without sending one twice.

A worker claims a row before it sends it: in one transaction it locks the row (`SELECT ... FOR UPDATE SKIP LOCKED`
on PostgreSQL, so two workers never wait on each other; SQLite's dialect drops the clause, and SQLite has one
writer at a time anyway) and writes its id and a lease end. A row is claimable while nobody holds it or its lease
has passed, so a worker killed mid-send leaves its rows to the others once the lease runs out. Every write that
finishes a row is conditional on `claimed_by = me`: a worker whose lease was taken over cannot overwrite the new
owner. A live worker renews its leases every third of a lease, so only a dead (or frozen) worker loses them.

Waiting a whole lease after a restart would make the single-process default slow to resume, so a worker starting
up frees at once the claims of workers it can prove dead: ids of its own host whose process is gone, or whose pid
is its own but which this process never made (a container restarted keeps its hostname and pid 1).
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import socket
from collections.abc import Iterable

from sqlalchemy import ColumnElement, Table, or_

#: Worker ids made by `new_worker_id` in this process (never forgotten: a few strings per process).
_MADE_HERE: set[str] = set()

DEFAULT_LEASE = 60.0


def new_worker_id() -> str:
    """An id unique to this process and this call: "host:pid:token" (no personal data; logs may show it)."""
    worker_id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
    _MADE_HERE.add(worker_id)
    return worker_id


def claimable(table: Table, now: dt.datetime) -> ColumnElement[bool]:
    """SQL: nobody holds the row, or its holder's lease has passed."""
    return or_(table.c.claimed_by.is_(None), table.c.lease_until.is_(None), table.c.lease_until < now)


def dead(worker_ids: Iterable[str]) -> list[str]:
    """The ids among `worker_ids` whose worker is certainly gone (see the module's docstring); others are kept."""
    host, me = socket.gethostname(), os.getpid()
    gone = []
    for worker_id in worker_ids:
        parts = worker_id.split(":")
        if len(parts) != 3 or parts[0] != host or not parts[1].isdigit():
            continue  # another host's, or not ours to judge: its lease decides
        pid = int(parts[1])
        if pid == me:
            if worker_id not in _MADE_HERE:
                gone.append(worker_id)
        elif not _alive(pid):
            gone.append(worker_id)
    return gone


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process has that pid now: not provably ours, leave it to the lease
        return True
    return True
