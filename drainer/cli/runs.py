"""`vitrage-drainer runs`: the run ledger, newest first."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping
from typing import Any

from drainer.cli.exits import DB_NOPERM, DB_UNAVAILABLE, Exit
from drainer.cli.listing import emit
from drainer.cli.options import CONFIG, DATABASE, TIMEOUTS, Option, add_command, settings_from
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
    p = add_command(
        sub,
        "runs",
        summary="the run ledger: one row per drain run of the queue, newest first",
        description="List the drain runs of the queue from drainer_runs, newest first: when each started and\n"
        "how long it took, its state and exit code, and what its committed batches fetched, stored,\n"
        "absorbed as duplicates, rejected and moved to the oversize queue, with the first and last\n"
        "event id. A run's counters are written inside each batch's own transaction, so they are\n"
        "exact up to its last commit even when the run was killed; such a run shows `no end\n"
        "recorded`. Reads only.",
        options=(*CONFIG, "--topic", "--queue", *DATABASE, *TIMEOUTS),
        examples=[
            ("vitrage-drainer runs --limit 5", "the last five runs, as a table"),
            ("vitrage-drainer runs --json | jq -c 'select(.exit_code != 0)'", "the runs that failed, for a script"),
        ],
        exits=[(Exit.OK, "listed"), DB_UNAVAILABLE, DB_NOPERM, Exit.CONFIG],
        handler=run,
    )
    Option(
        "--limit", "at most this many runs", default="20", kwargs={"type": int, "default": 20, "metavar": "N"}
    ).add_to(p)
    Option("--json", "one JSON object per run and line", kwargs={"action": "store_true"}).add_to(p)


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
    emit(rows, COLUMNS, args.json)
    log.info("runs listed", extra={"event": "runs", "listed": len(rows), "exit_code": 0})
    return Exit.OK
