"""`vitrage-drainer lease show|release`: the per-queue single-writer leases."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping
from typing import Any

from drainer.cli.exits import DB_NOPERM, DB_UNAVAILABLE, Exit
from drainer.cli.listing import emit
from drainer.cli.options import CONFIG, DATABASE, TIMEOUTS, Option, Parser, add_command, settings_from

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
    "2 x --heartbeat + 10 s, 210 s by default) is not acceptable. A holder ending in\n"
    ":awaiting-broker-requeue lost its broker connection with messages out: release it once\n"
    "`status` shows them back in the queue."
)


def register(sub: Any) -> None:
    top = sub.add_parser(
        "lease",
        help="show or release the per-queue leases (drainer_leases)",
        description="Each queue has one lease row: the drainer holding it is the only one writing batches for\n"
        "the queue, which keeps ids in queue order. A run takes it at start, renews it with every\n"
        "batch and releases it at its end; a killed run's lease expires on its own.\n"
        "`vitrage-drainer lease show --help` and `lease release --help` say more.",
    )
    verbs = top.add_subparsers(dest="verb", metavar="VERB", required=True, parser_class=Parser)
    show = add_command(
        verbs,
        "show",
        summary="every queue's lease: state, holder, when taken and renewed, seconds left",
        description="List every lease row: free, held (with the holder host:pid:run_id:pidns and the seconds it\n"
        "has left), expired (its holder stopped renewing it), or held by a dead process (a process\n"
        "of this host that no longer runs: the next run takes the lease over at once). Reads only.",
        options=(*CONFIG, *DATABASE, *TIMEOUTS),
        examples=[
            ("vitrage-drainer lease show", "a table"),
            ("vitrage-drainer lease show --json", "one JSON object per lease, for a script"),
        ],
        exits=[(Exit.OK, "listed"), DB_UNAVAILABLE, DB_NOPERM, Exit.CONFIG],
        handler=run_show,
    )
    Option("--json", "one JSON object per lease and line", kwargs={"action": "store_true"}).add_to(show)

    release = add_command(
        verbs,
        "release",
        summary="remove a queue's lease row; refuses one held by a live drainer unless --force",
        description="Remove the lease row of QUEUE when it is free, expired, or held by a dead process of this\n"
        "host; the next run creates it again. A lease held by a live drainer is refused (exit 75):\n"
        "that drainer releases it itself when its run ends.\n\n" + FORCE_RISK + "\n\n"
        "Run it as the schema owner (the drain account may not DELETE lease rows).",
        options=(*CONFIG, *DATABASE, *TIMEOUTS),
        examples=[
            ("vitrage-drainer lease release vitrage_persistor.info", "free, expired or dead: removed"),
            (
                "vitrage-drainer lease release vitrage_persistor.info --force",
                "its holder's node is gone and the lease has not expired yet",
            ),
        ],
        exits=[
            (Exit.OK, "released"),
            (Exit.NOINPUT, "the queue has no lease row"),
            DB_UNAVAILABLE,
            (Exit.TEMPFAIL, "a live drainer holds it (use --force only as explained above)"),
            DB_NOPERM,
            Exit.CONFIG,
        ],
        handler=run_release,
        usage="QUEUE [--force] [options]",
    )
    release.add_argument("lease_queue", metavar="QUEUE", help="the queue whose lease to release")
    Option("--force", "release it even from a live holder (see above)", kwargs={"action": "store_true"}).add_to(release)


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
    emit(rows, COLUMNS, args.json)
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
