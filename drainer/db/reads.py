"""Read-only queries: `status` figures and the `events` export. Each read is one database step
(engine.step): retried on a fresh connection while transient, then classified."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from drainer.db.engine import Store, step


def overview(store: Store) -> dict[str, Any]:
    """Counts and extremes for `status`: events, last id, newest collector timestamp, rejected.

    Raises DatabaseUnavailable, DatabaseAccessDenied, DatabaseLocked.
    """
    from sqlalchemy import func, select

    events, rejected = store.t.events, store.t.rejected

    def read() -> dict[str, Any]:
        with store.engine.connect() as conn:
            count, last_id = conn.execute(select(func.count(), func.max(events.c.id))).one()
            newest = conn.execute(select(func.max(events.c.collector_timestamp))).scalar_one()
            rejected_count = conn.execute(select(func.count()).select_from(rejected)).scalar_one()
        if isinstance(newest, str):
            newest = datetime.fromisoformat(newest)
        return {"events": count, "last_event_id": last_id, "newest": newest, "rejected": rejected_count}

    return step(store, "reading the status", read)


def iter_events(
    store: Store,
    after_id: int | None,
    since: datetime | None,
    until: datetime | None,
    limit: int | None,
    page: int = 1000,
) -> Iterator[Any]:
    """Events in id order (rows with id, collector_timestamp, message_id, event_type, payload),
    read in keyset pages of `page` rows so memory stays constant for any table size; each page
    is one step, so a page that meets a failover is read again, not skipped."""
    from sqlalchemy import select

    t = store.t.events
    columns = (t.c.id, t.c.collector_timestamp, t.c.message_id, t.c.event_type, t.c.payload)
    last = after_id if after_id is not None else -1
    left = limit
    while left is None or left > 0:
        size = page if left is None else min(page, left)
        query = select(*columns).where(t.c.id > last)
        if since is not None:
            query = query.where(t.c.collector_timestamp >= since)
        if until is not None:
            query = query.where(t.c.collector_timestamp < until)
        ordered = query.order_by(t.c.id).limit(size)

        def read(ordered: Any = ordered) -> list[Any]:
            with store.engine.connect() as conn:
                return list(conn.execute(ordered).all())

        rows = step(store, "reading events", read)
        yield from rows
        if len(rows) < size:
            return
        last = rows[-1].id
        if left is not None:
            left -= len(rows)
