"""Maintenance writes: `prune` deletes old events in short transactions (and counts, in the same
transaction, which run of the ledger each deleted row belonged to)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from drainer.db import runs
from drainer.db.engine import Store, step


@dataclass(frozen=True)
class Selection:
    """The events a prune cutoff selects: how many, out of how many stored, and their extent."""

    count: int
    total: int
    first_id: int | None
    last_id: int | None
    oldest: datetime | None  # collector_timestamp, naive UTC
    newest: datetime | None


def _condition(store: Store, before_id: int | None, older_than: datetime | None) -> Any:
    t = store.t.events
    return t.c.id < before_id if before_id is not None else t.c.collector_timestamp < older_than


def _naive(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def selection(store: Store, before_id: int | None, older_than: datetime | None) -> Selection:
    """What a prune with id < before_id, or collector_timestamp < older_than, would delete.

    Raises DatabaseAccessDenied, DatabaseUnavailable, DatabaseLocked."""
    from sqlalchemy import func, select

    t = store.t.events
    ts = t.c.collector_timestamp
    query = select(func.count(), func.min(t.c.id), func.max(t.c.id), func.min(ts), func.max(ts))

    def count() -> Selection:
        with store.engine.connect() as conn:
            count, first, last, oldest, newest = conn.execute(
                query.where(_condition(store, before_id, older_than))
            ).one()
            total = conn.execute(select(func.count()).select_from(t)).scalar_one()
        return Selection(count, total, first, last, _naive(oldest), _naive(newest))

    return step(store, "counting events to prune", count)


def history_outcomes() -> Any:
    from drainer.db.history import build

    return build().outcomes


def prune(
    store: Store, before_id: int | None, older_than: datetime | None, through_id: int, chunk: int
) -> Iterator[int]:
    """Delete events with id < before_id, or collector_timestamp < older_than (naive UTC), and
    never past `through_id` (the last id the selection showed), in chunks of `chunk` rows, one
    short transaction each (one database step: a chunk that meets a transient error is retried
    whole); yield each chunk's count. Raises DatabaseAccessDenied, DatabaseUnavailable,
    DatabaseLocked."""
    from sqlalchemy import delete, select

    t = store.t.events
    condition = _condition(store, before_id, older_than) & (t.c.id <= through_id)
    outcomes = history_outcomes()

    def delete_chunk() -> int:
        with store.writer.begin() as conn:
            rows = conn.execute(select(t.c.id, t.c.message_id).where(condition).order_by(t.c.id).limit(chunk)).all()
            if rows:
                conn.execute(delete(t).where(t.c.id.in_([r.id for r in rows])))
                # An event's history outcome goes with it (the history rows themselves stay).
                conn.execute(delete(outcomes).where(outcomes.c.message_id.in_([r.message_id for r in rows])))
                runs.count_pruned(store, conn, [r.id for r in rows])
        return len(rows)

    while deleted := step(store, "pruning events", delete_chunk):
        yield deleted
