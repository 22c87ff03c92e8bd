"""`vitrage-drainer rebuild-history`: apply stored alarm-history notifications to Vitrage's tables."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from drainer.cli.exits import Exit
from drainer.cli.options import connections, settings_from
from drainer.errors import ConfigError

log = logging.getLogger("drainer.cli")


def register(sub: Any) -> None:
    rb = sub.add_parser(
        "rebuild-history",
        help="apply stored vitrage.alarm.* / causal_relationship.* notifications to Vitrage's history tables",
        description="Apply every stored alarm-history notification that was not applied yet (or could not be) "
        "to Vitrage's alarms, edges and changes, in id order, in bounded transactions; one already "
        "applied is never applied twice, so it can be interrupted and run again. Use it after enabling "
        "--history vitrage on a database that already holds events, or after fixing what kept "
        "notifications from applying (see `history_not_applied` records).",
        epilog="example: vitrage-drainer rebuild-history --config-file /etc/vitrage/vitrage.conf --from-id 1\n"
        "exit codes: 0 done; 75 a drain holds the queue's lease (suspend the CronJob) or interrupted; "
        "78 schema missing (run migrate --history vitrage); 69 database unreachable; 77 refused",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    connections(rb)
    rb.add_argument("--from-id", type=int, default=1, help="start at this drainer_events id (default 1)")
    rb.add_argument("--chunk-size", type=int, default=1000, help="notifications per transaction (default 1000)")
    rb.set_defaults(handler=run)


def run(args: argparse.Namespace, env: Mapping[str, str], run_id: str) -> int:
    from drainer.rebuild import rebuild
    from drainer.signals import StopFlag

    if args.chunk_size < 1 or args.from_id < 0:
        raise ConfigError("--chunk-size must be at least 1 and --from-id not negative")
    settings = settings_from(args, env)
    stop = StopFlag()
    stop.install()
    try:
        result = rebuild(settings, run_id, stop, args.from_id, args.chunk_size)
    finally:
        stop.restore()
    log.info("history rebuilt", extra={"event": "rebuild", **asdict(result), "exit_code": 0})
    return Exit.OK
