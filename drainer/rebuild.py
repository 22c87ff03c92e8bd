"""`rebuild-history`: apply stored alarm-history notifications to Vitrage's tables after the fact.

For enabling `--history vitrage` after events were already stored, and for repairing the history
after a fix (a widened column, a missing activation that arrived late): every stored notification
of the six history types with no outcome yet, or an outcome of "not applied", is applied again, in
id order, in transactions of `chunk` notifications. One already applied is never applied twice,
so a rebuild can be interrupted and run again. It holds the queue's lease while it writes, so no
drain writes the history at the same time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from drainer import history, retry, schema
from drainer.config import Settings
from drainer.db import history as db_history
from drainer.db import lease as leases
from drainer.db.engine import Store, describe, is_transient, translated
from drainer.errors import Interrupted, LeaseHeldByOther
from drainer.holder import holder_id, holder_is_dead
from drainer.model import utcnow
from drainer.signals import StopFlag

log = logging.getLogger(__name__)


@dataclass
class RebuildResult:
    examined: int = 0
    applied: int = 0
    not_applied: int = 0
    transactions: int = 0
    last_id: int | None = None


def rebuild(settings: Settings, run_id: str, stop: StopFlag, from_id: int, chunk: int) -> RebuildResult:
    """Apply pending notifications with id >= from_id. Raises LeaseHeldByOther when a drain holds
    the queue's lease, Interrupted on a signal between transactions (what was committed stays),
    SchemaOutdated, DatabaseUnavailable, DatabaseAccessDenied."""
    from drainer.drain import lease_ttl

    store = Store.open(settings.require_db_url(), settings)
    result = RebuildResult()
    lease: leases.Lease | None = None
    try:
        schema.check(store, "vitrage")
        ht = db_history.build()
        lease = leases.Lease(settings.queue_name, holder_id(run_id), lease_ttl(settings))
        held = leases.acquire(store, lease.name, lease.holder, lease.ttl_s, holder_is_dead)
        if held is not None:
            lease = None
            raise LeaseHeldByOther(
                f"a drainer holds the lease of {settings.queue_name!r} ({held.holder}); "
                "run rebuild-history when it is done, or with the CronJob suspended"
            )
        after = from_id - 1
        while True:
            if stop.requested:
                raise Interrupted(f"stopped by {stop.signal_name} after id {result.last_id}; run it again to go on")
            rows = db_history.pending(store, ht, after, chunk)
            if not rows:
                return result
            _apply_chunk(store, ht, lease, rows, result)
            after = rows[-1].id
    finally:
        if lease is not None:
            leases.release(store, lease)
        store.dispose()


def _apply_chunk(
    store: Store, ht: db_history.HistoryTables, lease: leases.Lease, rows: list[Any], result: RebuildResult
) -> None:
    notifications = [
        n
        for row in rows
        if (n := history.Notification.from_stored(row.message_id, row.event_type, row.payload)) is not None
    ]
    recorded = {row.message_id for row in rows if row.outcome is not None}
    now = utcnow()

    def attempt() -> list[history.Outcome]:
        with store.writer.begin() as conn:
            leases.fence(store, conn, lease)  # also keeps the lease ahead of a long rebuild
            outcomes = db_history.apply(conn, ht, notifications, now)
            db_history.record(conn, ht, outcomes, now, existing=recorded)
            return outcomes

    policy = retry.bounded("history transaction", store.settings.retry_seconds, is_transient, describe=describe)
    with translated("rebuilding the alarm history"):
        outcomes = policy(attempt)
    result.examined += len(rows)
    result.transactions += 1
    result.last_id = rows[-1].id
    applied, not_applied = history.report(outcomes)
    result.applied += applied
    result.not_applied += not_applied
    log.info(
        "history transaction committed",
        extra={"event": "rebuild_chunk", "last_id": result.last_id, "applied": result.applied},
    )
