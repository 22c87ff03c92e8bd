"""`status`: the queue and the table at a glance, as one object; usable as a monitoring probe."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from drainer import schema
from drainer.broker import Broker
from drainer.config import Settings
from drainer.db import lease as leases
from drainer.db import reads
from drainer.db.engine import Store
from drainer.errors import DrainerError, QueueNotSupported, SchemaOutdated


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="microseconds") + "Z" if value else None


def _database_part(settings: Settings, report: dict[str, Any], errors: list[DrainerError]) -> None:
    store = Store.open(settings.require_db_url(), settings)
    try:
        try:
            report["schema_version"] = schema.check(store)
        except SchemaOutdated as exc:
            errors.append(exc)
            return
        facts = reads.overview(store)
        now = datetime.now(UTC).replace(tzinfo=None)
        newest = facts.pop("newest")
        report.update(facts)
        report["newest_collector_timestamp"] = _iso(newest)
        report["lag_seconds"] = round((now - newest).total_seconds(), 3) if newest else None
        lease = leases.holder_of(store, settings.queue_name)
        if lease and lease.holder and lease.expires_at and lease.expires_at > store.clock():
            report["lease_holder"] = lease.holder
            report["lease_expires_at"] = _iso(lease.expires_at)
    finally:
        store.dispose()


def _broker_part(settings: Settings, report: dict[str, Any]) -> None:
    broker = Broker.connect(settings)
    try:
        report["queue_depth"], report["consumers"] = broker.depth(settings.queue_name)
        if report["queue_depth"] == 0:
            # A stream reports 0 ready messages however much it holds; only basic.get tells.
            try:
                broker.probe_readable(settings.queue_name)
            except QueueNotSupported:
                report["queue_type"], report["queue_depth"] = "stream", None
                raise
    finally:
        broker.close()


def collect(settings: Settings) -> tuple[dict[str, Any], list[DrainerError]]:
    """The report, and the errors met on the way (the CLI turns the first into the exit code)."""
    report: dict[str, Any] = {
        "queue": settings.queue_name,
        "queue_type": None,  # named when the drainer cannot read it (a stream)
        "queue_depth": None,
        "consumers": None,
        "events": None,
        "last_event_id": None,
        "newest_collector_timestamp": None,
        "lag_seconds": None,
        "rejected": None,
        "schema_version": None,
        "lease_holder": None,
        "lease_expires_at": None,
    }
    errors: list[DrainerError] = []
    for part in (lambda: _database_part(settings, report, errors), lambda: _broker_part(settings, report)):
        try:
            part()
        except DrainerError as exc:
            errors.append(exc)
    return report, errors


def render_text(report: dict[str, Any]) -> str:
    """A short aligned listing for a terminal."""
    width = max(len(k) for k in report)
    return "\n".join(f"{key:<{width}}  {'-' if value is None else value}" for key, value in report.items())
