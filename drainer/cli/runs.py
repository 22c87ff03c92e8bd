"""`vitrage-drainer runs`: the run ledger, newest first."""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Mapping
from typing import Any

from drainer.cli import helptext
from drainer.cli.exits import Exit
from drainer.cli.options import connections, settings_from
from drainer.errors import ConfigError

log = logging.getLogger("drainer.cli")

COLUMNS = (
    "run_id",
    "started_at",
    "duration_s",
    "state",
    "exit_code",
    "error",
    "batches",
    "fetched",
    "stored",
    "duplicates",
    "rejected",
    "oversize",
    "first_id",
    "last_id",
)


def register(sub: Any) -> None:
    p = helptext.page(
        sub,
        "runs",
        "the run ledger: one row per drain run, newest first",
        "List the drain runs of the queue from drainer_runs, newest first: when each started and\n"
        "ended, its exit code, and what its committed batches fetched, stored, absorbed as\n"
        "duplicates, rejected and moved to the oversize queue, with the first and last event id.\n"
        "A run's counters are written inside each batch's own transaction, so they are exact up to\n"
        "its last commit even when the run was killed; such a run shows `no end recorded`.",
        [
            "vitrage-drainer runs --limit 5",
            "vitrage-drainer runs --json | jq -c 'select(.exit_code != 0)'",
        ],
        [(0, "listed"), helptext.USAGE, helptext.UNAVAILABLE, helptext.NOPERM, helptext.CONFIG],
    )
    connections(p)
    p.add_argument("--limit", type=int, default=20, help="at most this many runs (default 20)")
    p.add_argument("--json", action="store_true", help="one JSON object per run and line")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, env: Mapping[str, str], run_id: str) -> int:
    from drainer import ledger, schema
    from drainer.db.engine import Store

    if args.limit < 1:
        raise ConfigError("--limit must be at least 1")
    settings = settings_from(args, env)
    store = Store.open(settings.require_db_url(), settings)
    try:
        schema.check(store)
        rows = ledger.report(store, settings.queue_name, args.limit)
    finally:
        store.dispose()
    if args.json:
        for row in rows:
            print(json.dumps(row))
    else:
        print(helptext.table(rows, COLUMNS))
    log.info("runs listed", extra={"event": "runs", "listed": len(rows), "exit_code": 0})
    return Exit.OK
