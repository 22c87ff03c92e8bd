"""`vitrage-drainer events` and `prune`: read and trim the stored history."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Mapping
from typing import Any

from drainer.cli import helptext
from drainer.cli.exits import Exit
from drainer.cli.options import connections, settings_from
from drainer.errors import ConfigError

log = logging.getLogger("drainer.cli")


def register(sub: Any) -> None:
    ev = helptext.page(
        sub,
        "events",
        "stored events as JSON lines on stdout, in id order",
        "Write the stored events as JSON lines (id, collector_timestamp, message_id, event_type,\n"
        "payload), in id order, read in keyset pages of 1000 rows (constant memory). Every filter\n"
        "narrows the selection; --event-type, --entity-type and --entity-id are each served by an\n"
        "index, and --after-id with --until-id selects exactly a snapshot's replay window.",
        [
            "vitrage-drainer events --after-id 41230 > replay.jsonl",
            "vitrage-drainer events --after-id 41230 --until-id 52000      # between two snapshots",
            "vitrage-drainer events --entity-id 3dcee183-ca42-4ccb-84af-9f0196b2e160 \\\n"
            "      --since 2026-11-24T08:00:00 --until 2026-11-24T09:00:00   # everything about one host",
            "vitrage-drainer events --event-type vitrage.alarm.activate --limit 10",
        ],
        [
            (0, "written (also when a reader such as `head` stops early)"),
            helptext.USAGE,
            helptext.UNAVAILABLE,
            helptext.NOPERM,
            helptext.CONFIG,
        ],
    )
    connections(ev)
    ev.add_argument("--after-id", type=int, help="only events with a larger id (replay after a snapshot)")
    ev.add_argument(
        "--until-id", type=int, help="only events with this id or a smaller one; with --after-id: a replay window"
    )
    ev.add_argument("--event-type", help="only this event_type (e.g. vitrage.alarm.activate, nova.instance)")
    ev.add_argument("--entity-type", help="only this entity_type (vitrage_entity_type, e.g. nova.host)")
    ev.add_argument("--entity-id", help="only this entity_id (the payload's vitrage_id, else its id)")
    ev.add_argument("--since", help="collector_timestamp at or after this ISO 8601 time (naive = UTC)")
    ev.add_argument("--until", help="collector_timestamp before this ISO 8601 time")
    ev.add_argument("--limit", type=int, help="at most this many events")
    ev.set_defaults(handler=run_events)

    pr = helptext.page(
        sub,
        "prune",
        "delete old events and old runs of the ledger in bounded chunks",
        "Delete events older than a snapshot (--before-id, Vitrage's expirer rule) or than an age\n"
        "(--older-than, on collector_timestamp), and runs of the ledger started before an age\n"
        "(--runs-older-than: those whose rows are all gone; each queue's newest successful run is\n"
        "kept), or Vitrage's alarm history (--history-older-than: alarms that ended before an age,\n"
        "with their changes and edges), in chunks of --chunk-size rows, one short transaction each.\n"
        "Each chunk of events also counts, per run of the ledger, the rows it deleted, so `verify`\n"
        "still balances. Run it as the schema owner.",
        [
            "vitrage-drainer prune --before-id 41230",
            "vitrage-drainer prune --older-than 30d --runs-older-than 90d --dry-run",
            "vitrage-drainer prune --history-older-than 30d",
        ],
        [(0, "deleted (or counted, with --dry-run)"), helptext.USAGE, helptext.UNAVAILABLE, helptext.NOPERM],
    )
    connections(pr)
    which = pr.add_mutually_exclusive_group()
    which.add_argument("--before-id", type=int, help="delete events with id < ID (Vitrage's expirer rule)")
    which.add_argument("--older-than", metavar="AGE", help="delete events whose collector_timestamp is older, e.g. 30d")
    which.add_argument(
        "--history-older-than",
        metavar="AGE",
        help="delete Vitrage alarm history: alarms that ended more than AGE ago, with their changes and edges "
        "(what vitrage-persistor's expirer does with [persistency] alarm_history_ttl, 30d by default)",
    )
    pr.add_argument(
        "--runs-older-than",
        metavar="AGE",
        help="delete runs of the ledger (drainer_runs) started before this age whose rows are all gone, "
        "e.g. 90d; each queue's newest successful run is kept",
    )
    pr.add_argument("--chunk-size", type=int, default=10_000, help="rows per transaction (default 10000)")
    pr.add_argument("--dry-run", action="store_true", help="count, delete nothing")
    pr.set_defaults(handler=run_prune)


def run_events(args: argparse.Namespace, env: Mapping[str, str], run_id: str) -> int:
    from drainer import schema
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
    where = reads.EventFilter(
        after_id=args.after_id,
        until_id=args.until_id,
        since=bounds["since"],
        until=bounds["until"],
        event_type=args.event_type,
        entity_type=args.entity_type,
        entity_id=args.entity_id,
    )
    store = Store.open(settings.require_db_url(), settings)
    try:
        schema.check(store)
        rows = reads.iter_events(store, where, args.limit)
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

    if all(getattr(args, a) is None for a in ("before_id", "older_than", "history_older_than", "runs_older_than")):
        raise ConfigError("prune needs --before-id, --older-than, --history-older-than or --runs-older-than")
    settings = settings_from(args, env)
    store = Store.open(settings.require_db_url(), settings)
    try:
        total = 0
        if args.history_older_than:
            total = prune.prune_history(store, args.history_older_than, args.chunk_size, args.dry_run)
        elif args.before_id is not None or args.older_than is not None:
            total = prune.prune(store, args.before_id, args.older_than, args.chunk_size, args.dry_run)
        runs = 0
        if args.runs_older_than:
            runs = prune.prune_runs(store, args.runs_older_than, args.chunk_size, args.dry_run)
    finally:
        store.dispose()
    key = "would_delete" if args.dry_run else "deleted"
    fields = {"event": "prune", key: total, f"runs_{key}": runs, "dry_run": args.dry_run, "exit_code": 0}
    log.info("prune finished", extra=fields)
    return Exit.OK
