"""`vitrage-drainer lease show|release`: the per-queue single-writer leases."""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Mapping
from typing import Any

from drainer.cli import helptext
from drainer.cli.exits import Exit
from drainer.cli.options import Parser, connections, settings_from

log = logging.getLogger("drainer.cli")

COLUMNS = ("queue", "state", "holder", "acquired_at", "renewed_at", "expires_in_s")

FORCE_RISK = (
    "--force releases a lease even while its holder looks alive (it has not expired, and its\n"
    "process is not provably gone: it runs on another host, or its host is unreachable). What it\n"
    "risks: if that drainer is in fact still running, the release waits for the batch it is\n"
    "writing to commit (the lease row is locked meanwhile), then its next batch fails its lease\n"
    "check (LeaseLost): that batch is rolled back and returned to the queue and the run exits 75.\n"
    "Nothing is lost and nothing is stored twice, and ids keep following queue order, but the\n"
    "returned messages are redelivered: on a quorum queue their delivery count grows and they may\n"
    "come back in another order. Use it when the holder is known to be gone (a lost node, a\n"
    "deleted pod) and waiting for the lease to expire (--retry-seconds + 2 x --socket-timeout +\n"
    "10 s, 90 s by default) is not acceptable."
)


def register(sub: Any) -> None:
    top = helptext.page(
        sub,
        "lease",
        "show or release the per-queue leases (drainer_leases)",
        "Each queue has one lease row: the drainer holding it is the only one writing batches for the\n"
        "queue, which keeps ids in queue order. A run takes it at start, renews it with every batch\n"
        "and releases it at its end; a killed run's lease expires on its own.",
        ["vitrage-drainer lease show", "vitrage-drainer lease release vitrage_persistor.info"],
        [(0, "done"), helptext.USAGE],
    )
    verbs = top.add_subparsers(dest="verb", required=True, parser_class=Parser)

    show = helptext.page(
        verbs,
        "show",
        "every queue's lease: state, holder, when taken and renewed, seconds left",
        "List every lease row: free, held (with the holder host:pid:run_id:pidns and the seconds it\n"
        "has left), expired (its holder stopped renewing it), or held by a dead process (a process\n"
        "of this host that no longer runs: the next run takes the lease over at once).",
        ["vitrage-drainer lease show", "vitrage-drainer lease show --json"],
        [(0, "listed"), helptext.USAGE, helptext.UNAVAILABLE, helptext.NOPERM, helptext.CONFIG],
    )
    connections(show)
    show.add_argument("--json", action="store_true", help="one JSON object per lease and line")
    show.set_defaults(handler=run_show)

    release = helptext.page(
        verbs,
        "release",
        "remove a queue's lease row; refuses one held by a live drainer unless --force",
        "Remove the lease row of QUEUE when it is free, expired, or held by a dead process of this\n"
        "host; the next run creates it again. A lease held by a live drainer is refused (exit 75):\n"
        "that drainer releases it itself when its run ends.\n\n" + FORCE_RISK + "\n\n"
        "Run it as the schema owner (the drain account may not DELETE lease rows).",
        [
            "vitrage-drainer lease release vitrage_persistor.info",
            "vitrage-drainer lease release vitrage_persistor.info --force   # its holder's node is gone",
        ],
        [
            (0, "released"),
            (66, "the queue has no lease row"),
            (75, "a live drainer holds it (use --force only as --help explains)"),
            helptext.USAGE,
            helptext.UNAVAILABLE,
            helptext.NOPERM,
            helptext.CONFIG,
        ],
    )
    connections(release)
    release.add_argument("lease_queue", metavar="QUEUE", help="the queue whose lease to release")
    release.add_argument("--force", action="store_true", help="release it even from a live holder (see above)")
    release.set_defaults(handler=run_release)


def _store(args: argparse.Namespace, env: Mapping[str, str]) -> Any:
    from drainer import schema
    from drainer.db.engine import Store

    settings = settings_from(args, env)
    store = Store.open(settings.require_db_url(), settings)
    try:
        schema.check(store)
    except BaseException:
        store.dispose()
        raise
    return store


def run_show(args: argparse.Namespace, env: Mapping[str, str], run_id: str) -> int:
    from drainer import leasing

    store = _store(args, env)
    try:
        rows = leasing.show(store)
    finally:
        store.dispose()
    if args.json:
        for row in rows:
            print(json.dumps(row))
    else:
        print(helptext.table(rows, COLUMNS))
    log.info("leases listed", extra={"event": "lease_show", "listed": len(rows), "exit_code": 0})
    return Exit.OK


def run_release(args: argparse.Namespace, env: Mapping[str, str], run_id: str) -> int:
    from drainer import leasing

    store = _store(args, env)
    try:
        row = leasing.release(store, args.lease_queue, args.force)
    finally:
        store.dispose()
    print(f"lease of {args.lease_queue} released (it was {row['state']})")
    log.info(
        "lease released",
        extra={"event": "lease_release", "queue": args.lease_queue, "was": row["state"], "exit_code": 0},
    )
    return Exit.OK
