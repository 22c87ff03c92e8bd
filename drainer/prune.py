"""`prune`: delete old events in bounded chunks, like Vitrage's expirer (id < snapshot id) or a TTL;
say first, in one sentence, what a cutoff selects, and tell when that needs a confirmation."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from drainer.db import maintenance, runs
from drainer.db.engine import Store
from drainer.db.maintenance import Selection
from drainer.errors import ConfigError

log = logging.getLogger(__name__)

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_age(text: str) -> timedelta:
    """`30d`, `12h`, `90m`, `3600s`, `2w` -> timedelta, greater than zero. Raises ConfigError."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text)
    if not match:
        raise ConfigError(f"age {text!r} must be a positive number and a unit: s, m, h, d or w (e.g. 30d or 12h)")
    age = timedelta(**{_UNITS[match[2]]: float(match[1])})
    if age <= timedelta(0):
        raise ConfigError(f"age {text!r} must be greater than zero")
    return age


@dataclass(frozen=True)
class Plan:
    """A cutoff and the events it selects."""

    before_id: int | None
    older_than: datetime | None  # the cutoff as a naive UTC time
    age: str | None  # the age as given (30d)
    selection: Selection

    @property
    def share(self) -> float:
        return self.selection.count / self.selection.total if self.selection.total else 0.0

    @property
    def everything(self) -> bool:
        return self.selection.total > 0 and self.selection.count == self.selection.total


def _when(value: datetime | None) -> str:
    return value.isoformat(sep=" ", timespec="seconds") if value else "?"


def _percent(share: float) -> str:
    value = share * 100
    return f"{value:.0f}%" if value >= 1 or value == 0 else f"{value:.2g}%"


def plan(store: Store, before_id: int | None, older_than: str | None) -> Plan:
    """Count what the cutoff selects: exactly one of before_id and older_than (an age, 30d).
    Raises ConfigError, DatabaseAccessDenied, DatabaseUnavailable."""
    if (before_id is None) == (older_than is None):
        raise ConfigError("prune needs exactly one of --before-id or --older-than")
    cutoff = datetime.now(UTC).replace(tzinfo=None) - parse_age(older_than) if older_than is not None else None
    return Plan(before_id, cutoff, older_than, maintenance.selection(store, before_id, cutoff))


def describe(p: Plan) -> str:
    """The one sentence a dry run and a confirmation both show."""
    s = p.selection
    rule = f"id < {p.before_id}" if p.before_id is not None else f"collector_timestamp before {_when(p.older_than)} UTC"
    if p.age:
        rule += f" (older than {p.age})"
    head = f"prune would delete {s.count:,} of {s.total:,} stored events"
    if not s.count:
        return f"{head}: none has {rule}"
    every = ", every stored event" if p.everything else ""
    return (
        f"{head} ({_percent(p.share)}{every}): those with {rule}, ids {s.first_id} to {s.last_id}, "
        f"collector_timestamp {_when(s.oldest)} to {_when(s.newest)} UTC"
    )


def confirmation_needed(p: Plan, max_share: float) -> str | None:
    """Why this plan needs --yes (or a yes at the terminal), or None."""
    if p.everything:
        return "it would delete every stored event"
    if p.share > max_share:
        return f"it would delete more than --max-share {_percent(max_share)} of the stored events"
    return None


def execute(store: Store, p: Plan, chunk: int) -> int:
    """Delete what the plan selected (never an id past the last one it showed); return how many."""
    if chunk < 1:
        raise ConfigError("chunk size must be at least 1")
    total = 0
    if not p.selection.count or p.selection.last_id is None:
        return total
    for deleted in maintenance.prune(store, p.before_id, p.older_than, p.selection.last_id, chunk):
        total += deleted
        log.info("pruned a chunk", extra={"event": "prune_chunk", "deleted": deleted, "total": total})
    return total


def prune_runs(store: Store, older_than: str, chunk: int, dry_run: bool) -> int:
    """Delete (or with dry_run, count) the ledger's runs started before the age, keeping each
    queue's newest successful run; return how many."""
    if chunk < 1:
        raise ConfigError("chunk size must be at least 1")
    cutoff = datetime.now(UTC).replace(tzinfo=None) - parse_age(older_than)
    total = 0
    for deleted in runs.trim(store, cutoff, chunk, dry_run):
        total += deleted
        if not dry_run:
            log.info("pruned runs", extra={"event": "prune_runs_chunk", "deleted": deleted, "total": total})
    return total


def prune_history(store: Store, older_than: str, chunk: int, dry_run: bool) -> int:
    """Delete (or with dry_run, count) Vitrage alarms that ended more than `older_than` ago, with
    their changes and edges; return how many alarms. vitrage-persistor does this every minute with
    `[persistency] alarm_history_ttl` (vitrage/persistency/service.py); with it stopped, run this."""
    from drainer.db import history as db_history

    if chunk < 1:
        raise ConfigError("chunk size must be at least 1")
    ht = db_history.build()
    db_history.check_tables(store, ht)
    cutoff = datetime.now(UTC).replace(tzinfo=None) - parse_age(older_than)
    if dry_run:
        return db_history.count_ended_before(store, ht, cutoff)
    total = 0
    for deleted in db_history.expire(store, ht, cutoff, chunk):
        total += deleted
        log.info("expired alarm history", extra={"event": "prune_history_chunk", "deleted": deleted, "total": total})
    return total
