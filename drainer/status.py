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
        # The age of the newest stored event (its collector_timestamp), not of what is waiting: AMQP
        # tells only how many messages wait, and reading the oldest one would take it from a drain.
        report["newest_event_age_s"] = round((now - newest).total_seconds(), 3) if newest else None
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
        "newest_event_age_s": None,
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


def _count(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else "unknown"


def _ago(seconds: float) -> str:
    if seconds < 0:
        return f"{_span(-seconds)} in the future (check the collector's clock)"
    return f"{_span(seconds)} ago"


def _span(seconds: float) -> str:
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "min"), (secs, "s")]
    shown = [f"{n} {unit}" for n, unit in parts if n][:2]
    return " ".join(shown) if shown else "0 s"


def render_text(report: dict[str, Any], outcome: str) -> str:
    """The report as a two-column table for a person: counts with thousands separators, times in
    UTC with their age, the lease and every error in a sentence, and `outcome` (the exit code, as
    the CLI names it) last."""
    newest = report.get("newest_collector_timestamp")
    if newest:
        newest = f"{newest[:19].replace('T', ' ')} UTC, {_ago(report['newest_event_age_s'])}"
    elif report.get("events") == 0:
        newest = "none stored yet"
    if report.get("lease_holder"):
        lease = f"held by {report['lease_holder']} until {report['lease_expires_at'][:19].replace('T', ' ')} UTC"
    else:
        lease = "free" if report.get("schema_version") else "unknown"
    rows = [
        ("queue", report["queue"]),
        ("waiting messages", _count(report.get("queue_depth"))),
        ("consumers", _count(report.get("consumers"))),
        ("stored events", _count(report.get("events"))),
        ("last event id", report.get("last_event_id") or ("none" if report.get("events") == 0 else "unknown")),
        ("newest event", newest or "unknown"),
        ("rejected messages", _count(report.get("rejected"))),
        ("schema version", report.get("schema_version") or "unknown"),
        ("lease", lease),
    ]
    rows += [("error", f"{e['error']}: {e['detail']}") for e in report.get("errors", [])]
    rows.append(("exit code", outcome))
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label:<{width}}  {value}" for label, value in rows)
