"""Turn a fetched message into an Event or a Rejection: oslo v2, oslo v1 and plain JSON; pure."""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, datetime
from typing import Any, TypeGuard

from drainer import compression
from drainer.model import Delivery, Event, Rejection

# Payload keys Vitrage's drivers stamp when they filter/enrich an event (older, then newer name).
SAMPLE_DATE_KEYS = ("vitrage_sample_date", "vitrage_sample_timestamp")


class _Undecodable(ValueError):
    """The body cannot become an event; the message is the reason stored with it."""


def _reject_constant(name: str) -> Any:
    # NaN/Infinity are not JSON: MariaDB and every strict reader refuse them (error 4025).
    raise _Undecodable(f"non-standard JSON number {name}")


# Built once: json.loads/json.dumps with non-default options build a new coder on every call,
# about 15% of the decode time of 1.3 KB messages (tests/perf/bench.py, 20,000 messages).
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _loads(text: str, what: str) -> Any:
    try:
        if text.startswith("\ufeff"):  # what json.loads refuses before decoding, in its words
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        return _DECODER.decode(text)
    except _Undecodable:
        raise
    except RecursionError as exc:
        raise _Undecodable(f"{what} is nested too deeply to decode") from exc
    except ValueError as exc:
        raise _Undecodable(f"{what} is not valid JSON: {exc}") from exc


def _dumps(payload: Any) -> str:
    try:
        text = _ENCODER.encode(payload)
    except ValueError as exc:
        # json reads 1e400 as inf without calling parse_constant; strict JSON cannot hold it.
        raise _Undecodable("payload holds a number out of the float range (e.g. 1e400)") from exc
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        # A lone surrogate ("\ud800") is valid JSON syntax but not Unicode; UTF-8 cannot hold it.
        raise _Undecodable("payload holds a lone UTF-16 surrogate, not encodable as UTF-8") from exc
    return text


def parse_timestamp(value: Any) -> datetime | None:
    """Parse the date formats Vitrage's producers send; naive UTC with microseconds, or None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        if not math.isfinite(value):
            return None
        try:
            return datetime.fromtimestamp(value, UTC).replace(tzinfo=None)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    else:
        return None
    if parsed.tzinfo is not None:
        try:
            parsed = parsed.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 lies before datetime.min in UTC
            return None
    return parsed


def collector_timestamp(
    payload: dict[str, Any], notification: dict[str, Any], properties: dict[str, Any], now: datetime
) -> datetime:
    """The time the driver filtered/enriched the event, by the documented fallback chain."""
    candidates = [payload.get(key) for key in SAMPLE_DATE_KEYS]
    candidates += [notification.get("timestamp"), properties.get("timestamp")]
    for candidate in candidates:
        parsed = parse_timestamp(candidate)
        if parsed is not None:
            return parsed
    return now


def _usable_key(candidate: object) -> TypeGuard[str]:
    # The key columns are VARCHAR(255) ascii with a PAD SPACE collation: "k1" and "k1 " collide
    # there, so a key must be printable ASCII without surrounding spaces.
    return (
        isinstance(candidate, str)
        and 0 < len(candidate) <= 255
        and candidate.isascii()
        and candidate.isprintable()
        and candidate == candidate.strip()
    )


# The width, in characters, of each `drainer_events` column filled from message data (sql/*/):
# a value that does not fit sets the message aside, it is never cut or left out.
COLUMN_WIDTHS = {
    "message_id": 255,
    "event_type": 255,
    "publisher_id": 255,
    "priority": 32,
    "entity_type": 255,
    "entity_id": 255,
    "action": 64,
    "entity_category": 64,
    "related_id": 255,
}


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:60]}... ({len(str(value))} characters)"


def dedupe_key(notification: dict[str, Any], properties: dict[str, Any], body: bytes) -> str:
    """oslo message_id, else the AMQP message_id property, else "sha256:" + the body's SHA-256.

    A message id the producer set (an integer becomes its digits) that cannot be a key (longer
    than the column, not printable ASCII, surrounding spaces) raises ValueError naming it: the
    message is set aside rather than stored under a key that loses the producer's id.
    """
    for what, candidate in (
        ("oslo message_id", notification.get("message_id")),
        ("AMQP message_id", properties.get("message_id")),
    ):
        if candidate is None or candidate == "":
            continue
        if isinstance(candidate, int) and not isinstance(candidate, bool):
            candidate = str(candidate)
        if _usable_key(candidate):
            return candidate
        raise _Undecodable(
            f"{what} {_shown(candidate)} cannot be the key: the message_id column holds 1 to "
            f"{COLUMN_WIDTHS['message_id']} printable ASCII characters without surrounding spaces"
        )
    return "sha256:" + hashlib.sha256(body).hexdigest()


def _unwrap(document: Any) -> tuple[dict[str, Any], Any]:
    """Return (notification, payload) for an oslo v2 envelope, an oslo v1 dict or a plain object."""
    if not isinstance(document, dict):
        raise _Undecodable(f"body is JSON {type(document).__name__}, not an object")
    if "oslo.message" in document:
        inner = document["oslo.message"]
        if not isinstance(inner, str):
            raise _Undecodable("oslo.message is not a JSON string")
        notification = _loads(inner, "oslo.message")
        if not isinstance(notification, dict):
            raise _Undecodable("oslo.message is not a JSON object")
        return notification, notification.get("payload")
    if "payload" in document and "message_id" in document:
        return document, document["payload"]
    return {}, document


def _column(name: str, value: Any) -> str | None:
    """The text a column keeps, or _Undecodable when the value does not fit it."""
    if value is None:
        return None
    if isinstance(value, dict | list):
        raise _Undecodable(f"{name} is a JSON {type(value).__name__}, which the {name} column cannot hold")
    text = value if isinstance(value, str) else _ENCODER.encode(value)
    if len(text) > COLUMN_WIDTHS[name]:
        raise _Undecodable(f"{name} is {len(text)} characters long; the {name} column holds {COLUMN_WIDTHS[name]}")
    return text


def row_size(event: Event) -> int:
    """About the bytes an event's row takes in the INSERT (UTF-8, before escaping)."""
    texts = [event.message_id, event.event_type, event.publisher_id, event.priority, event.entity_type]
    texts += [event.entity_id, event.action, event.entity_category, event.related_id]
    return len(event.payload.encode("utf-8")) + sum(len(t.encode("utf-8")) for t in texts if t) + 64


def _plain_body(delivery: Delivery, max_bytes: int) -> bytes:
    """The body as the producer wrote it before kombu compressed it (header `compression`)."""
    headers = delivery.properties.get("headers")
    method = headers.get(compression.HEADER) if isinstance(headers, dict) else None
    if method is None:
        return delivery.body
    try:
        return compression.decompress(delivery.body, method, max_bytes)
    except compression.DecompressionError as exc:
        raise _Undecodable(str(exc)) from None


def _to_event(delivery: Delivery, now: datetime, max_bytes: int) -> Event:
    if delivery.properties_error is not None:
        # Nothing the producer set (message id, timestamp, compression) can be trusted.
        raise _Undecodable(f"AMQP properties cannot be decoded: {delivery.properties_error}")
    if not delivery.body:
        raise _Undecodable("empty body")
    body = _plain_body(delivery, max_bytes)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Undecodable(f"body is not UTF-8: {exc}") from exc
    notification, payload = _unwrap(_loads(text, "body"))
    if not isinstance(payload, dict):
        raise _Undecodable(f"payload is {type(payload).__name__}, not an object")
    props = delivery.properties
    event_type = notification.get("event_type")
    return Event(
        message_id=dedupe_key(notification, props, delivery.body),
        collector_timestamp=collector_timestamp(payload, notification, props, now),
        event_type=_column("event_type", event_type or payload.get("vitrage_entity_type")),
        publisher_id=_column("publisher_id", notification.get("publisher_id")),
        priority=_column("priority", notification.get("priority")),
        entity_type=_column("entity_type", _first(payload, ENTITY_TYPE_KEYS)),
        entity_id=_column("entity_id", _first(payload, ENTITY_ID_KEYS)),
        action=_column("action", payload.get("vitrage_datasource_action") or _vitrage_verb(event_type)),
        payload=_dumps(payload),
        entity_category=_column("entity_category", payload.get("vitrage_category")),
        related_id=_column("related_id", payload.get("target_id")),
    )


# Queens datasource events name the entity vitrage_entity_type/id; vitrage-graph's alarm
# notifications carry the vertex's vitrage_type/vitrage_id, its edge notifications
# relationship_type/source_id/target_id.
ENTITY_TYPE_KEYS = ("vitrage_entity_type", "vitrage_type", "relationship_type")
ENTITY_ID_KEYS = ("vitrage_id", "id", "source_id")


def _first(payload: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        value = payload.get(key)
        if value not in (None, ""):
            return value
    return None


def _vitrage_verb(event_type: Any) -> str | None:
    """`vitrage.alarm.activate` -> `activate`: the action of vitrage-graph's notifications."""
    if isinstance(event_type, str) and event_type.startswith("vitrage."):
        return event_type.rpartition(".")[2]
    return None


RAW_PROPERTIES_KEY = "x-drainer-raw-properties"


def _jsonable(value: Any) -> Any:
    """A decoded AMQP field value as JSON can hold it: bytes as {"base64": ...}, a decimal and a
    non-finite float as text; the exact bytes travel beside it (RAW_PROPERTIES_KEY)."""
    if isinstance(value, dict):
        return {
            (k.decode("utf-8", "backslashreplace") if isinstance(k, bytes) else str(k)): _jsonable(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes):
        import base64

        return {"base64": base64.b64encode(value).decode("ascii")}
    if type(value).__name__ == "Decimal":  # AMQP decimal (decimal imported only when one arrives)
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return repr(value)


def properties_json(properties: dict[str, Any], raw: bytes = b"") -> str:
    """AMQP properties as JSON text, with the received property bytes (base64) under
    RAW_PROPERTIES_KEY: the values as read, and the bytes that hold each field type exactly."""
    import base64

    record = _jsonable(properties)
    if raw:
        record[RAW_PROPERTIES_KEY] = base64.b64encode(raw).decode("ascii")
    return json.dumps(record, ensure_ascii=True, sort_keys=True, allow_nan=False)


# The header `rejected republish` adds: the id of the drainer_rejected_messages row it came from.
REJECTED_ROW_HEADER = "x-drainer-rejected-id"


# Headers RabbitMQ itself adds when it redelivers (quorum queues) or dead-letters a message: a
# redelivery carries them and must keep its key; a producer never sets them.
BROKER_HEADERS = frozenset(
    {
        "x-delivery-count",
        "x-death",
        "x-first-death-exchange",
        "x-first-death-queue",
        "x-first-death-reason",
        "x-last-death-exchange",
        "x-last-death-queue",
        "x-last-death-reason",
    }
)


def producer_properties(properties: dict[str, Any]) -> str:
    """The AMQP properties the producer set, as canonical JSON text ("" when there are none): the
    same on every redelivery of a message, different for two messages that differ in any."""
    kept = dict(properties)
    headers = kept.pop("headers", None)
    if isinstance(headers, dict):
        headers = {k: v for k, v in headers.items() if k not in BROKER_HEADERS}
        if headers:
            kept["headers"] = headers
    if not kept:
        return ""
    return json.dumps(_jsonable(kept), ensure_ascii=True, sort_keys=True)


def rejection(delivery: Delivery, reason: str, now: datetime, keep_body: bool = True) -> Rejection:
    """A Rejection that keeps the delivery byte-exact (or, with keep_body=False, its digest)."""
    digest = hashlib.sha256(delivery.body).hexdigest()
    # Same on every redelivery, different for different messages: the body with the properties
    # the producer set (message_id, app_id, headers, ...), so the same bad bytes from two
    # producers, or under two compression headers, are two rows. A message `rejected republish`
    # sent carries the header naming its row: rejected again, it is a new row, not a duplicate of
    # the one it came from. An oversize record has no body, so it has a key of its own: the same
    # bytes shoveled back and rejected later must still be kept.
    salt = producer_properties(delivery.properties)
    keyed = hashlib.sha256(salt.encode() + b"\0" + delivery.body).hexdigest() if salt else digest
    return Rejection(
        dedupe_key=("sha256:" if keep_body else "oversize:sha256:") + keyed,
        reason=reason[:1000],
        body=delivery.body if keep_body else None,
        body_size=len(delivery.body),
        body_sha256=digest,
        exchange=delivery.exchange,
        routing_key=delivery.routing_key,
        properties=properties_json(delivery.properties, delivery.raw_properties),
        redelivered=delivery.redelivered,
        received_at=now,
    )


def decode(delivery: Delivery, now: datetime, max_bytes: int = 64 * 1024 * 1024) -> Event | Rejection:
    """Decode one delivery; `now` (naive UTC) is the last-resort collector timestamp; a compressed
    body may grow to `max_bytes` when decompressed, no further."""
    try:
        return _to_event(delivery, now, max_bytes)
    except _Undecodable as exc:
        return rejection(delivery, str(exc), now)
