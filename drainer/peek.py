"""`peek`: the next messages of the queue, decoded as the drainer would decode them, then given back.

The queue's lease is held while messages are out: a drain running meanwhile would otherwise store
the messages behind them first, and ids would no longer follow queue order.
"""

from __future__ import annotations

import json
from typing import Any

from drainer import defaults
from drainer.broker import Broker
from drainer.config import Settings
from drainer.db import lease as leases
from drainer.db import reads
from drainer.db.engine import Store
from drainer.drain import Batch, decode_batch, effective_max_bytes, give_up_lease, lease_ttl
from drainer.errors import LeaseHeldByOther
from drainer.holder import holder_id, holder_is_dead
from drainer.model import Delivery, utcnow


def _line(delivery: Delivery, batch: Batch, stored: dict[str, tuple[int, bool]], oversize_queue: str) -> dict[str, Any]:
    """One delivery as the drain would take it: the batch decoding's verdict, then the table's."""
    headers = delivery.properties.get("headers")
    outcome, detail = batch.verdicts[delivery.tag]
    line: dict[str, Any] = {
        "bytes": len(delivery.body),
        "redelivered": delivery.redelivered,
        "delivery_count": headers.get("x-delivery-count") if isinstance(headers, dict) else None,
        "outcome": outcome,
        "detail": f"{detail}: to {oversize_queue}" if outcome == "oversize" else detail,
    }
    event = next((e for e in batch.sequence if batch.origin.get(e.message_id) is delivery), None)
    if event is None:
        return line
    if event.message_id in stored:
        row_id, same = stored[event.message_id]
        line["outcome"], line["detail"] = (
            ("duplicate", f"already stored as id {row_id}")
            if same
            else ("rejected", f"message_id {event.message_id!r} is already stored (id {row_id}) with different content")
        )
    line.update(
        message_id=event.message_id,
        event_type=event.event_type,
        entity_type=event.entity_type,
        entity_id=event.entity_id,
        collector_timestamp=event.collector_timestamp.isoformat(timespec="microseconds") + "Z",
        payload=json.loads(event.payload),
    )
    return line


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
            batch = decode_batch(deliveries, max_bytes, utcnow())
            stored = reads.stored_matches(store, batch.events)
            return [_line(d, batch, stored, settings.oversize_queue_name) for d in deliveries]
        finally:
            broker.return_unacked()
    finally:
        if broker is not None:
            broker.close()  # first: a clean close is what gives the peeked messages back
        if lease is not None:
            give_up_lease(store, lease, broker, settings)
        store.dispose()
