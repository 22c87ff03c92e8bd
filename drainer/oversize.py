"""`oversize list` and `oversize requeue`: the messages parked in `<queue>.oversize`, looked at
without taking them, and sent back to the source queue once the limits are raised (with publisher
confirms; a copy is acked only after its confirm)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import Any

from drainer import defaults
from drainer.broker import Broker
from drainer.config import Settings
from drainer.db import rejected
from drainer.db.engine import Store
from drainer.model import Delivery, utcnow

log = logging.getLogger(__name__)


def _headers(delivery: Delivery) -> dict[str, Any]:
    headers = delivery.properties.get("headers")
    return headers if isinstance(headers, dict) else {}


def _text(value: Any) -> Any:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def describe(delivery: Delivery, digest: str) -> dict[str, Any]:
    """One parked message as `oversize list` shows it (no body)."""
    headers = _headers(delivery)
    recorded = _text(headers.get("x-drainer-sha256"))
    return {
        "bytes": len(delivery.body),
        "sha256": digest,
        "intact": None if recorded is None else recorded == digest,
        "routing_key": _text(headers.get("x-original-routing-key")),
        "exchange": _text(headers.get("x-original-exchange")),
        "message_id": delivery.properties.get("message_id"),
        "parked_at": None,
        "age_s": None,
        "delivery_count": headers.get("x-delivery-count"),
        "reason": _text(headers.get("x-drainer-reason")),
    }


def _next(broker: Broker, queue: str) -> Delivery | None:
    """The next message, unacked (one at a time: oversize bodies are large)."""
    deliveries, _ = broker.fetch_batch(queue, 1, 1, defaults.FETCH_SECONDS, lambda: False)
    return deliveries[0] if deliveries else None


def listing(settings: Settings, store: Store | None, count: int) -> list[dict[str, Any]]:
    """Up to `count` parked messages in queue order, each given back to the queue at the end; the
    age comes from the message's oversize record in the database (when `store` is given)."""
    queue = settings.oversize_queue_name
    broker = Broker.connect(settings)
    found: list[dict[str, Any]] = []
    try:
        broker.depth(queue)
        while len(found) < count:
            delivery = _next(broker, queue)
            if delivery is None:
                break
            # Only the description is kept, not the body: memory stays at one message.
            found.append(describe(delivery, hashlib.sha256(delivery.body).hexdigest()))
    finally:
        broker.return_unacked()
        broker.close()
    parked = rejected.oversize_parked_at(store, [e["sha256"] for e in found]) if store is not None else {}
    now = utcnow()
    for entry in found:
        at = parked.get(entry["sha256"])
        if at is not None:
            entry["parked_at"] = at.isoformat(timespec="seconds") + "Z"
            entry["age_s"] = round((now - at).total_seconds())
    return found


def requeue(
    settings: Settings, store: Store, count: int | None, max_bytes: int, done: Callable[[dict[str, Any]], None]
) -> dict[str, int]:
    """Move up to `count` parked messages (all with None) back to the source queue: publish with a
    confirm, mark their oversize records, then ack the parked copy. A message still larger than
    `max_bytes`, or whose body no longer matches its recorded SHA-256, stays parked."""
    source, parking = settings.queue_name, settings.oversize_queue_name
    rejected.check_markable(store, 0)
    totals = {"requeued": 0, "still_oversize": 0, "damaged": 0}
    broker = Broker.connect(settings)
    try:
        broker.depth(source)  # the source queue must exist: never publish into nowhere
        broker.depth(parking)
        while count is None or totals["requeued"] < count:
            delivery = _next(broker, parking)
            if delivery is None:
                break
            digest = hashlib.sha256(delivery.body).hexdigest()
            recorded = _text(_headers(delivery).get("x-drainer-sha256"))
            if recorded is not None and recorded != digest:
                totals["damaged"] += 1  # held unacked until the end, then given back
                log.warning("a parked copy does not match its digest", extra={"event": "oversize_damaged"})
                continue
            if len(delivery.body) > max_bytes:
                totals["still_oversize"] += 1
                continue
            # The parked copy's property bytes as received: the original properties and headers
            # (expiration and user_id moved to x-original-* headers), and the x-drainer-* headers
            # that say where it has been.
            broker.publish_confirmed(source, delivery.body, delivery.raw_properties or dict(delivery.properties))
            marked = rejected.mark_oversize_requeued(store, digest, source)
            broker.ack_one(delivery.tag)
            totals["requeued"] += 1
            done({"bytes": len(delivery.body), "sha256": digest, "queue": source, "records_marked": marked})
    finally:
        broker.return_unacked()
        broker.close()
    return totals
