"""`vitrage-drainer peek`: the next messages, decoded as the drainer would, then given back."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping
from typing import Any

from drainer.cli.exits import Exit
from drainer.cli.listing import emit
from drainer.cli.options import BROKER, CONFIG, DATABASE, TIMEOUTS, Option, add_command, settings_from
from drainer.errors import ConfigError

log = logging.getLogger("drainer.cli")

COLUMNS = ("n", "bytes", "delivery_count", "outcome", "message_id", "event_type", "entity_id", "detail")


RETURN_COST = (
    "What a return costs: on a classic queue nothing (the messages go back to their places,\n"
    "flagged redelivered). On a quorum queue each return counts as a delivery: x-delivery-count\n"
    "grows by one per look, and past the queue's x-delivery-limit (20 by default from RabbitMQ\n"
    "4.0) the broker drops the message or dead-letters it; returned messages may also come back\n"
    "in another order, which then becomes their order in drainer_events. Look sparingly there."
)


def register(sub: Any) -> None:
    p = add_command(
        sub,
        "peek",
        summary="the next messages decoded as the drainer would (event, duplicate, rejected, oversize); none taken",
        description="Take the next messages from the head of the queue with basic.get, decode each exactly as a\n"
        "drain would (an event with its dedupe key, type and entity; a duplicate of a stored event or\n"
        "of an earlier message; a rejection with its reason; or oversize), print them, and give them\n"
        "all back (basic.nack, requeue). Nothing is written but the queue's lease, which peek holds\n"
        "while the messages are out so that a drain cannot store the messages behind them first.\n\n" + RETURN_COST,
        options=(*CONFIG, *BROKER, *DATABASE, *TIMEOUTS, "--max-message-bytes", "--oversize-queue"),
        examples=[
            ("vitrage-drainer peek", "the next ten messages, as a table"),
            (
                "vitrage-drainer peek --count 20 --json | jq -c '{outcome, detail}'",
                "what the next twenty would become, for a script",
            ),
        ],
        exits=[
            (Exit.OK, "shown and given back"),
            Exit.NOINPUT,
            Exit.UNAVAILABLE,
            (Exit.TEMPFAIL, "a drainer holds the queue's lease right now: try again when it is done"),
            Exit.PROTOCOL,
            Exit.NOPERM,
            Exit.CONFIG,
        ],
        handler=run,
    )
    Option(
        "--count", "at most this many messages", default="10", kwargs={"type": int, "default": 10, "metavar": "N"}
    ).add_to(p)
    Option("--json", "one JSON object per message and line, with the payload", kwargs={"action": "store_true"}).add_to(
        p
    )


def run(args: argparse.Namespace, env: Mapping[str, str], run_id: str) -> int:
    from drainer import peek

    if args.count < 1:
        raise ConfigError("--count must be at least 1")
    settings = settings_from(args, env)
    found = peek.peek(settings, run_id, args.count)
    for n, line in enumerate(found, 1):
        line["n"] = n
    emit(found, COLUMNS, args.json)
    log.info(
        "messages peeked and given back",
        extra={"event": "peek", "queue": settings.queue_name, "peeked": len(found), "exit_code": 0},
    )
    return Exit.OK
