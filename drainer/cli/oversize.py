"""`vitrage-drainer oversize list|requeue`: the parked oversize messages, without the management plugin."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping
from typing import Any

from drainer.cli.exits import Exit
from drainer.cli.listing import emit
from drainer.cli.options import BROKER, CONFIG, DATABASE, TIMEOUTS, Option, Parser, add_command, settings_from
from drainer.errors import ConfigError

log = logging.getLogger("drainer.cli")

LIST_COLUMNS = ("n", "bytes", "sha256", "intact", "routing_key", "age_s", "delivery_count", "message_id")

RETURN_COST = (
    "Listing takes each message with basic.get and gives it back (basic.nack, requeue) when done:\n"
    "nothing is removed. On a quorum queue each return counts as a delivery: x-delivery-count\n"
    "grows by one per listing, and past the queue's x-delivery-limit (20 by default from\n"
    "RabbitMQ 4.0) the broker drops the message or dead-letters it. The oversize queue holds the\n"
    "only copy of these messages: on a quorum queue with a delivery limit, list sparingly.\n"
    "Returned messages may also come back in another order on a quorum queue."
)

REQUEUE_COST = (
    "A message that stays parked (still too large, or changed) is given back (basic.nack, requeue):\n"
    "on a quorum queue that return counts as a delivery, as for `list` (see `oversize list --help`)."
)


def register(sub: Any) -> None:
    top = sub.add_parser(
        "oversize",
        help="list or requeue the messages parked in <queue>.oversize",
        description="A message larger than --max-message-bytes is moved byte-exact to the oversize queue\n"
        "(<queue>.oversize, or --oversize-queue) with an oversize record in drainer_rejected_messages.\n"
        "`list` shows them without taking them; `requeue` sends them back to the source queue once\n"
        "the limit is raised. `vitrage-drainer oversize list --help` and `requeue --help` say more.",
    )
    verbs = top.add_subparsers(dest="verb", metavar="VERB", required=True, parser_class=Parser)

    ls = add_command(
        verbs,
        "list",
        summary="parked messages: size, digest, original routing key, age (nothing is taken)",
        description="List the messages in the oversize queue in queue order: size, SHA-256 (and whether it still\n"
        "matches the digest recorded when it was parked), the original routing key, how long ago it\n"
        "was parked (from its oversize record, when the database is configured), and its delivery\n"
        "count on a quorum queue.\n\n" + RETURN_COST,
        options=(*CONFIG, *BROKER, *DATABASE, *TIMEOUTS, "--oversize-queue"),
        examples=[
            ("vitrage-drainer oversize list", "every parked message (up to 100), as a table"),
            ("vitrage-drainer oversize list --count 5 --json", "the first five, for a script"),
        ],
        exits=[
            (Exit.OK, "listed and given back"),
            (Exit.NOINPUT, "the oversize queue does not exist (nothing was ever parked)"),
            Exit.UNAVAILABLE,
            Exit.PROTOCOL,
            Exit.NOPERM,
            Exit.CONFIG,
        ],
        handler=run_list,
    )
    Option(
        "--count", "at most this many messages", default="100", kwargs={"type": int, "default": 100, "metavar": "N"}
    ).add_to(ls)
    Option("--json", "one JSON object per message and line", kwargs={"action": "store_true"}).add_to(ls)

    rq = add_command(
        verbs,
        "requeue",
        summary="send parked messages back to the source queue (confirmed), once the limits are raised",
        description="Take each parked message, publish it to the source queue (the drained queue) through the\n"
        "default exchange with the parked copy's property bytes as they are (the original\n"
        "properties and headers, expiration and user_id kept as x-original-* headers, and the\n"
        "x-drainer-* headers that say where it has been), wait for the broker's publisher confirm,\n"
        "mark its oversize record republished, and only then ack the parked copy. A message still\n"
        "larger than the limit the drain would apply now (--max-message-bytes, capped by the\n"
        "server's max_allowed_packet: give the value the drain uses), or whose body no longer\n"
        "matches its recorded SHA-256, stays parked. A crash between the publish and the ack leaves\n"
        "a copy in both queues; the dedupe key stores it once. Run it as an account that may UPDATE\n"
        "drainer_rejected_messages (the schema owner).\n\n" + REQUEUE_COST,
        options=(*CONFIG, *BROKER, *DATABASE, *TIMEOUTS, "--oversize-queue", "--max-message-bytes"),
        examples=[
            (
                "vitrage-drainer oversize requeue --max-message-bytes 16777216",
                "every parked message up to 16 MiB back to the queue",
            ),
            ("vitrage-drainer oversize requeue --count 1 --max-message-bytes 16777216", "one, to try"),
        ],
        exits=[
            (Exit.OK, "every message that fits was requeued (`still_oversize` in the summary counts the rest)"),
            (Exit.NOINPUT, "the source or the oversize queue does not exist"),
            Exit.UNAVAILABLE,
            (Exit.TEMPFAIL, "the broker did not confirm a publish; that message stays parked"),
            Exit.PROTOCOL,
            Exit.NOPERM,
            Exit.CONFIG,
        ],
        handler=run_requeue,
    )
    Option("--count", "requeue at most this many", default="all", kwargs={"type": int, "metavar": "N"}).add_to(rq)


def run_list(args: argparse.Namespace, env: Mapping[str, str], run_id: str) -> int:
    from drainer import oversize, schema
    from drainer.db.engine import Store

    if args.count < 1:
        raise ConfigError("--count must be at least 1")
    settings = settings_from(args, env)
    store = None
    if settings.db_url:
        store = Store.open(settings.db_url, settings)
    try:
        if store is not None:
            schema.check(store)
        found = oversize.listing(settings, store, args.count)
    finally:
        if store is not None:
            store.dispose()
    for n, entry in enumerate(found, 1):
        entry["n"] = n
    emit(found, LIST_COLUMNS, args.json)
    log.info(
        "oversize messages listed",
        extra={"event": "oversize_list", "queue": settings.oversize_queue_name, "listed": len(found), "exit_code": 0},
    )
    return Exit.OK


def run_requeue(args: argparse.Namespace, env: Mapping[str, str], run_id: str) -> int:
    from drainer import oversize, schema
    from drainer.db.engine import Store
    from drainer.drain import effective_max_bytes

    if args.count is not None and args.count < 1:
        raise ConfigError("--count must be at least 1")
    settings = settings_from(args, env)
    store = Store.open(settings.require_db_url(), settings)

    def done(record: dict[str, Any]) -> None:
        print(f"requeued {record['bytes']} bytes sha256 {record['sha256'][:16]}... to {record['queue']}", flush=True)

    try:
        schema.check(store)
        max_bytes = effective_max_bytes(settings, store.max_packet())
        totals = oversize.requeue(settings, store, args.count, max_bytes, done)
    finally:
        store.dispose()
    log.info(
        "oversize requeue finished",
        extra={
            "event": "oversize_requeue",
            "queue": settings.queue_name,
            "max_bytes": max_bytes,
            **totals,
            "exit_code": 0,
        },
    )
    return Exit.OK
