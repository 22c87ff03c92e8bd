"""`vitrage-drainer status`: the queue and the tables at a glance; a monitoring probe."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping
from typing import Any

from drainer.cli.exits import Exit, exit_code_for
from drainer.cli.options import BROKER, CONFIG, DATABASE, TIMEOUTS, add_command, settings_from

log = logging.getLogger("drainer.cli")


def register(sub: Any) -> None:
    parser = add_command(
        sub,
        "status",
        summary="waiting messages, stored events, the newest event's age, schema, lease; a probe",
        description="The queue and the tables at a glance: messages waiting in the queue and its consumers\n"
        "(a passive queue.declare, which takes nothing), stored events, the last id, the newest\n"
        "collector_timestamp and its age, rejected messages, the schema version and the lease.\n"
        "AMQP reports how many messages wait, not how old the oldest is: reading that would take\n"
        "the message from a running drain. Its exit code makes it a probe (Nagios, Sensu, a\n"
        "Kubernetes CronJob of its own).",
        options=(*CONFIG, *BROKER, *DATABASE, *TIMEOUTS),
        examples=[
            ("vitrage-drainer status --config-file /etc/vitrage/vitrage.conf", "a table for a person"),
            ("vitrage-drainer status --json | jq .queue_depth", "one JSON object, for a script"),
        ],
        exits=[
            (Exit.OK, "the broker and the database answered and the schema is current"),
            Exit.NOINPUT,
            Exit.UNAVAILABLE,
            Exit.PROTOCOL,
            Exit.NOPERM,
            Exit.CONFIG,
        ],
        handler=run,
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")


def run(args: argparse.Namespace, env: Mapping[str, str], run_id: str) -> int:
    import json
    import sys

    from drainer import logs, status

    settings = settings_from(args, env)
    settings.require_db_url()
    report, errors = status.collect(settings)
    code = exit_code_for(errors[0])[0] if errors else Exit.OK
    if errors:
        report["errors"] = [{"error": exit_code_for(e)[1], "detail": logs.scrub(str(e))} for e in errors]
    report["exit_code"] = int(code)
    # The report holds counts and names, no URLs; error details are scrubbed value by value.
    print(json.dumps(report) if args.json else status.render_text(report, f"{int(code)} ({code.name})"))
    if not args.json and sys.stdout.isatty():
        return code  # the table in front of the person already says it
    for exc in errors:
        # Each record carries the run's exit code, as every command's last record does.
        log.error(str(exc), extra={"event": "error", "error": exit_code_for(exc)[1], "exit_code": int(code)})
    return code
