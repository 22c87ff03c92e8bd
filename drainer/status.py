"""`status`: the queue and the table at a glance, as one object; usable as a monitoring probe."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from drainer import schema
from drainer.broker import Broker
from drainer.config import Settings
from drainer.db import lease as leases
from drainer.db import reads, runs
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
        report["last_run"] = _run_line(runs.last(store, settings.queue_name))
        report["last_success"] = _run_line(runs.last(store, settings.queue_name, successful=True))
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
        report["oversize_queue_depth"] = broker.depth_if_exists(settings.oversize_queue_name)
    finally:
        broker.close()


def _run_line(run: dict[str, Any] | None) -> dict[str, Any] | None:
    """A run of the ledger as `status` shows it (no holder: it names a host and a pid)."""
    if run is None:
        return None
    keys = ("run_id", "exit_code", "error", "batches", "fetched", "stored", "duplicates", "rejected", "oversize")
    line: dict[str, Any] = {key: run[key] for key in keys}
    line["started_at"], line["ended_at"] = _iso(run["started_at"]), _iso(run["ended_at"])
    return line


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
        "rejected_republished": None,
        "oversize_queue": settings.oversize_queue_name,
        "oversize_queue_depth": None,
        "last_run": None,
        "last_success": None,
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
    return "\n".join(f"{key:<{width}}  {_text(value)}" for key, value in report.items())


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict):  # a run: its fields on one line
        return " ".join(f"{k}={'-' if v is None else v}" for k, v in value.items())
    return str(value)
