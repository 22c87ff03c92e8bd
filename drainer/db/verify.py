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


def history_applied(store: Store, conn: Connection, ht: Any) -> Iterator[tuple[int, str, str, str, datetime]]:
    """(id, message_id, event_type, payload, recorded_at) of the stored alarm-history notifications
    whose recorded outcome is `applied`, in id order (keyset pages)."""
    from sqlalchemy import select

    from drainer import history

    events, outcomes = store.t.events, ht.outcomes
    last = -1
    while True:
        rows = conn.execute(
            select(events.c.id, events.c.message_id, events.c.event_type, events.c.payload, outcomes.c.recorded_at)
            .select_from(events.join(outcomes, outcomes.c.message_id == events.c.message_id))
            .where(events.c.id > last, events.c.event_type.in_(sorted(history.TYPES)))
            .where(outcomes.c.outcome == history.APPLIED)
            .order_by(events.c.id)
            .limit(_PAGE)
        ).all()
        for row in rows:
            at = row.recorded_at
            yield (
                row.id,
                row.message_id,
                row.event_type,
                row.payload,
                datetime.fromisoformat(at) if isinstance(at, str) else at,
            )
        if len(rows) < _PAGE:
            return
        last = rows[-1].id


def history_unapplied(store: Store, conn: Connection, ht: Any) -> tuple[int, int]:
    """(stored notifications recorded as not applied, stored notifications without an outcome)."""
    from sqlalchemy import func, select

    from drainer import history

    events, outcomes = store.t.events, ht.outcomes
    joined = events.outerjoin(outcomes, outcomes.c.message_id == events.c.message_id)
    typed = events.c.event_type.in_(sorted(history.TYPES))
    not_applied = conn.execute(
        select(func.count()).select_from(joined).where(typed, outcomes.c.outcome == history.NOT_APPLIED)
    ).scalar_one()
    none = conn.execute(
        select(func.count()).select_from(joined).where(typed, outcomes.c.message_id.is_(None))
    ).scalar_one()
    return int(not_applied), int(none)


def history_rows(
    conn: Connection, ht: Any
) -> tuple[dict[str, dict[str, Any]], dict[tuple[str, str], dict[str, Any]], list[dict[str, Any]]]:
    """Vitrage's alarms (by vitrage_id), edges (by source and target) and changes, as they are."""
    from sqlalchemy import select

    alarms = {r["vitrage_id"]: dict(r) for r in conn.execute(select(ht.alarms)).mappings()}
    edges = {(r["source_id"], r["target_id"]): dict(r) for r in conn.execute(select(ht.edges)).mappings()}
    changes = [dict(r) for r in conn.execute(select(ht.changes)).mappings()]
    return alarms, edges, changes
