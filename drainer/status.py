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
        # The age of the newest stored event (its collector_timestamp), not of what is waiting: AMQP
        # tells only how many messages wait, and reading the oldest one would take it from a drain.
        report["newest_event_age_s"] = round((now - newest).total_seconds(), 3) if newest else None
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
        "newest_event_age_s": None,
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
        ("rejected messages", _rejected_text(report)),
        ("oversize queue", _oversize_text(report)),
        ("last run", _run_text(report.get("last_run"))),
        ("last success", _run_text(report.get("last_success"))),
        ("schema version", report.get("schema_version") or "unknown"),
        ("lease", lease),
    ]
    rows += [("error", f"{e['error']}: {e['detail']}") for e in report.get("errors", [])]
    rows.append(("exit code", outcome))
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label:<{width}}  {value}" for label, value in rows)


def _rejected_text(report: dict[str, Any]) -> str:
    pending, republished = report.get("rejected"), report.get("rejected_republished")
    if not isinstance(pending, int):
        return "unknown"
    text = f"{pending:,} pending" + (" (`rejected list`)" if pending else "")
    return f"{text}, {republished:,} republished" if republished else text


def _oversize_text(report: dict[str, Any]) -> str:
    depth = report.get("oversize_queue_depth")
    if depth is None:
        return f"{report['oversize_queue']}: none" if report.get("queue_depth") is not None else "unknown"
    return f"{report['oversize_queue']}: {depth:,} parked" + (" (`oversize list`)" if depth else "")


def _run_text(run: dict[str, Any] | None) -> str:
    """A run of the ledger in one line: when, how it ended, what it did."""
    if run is None:
        return "none recorded"
    started = (run["started_at"] or "?")[:19].replace("T", " ")
    if run["exit_code"] is None:
        end = "no end recorded (killed, or still running)"
    else:
        end = f"exit {run['exit_code']}" + (f" {run['error']}" if run["error"] else "")
    batches = f"{run['batches']:,} batch" + ("" if run["batches"] == 1 else "es")
    return (
        f"{run['run_id']} started {started} UTC, {end}: {batches}, {run['fetched']:,} fetched, "
        f"{run['stored']:,} stored, {run['duplicates']:,} duplicates, {run['rejected']:,} rejected"
    )
