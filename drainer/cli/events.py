"""`vitrage-drainer events` and `prune`: read and trim the stored history."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Mapping
from typing import Any

from drainer.cli.exits import Exit
from drainer.cli.options import connections, settings_from
from drainer.errors import ConfigError

log = logging.getLogger("drainer.cli")


def register(sub: Any) -> None:
    ev = sub.add_parser("events", help="stored events as JSON lines on stdout, in id order")
    connections(ev)
    ev.add_argument("--after-id", type=int, help="only events with a larger id (replay after a snapshot)")
    ev.add_argument("--since", help="collector_timestamp at or after this ISO 8601 time (naive = UTC)")
    ev.add_argument("--until", help="collector_timestamp before this ISO 8601 time")
    ev.add_argument("--limit", type=int, help="at most this many events")
    ev.set_defaults(handler=run_events)

    pr = sub.add_parser("prune", help="delete old events in bounded chunks")
    connections(pr)
    which = pr.add_mutually_exclusive_group(required=True)
    which.add_argument("--before-id", type=int, help="delete events with id < ID (Vitrage's expirer rule)")
    which.add_argument("--older-than", metavar="AGE", help="delete events whose collector_timestamp is older, e.g. 30d")
    which.add_argument(
        "--history-older-than",
        metavar="AGE",
        help="delete Vitrage alarm history: alarms that ended more than AGE ago, with their changes and edges "
        "(what vitrage-persistor's expirer does with [persistency] alarm_history_ttl, 30d by default)",
    )
    pr.add_argument("--chunk-size", type=int, default=10_000, help="rows per transaction (default 10000)")
    pr.add_argument("--dry-run", action="store_true", help="count, delete nothing")
    pr.set_defaults(handler=run_prune)


def run_events(args: argparse.Namespace, env: Mapping[str, str], run_id: str) -> int:
    from drainer.db import reads
    from drainer.db.engine import Store
    from drainer.envelope import parse_timestamp
    from drainer.export import write_events

    settings = settings_from(args, env)
    bounds = {}
    for name in ("since", "until"):
        raw = getattr(args, name)
        bounds[name] = parse_timestamp(raw) if raw else None
        if raw and bounds[name] is None:
            raise ConfigError(f"--{name} {raw!r} is not an ISO 8601 time")
    if args.limit is not None and args.limit < 0:
        raise ConfigError("--limit must not be negative")
    store = Store.open(settings.require_db_url(), settings)
    try:
        rows = reads.iter_events(store, args.after_id, bounds["since"], bounds["until"], args.limit)
        count = write_events(rows, sys.stdout)
        sys.stdout.flush()
    except BrokenPipeError:  # `vitrage-drainer events | head`: the reader has what it wanted
        return Exit.OK
    finally:
        store.dispose()
    log.info("events exported", extra={"event": "export", "exported": count, "exit_code": 0})
    return Exit.OK


def run_prune(args: argparse.Namespace, env: Mapping[str, str], run_id: str) -> int:
    from drainer import prune
    from drainer.db.engine import Store

    settings = settings_from(args, env)
    store = Store.open(settings.require_db_url(), settings)
    try:
        if args.history_older_than:
            total = prune.prune_history(store, args.history_older_than, args.chunk_size, args.dry_run)
        else:
            total = prune.prune(store, args.before_id, args.older_than, args.chunk_size, args.dry_run)
    finally:
        store.dispose()
    key = "would_delete" if args.dry_run else "deleted"
    log.info("prune finished", extra={"event": "prune", key: total, "dry_run": args.dry_run, "exit_code": 0})
    return Exit.OK
