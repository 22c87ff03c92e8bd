"""One batch, one transaction: its events and rejected messages, fenced by the queue's lease."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from drainer import retry
from drainer.db import lease as leases
from drainer.db.engine import INVALIDATE_ERRORS, Store, describe, error_number, is_data_error, is_transient
from drainer.errors import BatchNotCommitted, DatabaseError
from drainer.model import Event, Rejection, utcnow

if TYPE_CHECKING:
    from sqlalchemy import Connection

log = logging.getLogger(__name__)

_INSERT_CHUNK = 1000  # rows per multi-row INSERT (PyMySQL splits each further at ~1 MB)
_LOOKUP_CHUNK = 1000  # keys per IN-list lookup of already stored rows


@dataclass(frozen=True)
class WriteResult:
    """What one committed batch transaction did."""

    stored: int
    duplicates: int
    rejected: int
    set_aside: int  # events the database refused, moved to drainer_rejected_messages
    first_id: int | None = None
    last_id: int | None = None


@dataclass(frozen=True)
class BatchHooks:
    """How the drain loop takes part in a write: service the broker, and allow interruption."""

    keepalive: Callable[[], None] = lambda: None
    before_commit: Callable[[], None] = lambda: None  # raises when the batch can no longer be acked
    interruptible: Callable[[], contextlib.AbstractContextManager[None]] = contextlib.nullcontext
    refuse: Callable[[Event, str], Rejection] | None = None
    # Inside the batch's transaction, after its rows are written and before the closing lease
    # fence: writes that must commit with the batch or not at all (history projection, run ledger).
    # Every attempt calls it afresh (a retried attempt rolled the last one back).
    in_transaction: Callable[[Connection, Written], None] | None = None


@dataclass(frozen=True)
class Written:
    """What an attempt wrote, for the writes that go with it in the same transaction."""

    events: Sequence[Event]  # the batch's events in queue order (in-batch duplicates removed)
    stored_keys: frozenset[str]  # message ids newly stored now (not redeliveries, not refused rows)
    result: WriteResult
    refused_keys: frozenset[str] = frozenset()  # newly seen, but set aside (the database refused them)

    @property
    def stored(self) -> list[Event]:
        return [e for e in self.events if e.message_id in self.stored_keys]

    @property
    def redelivered(self) -> list[Event]:
        """Events whose message id was stored by an earlier batch (a redelivery)."""
        fresh = self.stored_keys | self.refused_keys
        return [e for e in self.events if e.message_id not in fresh]


def write_batch(
    store: Store,
    queue: str,
    events: Sequence[Event],
    rejections: Sequence[Rejection],
    lease: leases.Lease | None,
    hooks: BatchHooks,
) -> WriteResult:
    """Store a batch in ONE transaction, retrying transient errors within the budget.

    `events` are in queue order with in-batch duplicates removed. Raises BatchNotCommitted (also
    LeaseLost) when nothing was committed; the caller then returns the batch to the queue.
    """
    from sqlalchemy.exc import DBAPIError

    def between_attempts() -> None:
        hooks.keepalive()
        if lease is None:
            return
        # The messages are still held: keep the lease ahead of them, with one try inside this
        # retry's budget. A transient failure (the node behind a VIP died, a Galera node left the
        # primary component) must not end the retry: the next attempt fences first, which renews
        # the lease or finds it lost (LeaseLost). A lost lease ends the batch here and now.
        try:
            leases.renew(store, lease, retrying=False)
        except DatabaseError as exc:  # unavailable or locked; a refusal is not transient
            if not is_transient(exc):
                raise
            log.warning(
                "could not renew the lease between attempts; the next attempt renews it",
                extra={"event": "lease_renewal_deferred", "cause": str(exc)},
            )

    policy = retry.bounded(
        "batch transaction", store.settings.retry_seconds, is_transient, between=between_attempts, describe=describe
    )
    try:
        return policy(_write_once, store, queue, events, rejections, lease, hooks)
    except DBAPIError as exc:
        raise BatchNotCommitted(f"batch not committed: {describe(exc)}") from exc


def _write_once(
    store: Store,
    queue: str,
    events: Sequence[Event],
    rejections: Sequence[Rejection],
    lease: leases.Lease | None,
    hooks: BatchHooks,
) -> WriteResult:
    from sqlalchemy.exc import DBAPIError

    t = store.t
    conn = store.writer.connect()
    try:
        with conn.begin():
            with hooks.interruptible():
                if lease is not None:
                    # First, too: the lease row stays locked for the whole attempt, so nobody can
                    # take the lease while this batch is being written, however slow it is.
                    leases.fence(store, conn, lease)
                fresh, reused = _new_events(store, conn, events)
                refused = _insert_events(store, conn, fresh)
                set_aside = [_refusal(hooks, event, reason) for event, reason in refused]
                set_aside += [_reused(hooks, event, stored_id) for event, stored_id in reused]
                all_rejections = [*rejections, *set_aside]
                new_rejections = _new_only(conn, t.rejected.c.dedupe_key, all_rejections, "dedupe_key")
                _insert_rejections(store, conn, queue, new_rejections)
                refused_keys = {e.message_id for e, _ in refused}
                stored = [e for e in fresh if e.message_id not in refused_keys]
                result = WriteResult(
                    stored=len(stored),
                    duplicates=(len(events) - len(fresh) - len(reused)) + (len(all_rejections) - len(new_rejections)),
                    rejected=len(new_rejections),
                    set_aside=len(refused) + len(reused),
                )
                if stored:
                    first_id, last_id = _id_range(store, conn, stored)
                    result = replace(result, first_id=first_id, last_id=last_id)
                if hooks.in_transaction is not None:
                    keys = frozenset(e.message_id for e in stored)
                    hooks.in_transaction(conn, Written(events, keys, result, frozenset(refused_keys)))
                # Fence last: the lease is checked at the commit.
                if lease is not None:
                    leases.fence(store, conn, lease)
            # Outside the interruptible part: a signal must not land inside pika's frame handling.
            hooks.before_commit()
            # leaving the block commits; a signal now waits for the commit to finish
        return result
    except DBAPIError as exc:
        if error_number(exc) in INVALIDATE_ERRORS:
            conn.invalidate()  # never reuse a connection to a node that went read-only
        raise
    finally:
        conn.close()


def _refusal(hooks: BatchHooks, event: Event, reason: str) -> Rejection:
    if hooks.refuse is None:
        raise BatchNotCommitted(f"the database refused event {event.message_id}: {reason}")
    log.warning(
        "database refused an event; setting it aside",
        extra={"event": "row_refused", "message_id": event.message_id, "reason": reason},
    )
    return hooks.refuse(event, "database refused the row: " + reason)


def _reused(hooks: BatchHooks, event: Event, stored_id: int) -> Rejection:
    reason = f"message_id {event.message_id!r} is already stored (id {stored_id}) with different content"
    if hooks.refuse is None:
        raise BatchNotCommitted(reason)
    log.warning(
        "message id reused for different content; setting the message aside",
        extra={"event": "message_id_reused", "message_id": event.message_id, "stored_id": stored_id},
    )
    return hooks.refuse(event, reason)


# What a redelivery repeats exactly. Not collector_timestamp: without a date in the message it is
# the time of the drain, which differs on every delivery.
CONTENT = ("payload", "event_type", "publisher_id", "priority")


def _new_events(store: Store, conn: Connection, events: Sequence[Event]) -> tuple[list[Event], list[tuple[Event, int]]]:
    """(events whose key is not stored yet, [(event, stored id)] whose key is stored with other
    content). A redelivery is byte-identical, so it decodes to the stored content and is a plain
    duplicate; the same key with different content is a different message (a producer bug, a
    replayed fixture, a restored backup) and must not vanish as a duplicate."""
    if not events:
        return [], []
    from sqlalchemy import select

    t = store.t.events
    stored: dict[str, Any] = {}
    for start in range(0, len(events), _LOOKUP_CHUNK):
        keys = [e.message_id for e in events[start : start + _LOOKUP_CHUNK]]
        query = select(t.c.message_id, t.c.id, *(t.c[name] for name in CONTENT)).where(t.c.message_id.in_(keys))
        stored.update({row.message_id: row for row in conn.execute(query)})
    fresh, reused = [], []
    for event in events:
        row = stored.get(event.message_id)
        if row is None:
            fresh.append(event)
        elif any(getattr(row, name) != getattr(event, name) for name in CONTENT):
            reused.append((event, int(row.id)))
    return fresh, reused


def _new_only(conn: Connection, column: Any, items: Sequence[Any], attr: str) -> list[Any]:
    """Items whose key is not stored yet (duplicates in `items` were removed by the caller)."""
    if not items:
        return []
    from sqlalchemy import select

    keys = [getattr(i, attr) for i in items]
    existing: set[str] = set()
    for start in range(0, len(keys), _LOOKUP_CHUNK):
        chunk = keys[start : start + _LOOKUP_CHUNK]
        existing.update(conn.execute(select(column).where(column.in_(chunk))).scalars())
    return [i for i in items if getattr(i, attr) not in existing]


def _events_insert(store: Store) -> Any:
    t = store.t.events
    if store.dialect == "mysql":
        from sqlalchemy import insert

        # Plain INSERT: stored keys were filtered out under the lease, so a key conflict (1062)
        # means a broken lease and is retried (the retry filters it). Unlike INSERT IGNORE it
        # hides no truncation, and unlike ON DUPLICATE KEY UPDATE the drain user needs no UPDATE.
        return insert(t)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(t).on_conflict_do_nothing(index_elements=["message_id"])


def _insert_events(store: Store, conn: Connection, events: Sequence[Event]) -> list[tuple[Event, str]]:
    """Insert in queue order; rows the database refuses are found by bisection and returned."""
    if not events:
        return []
    from sqlalchemy.exc import DBAPIError, StatementError

    now = utcnow()
    statement = _events_insert(store)

    def rows(lo: int, hi: int) -> list[dict[str, Any]]:
        return [
            {
                "message_id": e.message_id,
                "collector_timestamp": e.collector_timestamp,
                "event_type": e.event_type,
                "publisher_id": e.publisher_id,
                "priority": e.priority,
                "entity_type": e.entity_type,
                "entity_id": e.entity_id,
                "entity_category": e.entity_category,
                "related_id": e.related_id,
                "action": e.action,
                "payload": e.payload,
                "stored_at": now,
            }
            for e in events[lo:hi]
        ]

    def attempt(lo: int, hi: int) -> list[tuple[Event, str]]:
        try:
            with conn.begin_nested():
                conn.execute(statement, rows(lo, hi))
            return []
        except (DBAPIError, StatementError, UnicodeError) as exc:
            # StatementError wraps driver-side failures such as an unencodable string.
            if not (is_data_error(exc) or is_data_error(getattr(exc, "orig", None) or exc)):
                raise
            if hi - lo == 1:
                return [(events[lo], describe(exc))]
            mid = (lo + hi) // 2
            return attempt(lo, mid) + attempt(mid, hi)

    # Chunks of the batch, in order, in the same transaction: the row dicts and the statement
    # text of one chunk at a time are alive, not those of the whole batch.
    refused: list[tuple[Event, str]] = []
    for lo in range(0, len(events), _INSERT_CHUNK):
        refused += attempt(lo, min(lo + _INSERT_CHUNK, len(events)))
    return refused


def _insert_rejections(store: Store, conn: Connection, queue: str, rejections: Sequence[Rejection]) -> None:
    if not rejections:
        return
    from sqlalchemy import insert

    conn.execute(
        insert(store.t.rejected),
        [
            {
                "dedupe_key": r.dedupe_key,
                "received_at": r.received_at,
                "queue": queue,
                "exchange": r.exchange,
                "routing_key": r.routing_key,
                "redelivered": r.redelivered,
                "reason": r.reason,
                "properties": r.properties,
                "body": r.body,
                "body_size": r.body_size,
                "body_sha256": r.body_sha256,
            }
            for r in rejections
        ],
    )


def _id_range(store: Store, conn: Connection, stored: Sequence[Event]) -> tuple[int, int]:
    """The first and last id of the batch's rows: ids follow queue order, so the ends suffice."""
    from sqlalchemy import func, select

    t = store.t.events
    ends = [stored[0].message_id, stored[-1].message_id]
    lo, hi = conn.execute(select(func.min(t.c.id), func.max(t.c.id)).where(t.c.message_id.in_(ends))).one()
    return lo, hi
