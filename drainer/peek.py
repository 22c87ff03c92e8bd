"""`peek`: the next messages of the queue, decoded as the drainer would decode them, then given back.

The queue's lease is held while messages are out: a drain running meanwhile would otherwise store
the messages behind them first, and ids would no longer follow queue order.
"""

from __future__ import annotations

import json
from typing import Any

from drainer import defaults, envelope
from drainer.broker import Broker
from drainer.config import Settings
from drainer.db import lease as leases
from drainer.db import reads
from drainer.db.engine import Store
from drainer.drain import effective_max_bytes, lease_ttl
from drainer.errors import LeaseHeldByOther
from drainer.holder import holder_id, holder_is_dead
from drainer.model import Delivery, Event, utcnow


def _outcome(
    delivery: Delivery, max_bytes: int, seen: set[str], stored: dict[str, int], oversize_queue: str
) -> dict[str, Any]:
    headers = delivery.properties.get("headers")
    line: dict[str, Any] = {
        "bytes": len(delivery.body),
        "redelivered": delivery.redelivered,
        "delivery_count": headers.get("x-delivery-count") if isinstance(headers, dict) else None,
    }
    if len(delivery.body) > max_bytes:
        return {
            **line,
            "outcome": "oversize",
            "detail": f"{len(delivery.body)} bytes > {max_bytes}: to {oversize_queue}",
        }
    item = envelope.decode(delivery, utcnow())
    if not isinstance(item, Event):
        return {**line, "outcome": "rejected", "detail": item.reason}
    if item.message_id in stored:
        outcome, detail = "duplicate", f"already stored as id {stored[item.message_id]}"
    elif item.message_id in seen:
        outcome, detail = "duplicate", "repeats an earlier message of this peek"
    else:
        outcome, detail = "event", None
    seen.add(item.message_id)
    return {
        **line,
        "outcome": outcome,
        "detail": detail,
        "message_id": item.message_id,
        "event_type": item.event_type,
        "entity_type": item.entity_type,
        "entity_id": item.entity_id,
        "collector_timestamp": item.collector_timestamp.isoformat(timespec="microseconds") + "Z",
        "payload": json.loads(item.payload),
    }


def peek(settings: Settings, run_id: str, count: int) -> list[dict[str, Any]]:
    """Up to `count` messages from the head of the queue, each decoded (event, duplicate, rejected
    with its reason, or oversize), all given back. Raises LeaseHeldByOther when a drainer holds the lease."""
    from drainer import schema

    queue = settings.queue_name
    store = Store.open(settings.require_db_url(), settings)
    broker: Broker | None = None
    lease: leases.Lease | None = None
    try:
        schema.check(store)
        max_bytes = effective_max_bytes(settings, store.max_packet())
        broker = Broker.connect(settings)
        broker.depth(queue)  # no lease row for a queue that does not exist
        lease = leases.Lease(queue, holder_id(run_id), lease_ttl(settings))
        held = leases.acquire(store, queue, lease.holder, lease.ttl_s, holder_is_dead)
        if held is not None:
            lease = None
            raise LeaseHeldByOther(
                f"a drainer holds the lease of {queue!r} ({held.holder}); peeking now would let it store "
                "the messages behind the ones peeked first: try again when it is done"
            )
        deliveries, _ = broker.fetch_batch(
            queue, count, settings.max_batch_bytes, defaults.FETCH_SECONDS, lambda: False
        )
        try:
            decoded = [envelope.decode(d, utcnow()) for d in deliveries if len(d.body) <= max_bytes]
            keys = [e.message_id for e in decoded if isinstance(e, Event)]
            stored = reads.stored_ids(store, keys)
            seen: set[str] = set()
            return [_outcome(d, max_bytes, seen, stored, settings.oversize_queue_name) for d in deliveries]
        finally:
            broker.return_unacked()
    finally:
        if broker is not None:
            broker.close()
        if lease is not None:
            leases.release(store, lease)
        store.dispose()
