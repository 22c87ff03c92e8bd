"""`prune`: delete old events in bounded chunks, like Vitrage's expirer (id < snapshot id) or a TTL."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta

from drainer.db import maintenance
from drainer.db.engine import Store
from drainer.errors import ConfigError

log = logging.getLogger(__name__)

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_age(text: str) -> timedelta:
    """`30d`, `12h`, `90m`, `3600s`, `2w` -> timedelta."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text)
    if not match:
        raise ConfigError(f"age {text!r} must be a number and a unit: s, m, h, d or w (e.g. 30d)")
    return timedelta(**{_UNITS[match[2]]: float(match[1])})


def prune(store: Store, before_id: int | None, older_than: str | None, chunk: int, dry_run: bool) -> int:
    """Delete (or with dry_run, count) the events selected; return how many."""
    if (before_id is None) == (older_than is None):
        raise ConfigError("prune needs exactly one of --before-id or --older-than")
    if chunk < 1:
        raise ConfigError("chunk size must be at least 1")
    cutoff = datetime.now(UTC).replace(tzinfo=None) - parse_age(older_than) if older_than else None
    total = 0
    for deleted in maintenance.prune(store, before_id, cutoff, chunk, dry_run):
        total += deleted
        if not dry_run:
            log.info("pruned a chunk", extra={"event": "prune_chunk", "deleted": deleted, "total": total})
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
