"""Maintenance writes: `prune` deletes old events in short transactions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from drainer.db.engine import Store, step


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

    def delete_chunk() -> int:
        with store.writer.begin() as conn:
            ids = conn.execute(select(t.c.id).where(condition).order_by(t.c.id).limit(chunk)).scalars().all()
            if ids:
                conn.execute(delete(t).where(t.c.id.in_(ids)))
        return len(ids)

    while deleted := step(store, "pruning events", delete_chunk):
        yield deleted
