"""Read-only queries: `status` figures and the `events` export."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from drainer.db.engine import Store, translated


def overview(store: Store) -> dict[str, Any]:
    """Counts and extremes for `status`: events, last id, newest collector timestamp, rejected
    rows still pending (not republished) and those republished.

    Raises DatabaseUnavailable, DatabaseAccessDenied.
    """
    with translated("reading the status"):
        from sqlalchemy import case, func, select

        events, rejected = store.t.events, store.t.rejected
        with store.engine.connect() as conn:
            count, last_id = conn.execute(select(func.count(), func.max(events.c.id))).one()
            newest = conn.execute(select(func.max(events.c.collector_timestamp))).scalar_one()
            pending, republished = conn.execute(
                select(
                    func.count(case((rejected.c.republished_at.is_(None), 1))),
                    func.count(rejected.c.republished_at),
                )
            ).one()
        if isinstance(newest, str):
            newest = datetime.fromisoformat(newest)
        return {
            "events": count,
            "last_event_id": last_id,
            "newest": newest,
            "rejected": pending,
            "rejected_republished": republished,
        }


def iter_events(
    store: Store,
    after_id: int | None,
    since: datetime | None,
    until: datetime | None,
    limit: int | None,
    page: int = 1000,
) -> Iterator[Any]:
    """Events in id order (rows with id, collector_timestamp, message_id, event_type, payload),
    read in keyset pages of `page` rows so memory stays constant for any table size."""
    with translated("reading events"):
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
            with store.engine.connect() as conn:
                rows = conn.execute(query.order_by(t.c.id).limit(size)).all()
            yield from rows
            if len(rows) < size:
                return
            last = rows[-1].id
            if left is not None:
                left -= len(rows)


def stored_ids(store: Store, message_ids: list[str]) -> dict[str, int]:
    """message_id -> id for the keys already stored (`peek` shows what would be a duplicate)."""
    if not message_ids:
        return {}
    with translated("reading events"):
        from sqlalchemy import select

        t = store.t.events
        found: dict[str, int] = {}
        with store.engine.connect() as conn:
            for start in range(0, len(message_ids), 1000):
                chunk = message_ids[start : start + 1000]
                for message_id, row_id in conn.execute(select(t.c.message_id, t.c.id).where(t.c.message_id.in_(chunk))):
                    found[message_id] = row_id
        return found
