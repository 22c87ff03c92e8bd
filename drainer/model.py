"""The values that travel between broker, envelope, store and drain; plain, frozen, library-free."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message as fetched with basic_get, before decoding."""

    tag: int
    body: bytes
    exchange: str
    routing_key: str
    redelivered: bool
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Event:
    """A decoded notification, ready to become one `events` row."""

    message_id: str
    collector_timestamp: datetime  # naive, UTC
    event_type: str | None
    publisher_id: str | None
    priority: str | None
    entity_type: str | None
    entity_id: str | None
    action: str | None
    payload: str  # the payload as JSON text
    entity_category: str | None = None  # vitrage_category (RESOURCE, ALARM)
    related_id: str | None = None  # a causal relationship's target (entity_id is its source)


@dataclass(frozen=True, slots=True)
class Rejection:
    """A message that cannot become an event; kept byte-exact in `rejected_messages`."""

    dedupe_key: str
    reason: str
    body: bytes | None  # None only when the body lives elsewhere (oversize: dead-letter queue)
    body_size: int
    body_sha256: str
    exchange: str
    routing_key: str
    properties: str  # AMQP properties as JSON text
    redelivered: bool
    received_at: datetime  # naive, UTC


def utcnow() -> datetime:
    """Now as a naive UTC datetime, the form every stored timestamp takes."""
    return datetime.now(UTC).replace(tzinfo=None)
