"""What `verify` reads, all inside one read transaction so the ledger and the rows are one
snapshot (InnoDB: a consistent snapshot; SQLite: one read transaction)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from drainer.db import runs
from drainer.db.engine import Store, translated

if TYPE_CHECKING:
    from sqlalchemy import Connection

_PAGE = 10_000  # ids per keyset page of the event walk


@contextlib.contextmanager
def snapshot(store: Store) -> Iterator[Connection]:
    """A connection whose reads all see the same committed state. Raises DatabaseUnavailable,
    DatabaseAccessDenied."""
    with translated("verifying"), store.engine.connect() as conn, conn.begin() as transaction:
        if store.dialect == "mysql":  # (SQLite: the engine's begin event has just sent BEGIN)
            conn.exec_driver_sql("START TRANSACTION WITH CONSISTENT SNAPSHOT")
        yield conn
        transaction.rollback()


def ledger(store: Store, conn: Connection, after_id: int | None) -> list[dict[str, Any]]:
    """The runs that stored rows and reach past `after_id`, by first_id."""
    from sqlalchemy import select

    t = store.t.runs
    query = select(t).where(t.c.first_id.is_not(None)).order_by(t.c.first_id, t.c.id)
    if after_id is not None:
        query = query.where(t.c.last_id > after_id)
    return [runs.as_plain(row) for row in conn.execute(query)]


def first_ledger_id(store: Store, conn: Connection) -> int | None:
    """The smallest first_id in the whole ledger: rows below it predate the ledger."""
    from sqlalchemy import func, select

    return conn.execute(select(func.min(store.t.runs.c.first_id))).scalar_one()


def event_ids(store: Store, conn: Connection, after_id: int | None) -> Iterator[tuple[int, datetime]]:
    """(id, collector_timestamp) of every event after `after_id`, in id order, in keyset pages."""
    from sqlalchemy import select

    t = store.t.events
    last = after_id if after_id is not None else -1
    while True:
        rows = conn.execute(
            select(t.c.id, t.c.collector_timestamp).where(t.c.id > last).order_by(t.c.id).limit(_PAGE)
        ).all()
        for row_id, ts in rows:
            yield row_id, datetime.fromisoformat(ts) if isinstance(ts, str) else ts
        if len(rows) < _PAGE:
            return
        last = rows[-1][0]


def repeated_message_ids(store: Store, conn: Connection, after_id: int | None, limit: int) -> list[tuple[str, int]]:
    """message_ids stored more than once after `after_id` (the unique key forbids it; a restore
    without it, or a hand-made copy, would not), with how many times."""
    from sqlalchemy import func, select

    t = store.t.events
    query = select(t.c.message_id, func.count()).group_by(t.c.message_id).having(func.count() > 1).limit(limit)
    if after_id is not None:
        query = query.where(t.c.id > after_id)
    return [(str(m), int(n)) for m, n in conn.execute(query)]
