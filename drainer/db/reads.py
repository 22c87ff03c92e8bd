"""Read-only queries: `status` figures and the `events` export. Each read is one database step
(engine.step): retried on a fresh connection while transient, then classified."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from drainer.db.engine import Store, step


def overview(store: Store) -> dict[str, Any]:
    """Counts and extremes for `status`: events, last id, newest collector timestamp, rejected
    rows still pending (not republished) and those republished.

    Raises DatabaseUnavailable, DatabaseAccessDenied, DatabaseLocked.
    """
    from sqlalchemy import case, func, select

    events, rejected = store.t.events, store.t.rejected

    def read() -> dict[str, Any]:
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

    return step(store, "reading the status", read)


@dataclass(frozen=True)
class EventFilter:
    """Which events `events` selects; every field narrows (None: no bound). (after_id, until_id]
    is a replay window: what a standby replays after a snapshot, up to a second one."""

    after_id: int | None = None
    until_id: int | None = None
    since: datetime | None = None  # collector_timestamp >= since (naive UTC)
    until: datetime | None = None  # collector_timestamp < until
    event_type: str | None = None
    entity_type: str | None = None
    entity_id: str | None = None


def events_page(store: Store, where: EventFilter, last: int, size: int) -> Any:
    """The statement for one keyset page: id > last, in id order. An equality on event_type,
    entity_type or entity_id is served by that column's index, which is (column, id) in InnoDB
    and SQLite, so the page is a range scan in id order (see sql/*/003_drainer_events_indexes.sql)."""
    from sqlalchemy import select

    t = store.t.events
    columns = (t.c.id, t.c.collector_timestamp, t.c.message_id, t.c.event_type, t.c.payload)
    query = select(*columns).where(t.c.id > last)
    for column, value in ((t.c.event_type, where.event_type), (t.c.entity_type, where.entity_type)):
        if value is not None:
            query = query.where(column == value)
    if where.entity_id is not None:
        query = query.where(t.c.entity_id == where.entity_id)
    if where.until_id is not None:
        query = query.where(t.c.id <= where.until_id)
    if where.since is not None:
        query = query.where(t.c.collector_timestamp >= where.since)
    if where.until is not None:
        query = query.where(t.c.collector_timestamp < where.until)
    return query.order_by(t.c.id).limit(size)


def iter_events(store: Store, where: EventFilter, limit: int | None, page: int = 1000) -> Iterator[Any]:
    """Events in id order (rows with id, collector_timestamp, message_id, event_type, payload),
    read in keyset pages of `page` rows so memory stays constant for any table size; each page
    is one step, so a page that meets a failover is read again, not skipped."""
    last = where.after_id if where.after_id is not None else -1
    left = limit
    while left is None or left > 0:
        size = page if left is None else min(page, left)
        statement = events_page(store, where, last, size)

        def read(statement: Any = statement) -> list[Any]:
            with store.engine.connect() as conn:
                return list(conn.execute(statement).all())

        rows = step(store, "reading events", read)
        yield from rows
        if len(rows) < size:
            return
        last = rows[-1].id
        if left is not None:
            left -= len(rows)


def stored_matches(store: Store, events: list[Any]) -> dict[str, tuple[int, bool]]:
    """message_id -> (stored id, whether the stored row has the event's content) for the events
    whose key is stored: what the batch write decides between a duplicate and a reused id."""
    if not events:
        return {}
    from sqlalchemy import select

    from drainer.db.batch import CONTENT

    t = store.t.events
    by_key = {e.message_id: e for e in events}
    keys = sorted(by_key)

    def read() -> dict[str, tuple[int, bool]]:
        found: dict[str, tuple[int, bool]] = {}
        with store.engine.connect() as conn:
            for start in range(0, len(keys), 1000):
                query = select(t.c.message_id, t.c.id, *(t.c[name] for name in CONTENT)).where(
                    t.c.message_id.in_(keys[start : start + 1000])
                )
                for row in conn.execute(query):
                    event = by_key[row.message_id]
                    found[row.message_id] = (int(row.id), all(getattr(row, n) == getattr(event, n) for n in CONTENT))
        return found

    return step(store, "reading events", read)
