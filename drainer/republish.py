"""`rejected republish`: send a kept message (or its fixed body) back to a queue, with publisher
confirms, its original properties and headers plus one header naming its row; mark the row only
after the broker confirmed. The dedupe key absorbs a republish of something already stored."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from drainer import amqp_codec, envelope
from drainer.config import Settings
from drainer.db import rejected
from drainer.db.engine import Store
from drainer.errors import ConfigError, NotRepublishable, RecordNotFound
from drainer.model import Delivery, Event, utcnow

log = logging.getLogger(__name__)

# The Basic class's property names: anything else in a stored properties object is not a property.
PROPERTY_NAMES = frozenset(amqp_codec.PROPERTY_NAMES)


def _field_value(value: Any) -> Any:
    """A header value read back from the stored JSON, as an AMQP field value pika can encode.

    A float becomes a Decimal (pika encodes no float); `{"base64": ...}`, how a byte string is
    stored, becomes bytes again. Values JSON could not hold were stored as their repr and stay text.
    """
    if isinstance(value, dict):
        if set(value) == {"base64"} and isinstance(value["base64"], str):
            try:
                return base64.b64decode(value["base64"], validate=True)
            except ValueError:
                pass
        return {str(k): _field_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_field_value(v) for v in value]
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else repr(value)
    return value


def original_properties(stored: str | None) -> dict[str, Any]:
    """The AMQP properties a rejected row kept (its `properties` JSON), as BasicProperties fields."""
    if not stored:
        return {}
    try:
        found = json.loads(stored)
    except ValueError:
        return {}
    if not isinstance(found, dict):
        return {}
    return {name: _field_value(value) for name, value in found.items() if name in PROPERTY_NAMES}


def _received_bytes(stored: str | None) -> bytes:
    """The content header's property bytes as received, when the row kept them."""
    try:
        raw = json.loads(stored or "{}").get(envelope.RAW_PROPERTIES_KEY)
        return base64.b64decode(raw, validate=True) if isinstance(raw, str) else b""
    except (ValueError, AttributeError):
        return b""


def republished_properties(stored: str | None, row_id: int) -> tuple[bytes | dict[str, Any], dict[str, Any]]:
    """(what to publish, the same as values) for a rejected row: its original properties and
    headers plus REJECTED_ROW_HEADER naming the row. What to publish is the received property
    bytes re-encoded byte for byte (amqp_codec; every header keeps its AMQP type; the message is
    made persistent) when the row kept them, else the values as stored."""
    from drainer import amqp_codec

    header = {envelope.REJECTED_ROW_HEADER: str(row_id)}
    values = original_properties(stored)
    headers = values.get("headers")
    values["headers"] = {**(headers if isinstance(headers, dict) else {}), **header}
    raw = _received_bytes(stored)
    if raw:
        try:
            return amqp_codec.reencode_properties(raw, dict(header)), values
        except amqp_codec.FieldDecodeError:
            pass  # bytes that never decoded: send what could be read of them
    return values, values


@dataclass(frozen=True)
class Plan:
    """One row to publish: where, which bytes, which properties."""

    row_id: int
    queue: str
    body: bytes
    properties: bytes | dict[str, Any]  # encoded property bytes, or values (broker.publish_confirmed)
    outcome: str  # how the drainer will take it: "event <message id>" (stored, or absorbed as a duplicate)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()


def plan(store: Store, row_ids: list[int], body: bytes | None, queue: str | None, again: bool) -> list[Plan]:
    """Check every row before anything is published. Raises RecordNotFound, NotRepublishable."""
    if body is not None and len(row_ids) != 1:
        raise ConfigError("--body-file replaces the body of one row: name exactly one ID")
    plans = []
    for row_id in row_ids:
        row = rejected.get(store, row_id)
        if row is None:
            raise RecordNotFound(f"no rejected message with id {row_id} (see `vitrage-drainer rejected list`)")
        if row["republished_at"] is not None and not again:
            raise NotRepublishable(
                f"rejected message {row_id} was republished at {row['republished_at']:%Y-%m-%d %H:%M:%S} UTC to "
                f"{row['republished_to']!r}; --again publishes it once more"
            )
        if row["body"] is None and body is None:
            raise NotRepublishable(
                f"rejected message {row_id} is an oversize record: its body is in the oversize queue; "
                "raise --max-message-bytes and run `vitrage-drainer oversize requeue`"
            )
        rejected.check_markable(store, row_id)
        data = body if body is not None else row["body"]
        properties, values = republished_properties(row["properties"], row_id)
        outcome = _outcome(store, row_id, row, data, values)
        plans.append(Plan(row_id, queue or row["queue"], data, properties, outcome))
    return plans


def _outcome(store: Store, row_id: int, row: dict[str, Any], body: bytes, properties: dict[str, Any]) -> str:
    """Decode the body as the drainer will and look its key up as the batch write will; refuse
    one that would only be rejected (or set aside) again."""
    from drainer.db import reads

    delivery = Delivery(0, body, row["exchange"] or "", row["routing_key"] or "", False, properties)
    item = envelope.decode(delivery, utcnow())
    fix = (
        f"`vitrage-drainer rejected show {row_id} --body > msg.json`, edit it, then "
        f"`vitrage-drainer rejected republish {row_id} --body-file msg.json`"
    )
    if not isinstance(item, Event):
        raise NotRepublishable(
            f"rejected message {row_id} would be rejected again ({item.reason}); fix the body: {fix}"
        )
    stored = reads.stored_matches(store, [item]).get(item.message_id)
    if stored is None:
        return f"event {item.message_id}"
    stored_id, same = stored
    if not same:
        raise NotRepublishable(
            f"rejected message {row_id} would be set aside again: its message id {item.message_id!r} is already "
            f"stored (id {stored_id}) with different content; give the fixed body a message id of its own: {fix}"
        )
    return f"a duplicate of event id {stored_id} (absorbed by the dedupe key)"


def republish(settings: Settings, store: Store, plans: list[Plan], done: Callable[[dict[str, Any]], None]) -> None:
    """Publish each planned row with confirms, then mark it, and report it to `done`; stop at the
    first failure (the rows before it are published and marked)."""
    from drainer.broker import Broker

    broker = Broker.connect(settings)
    try:
        for p in plans:
            broker.publish_confirmed(p.queue, p.body, p.properties)
            rejected.mark_republished(store, p.row_id, p.queue, p.sha256)
            record = {"id": p.row_id, "queue": p.queue, "bytes": len(p.body), "sha256": p.sha256, "as": p.outcome}
            log.info("rejected message republished", extra={"event": "republished", **record})
            done(record)
    finally:
        broker.close()
