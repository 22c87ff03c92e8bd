"""Maintenance writes: `prune` deletes old events in short transactions (and counts, in the same
transaction, which run of the ledger each deleted row belonged to)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from drainer.db import runs
from drainer.db.engine import Store, step


def history_outcomes() -> Any:
    from drainer.db.history import build

    return build().outcomes


def prune(store: Store, before_id: int | None, older_than: datetime | None, chunk: int, dry_run: bool) -> Iterator[int]:
    """Delete events with id < before_id, or collector_timestamp < older_than (naive UTC), in
    chunks of `chunk` rows, one short transaction each (one database step: a chunk that meets a
    transient error is retried whole); yield each chunk's count (with dry_run: one count, nothing
    deleted). Raises DatabaseAccessDenied, DatabaseUnavailable, DatabaseLocked."""
    from sqlalchemy import delete, func, select

    t = store.t.events
    condition = t.c.id < before_id if before_id is not None else t.c.collector_timestamp < older_than
    if dry_run:

        def count() -> int:
            with store.engine.connect() as conn:
                return int(conn.execute(select(func.count()).where(condition)).scalar_one())

        yield step(store, "counting events to prune", count)
        return
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
