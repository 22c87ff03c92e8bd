"""`vitrage-drainer rebuild-history`: apply stored alarm-history notifications to Vitrage's tables."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from drainer.cli.exits import DB_NOPERM, DB_UNAVAILABLE, Exit
from drainer.cli.options import CONFIG, DATABASE, TIMEOUTS, Option, add_command, settings_from
from drainer.errors import ConfigError

log = logging.getLogger("drainer.cli")


def register(sub: Any) -> None:
    parser = add_command(
        sub,
        "rebuild-history",
        summary="apply stored vitrage.alarm.* / causal_relationship.* notifications to Vitrage's history tables",
        description="Apply every stored alarm-history notification that was not applied yet (or could not be)\n"
        "to Vitrage's alarms, edges and changes, in id order, in bounded transactions; one already\n"
        "applied is never applied twice, so it can be interrupted and run again. Use it after enabling\n"
        "--history vitrage on a database that already holds events, or after fixing what kept\n"
        "notifications from applying (see `history_not_applied` records). It takes the queue's lease\n"
        "(--topic or --queue name it; the broker itself is not contacted).",
        options=(*CONFIG, *DATABASE, "--topic", "--queue", *TIMEOUTS, "--lock-wait-timeout"),
        examples=[
            (
                "vitrage-drainer rebuild-history --config-file /etc/vitrage/vitrage.conf --from-id 1",
                "apply everything stored since the first event",
            )
        ],
        exits=[
            (Exit.OK, "done"),
            DB_UNAVAILABLE,
            (Exit.TEMPFAIL, "a drain holds the queue's lease (suspend the CronJob), or interrupted"),
            DB_NOPERM,
            (Exit.CONFIG, "schema missing: run `vitrage-drainer migrate --history vitrage`"),
        ],
        handler=run,
    )
    Option(
        "--from-id", "start at this drainer_events id", default="1", kwargs={"type": int, "default": 1, "metavar": "ID"}
    ).add_to(parser)
    Option(
        "--chunk-size",
        "notifications per transaction",
        default="1000",
        kwargs={"type": int, "default": 1000, "metavar": "N"},
    ).add_to(parser)


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
