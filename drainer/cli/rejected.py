"""`vitrage-drainer rejected list|show|republish`: look at the messages the drainer kept aside, fix
them, send them back."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from drainer.cli.exits import DB_NOPERM, DB_UNAVAILABLE, Exit
from drainer.cli.listing import table
from drainer.cli.options import CONFIG, DATABASE, TIMEOUTS, Option, Parser, add_command, settings_from
from drainer.errors import ConfigError

if TYPE_CHECKING:
    from datetime import datetime

log = logging.getLogger("drainer.cli")

LIST_COLUMNS = ("id", "received_at", "queue", "body_size", "status", "reason")


def register(sub: Any) -> None:
    top = sub.add_parser(
        "rejected",
        help="list, show and republish the messages kept in drainer_rejected_messages",
        description="Messages the drainer could not store as events are kept byte-exact in\n"
        "drainer_rejected_messages with the reason, and acked. These commands list them, show one\n"
        "(its properties, or its exact body bytes), and publish one again, as it was or fixed.\n"
        "`vitrage-drainer rejected list --help` (and show, republish) say more.",
    )
    verbs = top.add_subparsers(dest="verb", metavar="VERB", required=True, parser_class=Parser)
    _register_list(verbs)
    _register_show(verbs)
    _register_republish(verbs)


def _register_list(verbs: Any) -> None:
    p = add_command(
        verbs,
        "list",
        summary="rejected messages, newest first (pending only, unless --all)",
        description="List rejected messages newest first: id, when received, the queue, the body size, pending or\n"
        "republished, and the reason. Pending rows are those not republished yet; they are what\n"
        "`status` and the metrics count. Reads only.",
        options=(*CONFIG, *DATABASE, *TIMEOUTS),
        examples=[
            ("vitrage-drainer rejected list", "the pending ones, as a table"),
            (
                "vitrage-drainer rejected list --since 2026-11-24T00:00:00 --reason 'not valid JSON' --limit 5",
                "the last five of one kind since a day",
            ),
            ("vitrage-drainer rejected list --all --json | jq -r .id", "every id, republished ones too"),
        ],
        exits=[(Exit.OK, "listed"), DB_UNAVAILABLE, DB_NOPERM, Exit.CONFIG],
        handler=run_list,
    )
    for option in (
        Option("--since", "received at or after this ISO 8601 time (without a zone: UTC)", kwargs={"metavar": "TIME"}),
        Option("--reason", "the reason contains this text (case-insensitive)", kwargs={"metavar": "TEXT"}),
        Option("--limit", "at most this many rows", default="50", kwargs={"type": int, "default": 50, "metavar": "N"}),
        Option("--all", "republished rows too", kwargs={"action": "store_true"}),
        Option("--json", "one JSON object per row and line", kwargs={"action": "store_true"}),
    ):
        option.add_to(p)


def _register_show(verbs: Any) -> None:
    p = add_command(
        verbs,
        "show",
        summary="one rejected message: its reason and properties, or its exact body bytes with --body",
        description="Show one rejected message: where and when it was received, why it was rejected, its AMQP\n"
        "properties and headers, its size and SHA-256, and whether it was republished. With --body,\n"
        "stdout carries the body's exact bytes and nothing else, ready for `> file` and an editor.\n"
        "Reads only.",
        options=(*CONFIG, *DATABASE, *TIMEOUTS),
        examples=[
            ("vitrage-drainer rejected show 12", "the reason, the properties and the rest"),
            ("vitrage-drainer rejected show 12 --body > msg.json", "the body, byte for byte, to fix it"),
        ],
        exits=[
            (Exit.OK, "shown"),
            (Exit.DATAERR, "--body of an oversize record: its body is in the oversize queue"),
            (Exit.NOINPUT, "no rejected message has this id"),
            DB_UNAVAILABLE,
            DB_NOPERM,
            Exit.CONFIG,
        ],
        handler=run_show,
        usage="ID [--body | --json] [options]",
    )
    p.add_argument("id", type=int, metavar="ID", help="the row's id (see `rejected list`)")
    shape = p.add_mutually_exclusive_group()
    Option("--body", "write the exact body bytes to stdout, nothing else", kwargs={"action": "store_true"}).add_to(
        shape
    )
    Option("--json", "one JSON object (the body in base64)", kwargs={"action": "store_true"}).add_to(shape)


def _register_republish(verbs: Any) -> None:
    p = add_command(
        verbs,
        "republish",
        summary="publish rejected messages again (as kept, or with a fixed body) and mark them republished",
        description="Publish each named row again, through the default exchange to the queue it was rejected\n"
        "from (or --queue / DRAINER_QUEUE when given), with its original AMQP properties and headers\n"
        "(the property bytes as received, re-encoded byte for byte) plus the header\n"
        "x-drainer-rejected-id naming the row,\n"
        "and wait for the broker's publisher confirm (at most --socket-timeout). Only then is the\n"
        "row marked republished (when, to where, the SHA-256 of the body sent); it is kept as\n"
        "evidence, no longer counted as pending.\n"
        "\n"
        "Every row is checked before anything is sent: a body the drainer would reject or set aside\n"
        "again is refused (fix it with --body-file), and so is a row already republished (unless\n"
        "--again). A message that was already stored (same message id and content) is absorbed by\n"
        "the dedupe key and counted as a duplicate by the next drain; one rejected again becomes a\n"
        "new pending row. Run it as an account that may UPDATE drainer_rejected_messages (the schema\n"
        "owner), with the broker account the messages came from if they carry a user_id.",
        options=(*CONFIG, "--amqp-url", "--amqp-url-file", "--queue", *DATABASE, *TIMEOUTS),
        examples=[
            ("vitrage-drainer rejected republish 12 13 14", "three rows, as they were kept"),
            ("vitrage-drainer rejected republish 12 --body-file msg.json", "one row, with its fixed body"),
            (
                "vitrage-drainer rejected republish 12 --queue vitrage_persistor_shadow.info --again",
                "once more, to another queue",
            ),
        ],
        exits=[
            (Exit.OK, "every row published, confirmed and marked"),
            (Exit.DATAERR, "a row cannot be republished as it is (already republished, oversize, still invalid)"),
            (Exit.NOINPUT, "no rejected message has this id, or the target queue does not exist"),
            Exit.UNAVAILABLE,
            (Exit.TEMPFAIL, "the broker did not confirm a publish (nack or timeout); that row is not marked"),
            Exit.PROTOCOL,
            Exit.NOPERM,
            Exit.CONFIG,
        ],
        handler=run_republish,
        usage="ID [ID ...] [--body-file FILE] [--queue QUEUE] [--again] [options]",
        reworded={"--queue": ("the queue to publish to, instead of the one the row came from", "the row's queue")},
    )
    p.add_argument("ids", type=int, nargs="+", metavar="ID", help="rows to republish (see `rejected list`)")
    for option in (
        Option(
            "--body-file", "publish this file's bytes instead of the kept body ('-': stdin)", kwargs={"metavar": "FILE"}
        ),
        Option("--again", "also republish rows already republished", kwargs={"action": "store_true"}),
    ):
        option.add_to(p)


def _parse_time(raw: str | None, flag: str) -> datetime | None:
    from drainer.envelope import parse_timestamp

    if raw is None:
        return None
    parsed = parse_timestamp(raw)
    if parsed is None:
        raise ConfigError(f"{flag} {raw!r} is not an ISO 8601 time")
    return parsed


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="microseconds") + "Z" if value else None


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if k not in ("body", "properties")}
    for key in ("received_at", "republished_at"):
        out[key] = _iso(row.get(key))
    out["status"] = "pending" if row.get("republished_at") is None else "republished"
    if "redelivered" in out and out["redelivered"] is not None:
        out["redelivered"] = bool(out["redelivered"])
    return out


def _open(args: argparse.Namespace, env: Mapping[str, str]) -> Any:
    from drainer import schema
    from drainer.db.engine import Store

    settings = settings_from(args, env)
    store = Store.open(settings.require_db_url(), settings)
    try:
        schema.check(store)
    except BaseException:
        store.dispose()
        raise
    return settings, store


def run_list(args: argparse.Namespace, env: Mapping[str, str], run_id: str) -> int:
    from drainer.db import rejected

    if args.limit < 1:
        raise ConfigError("--limit must be at least 1")
    since = _parse_time(args.since, "--since")
    _settings, store = _open(args, env)
    try:
        rows = [_plain(r) for r in rejected.listing(store, since, args.reason, args.limit, args.all)]
    finally:
        store.dispose()
    if args.json:
        for row in rows:
            print(json.dumps(row))
    else:
        for row in rows:
            row["reason"] = row["reason"] if len(row["reason"]) <= 70 else row["reason"][:67] + "..."
        print(table(rows, LIST_COLUMNS))
    log.info("rejected messages listed", extra={"event": "rejected_list", "listed": len(rows), "exit_code": 0})
    return Exit.OK


def run_show(args: argparse.Namespace, env: Mapping[str, str], run_id: str) -> int:
    from drainer.db import rejected
    from drainer.errors import RecordNotFound

    _settings, store = _open(args, env)
    try:
        row = rejected.get(store, args.id)
    finally:
        store.dispose()
    if row is None:
        raise RecordNotFound(f"no rejected message with id {args.id} (see `vitrage-drainer rejected list`)")
    if args.body:
        if row["body"] is None:
            from drainer.errors import NotRepublishable

            raise NotRepublishable(
                f"rejected message {args.id} is an oversize record: its body is in the oversize queue"
            )
        sys.stdout.buffer.write(row["body"])
        sys.stdout.flush()
    else:
        shown = _plain(row)
        shown["properties"] = json.loads(row["properties"]) if row["properties"] else None
        if args.json:
            import base64

            shown["body_base64"] = base64.b64encode(row["body"]).decode("ascii") if row["body"] is not None else None
            print(json.dumps(shown))
        else:
            width = max(len(k) for k in shown)
            for key, value in shown.items():
                text = json.dumps(value, indent=2, sort_keys=True) if key == "properties" else value
                print(f"{key:<{width}}  {'-' if text is None else text}")
    log.info("rejected message shown", extra={"event": "rejected_show", "id": args.id, "exit_code": 0})
    return Exit.OK


def _body(path: str | None) -> bytes | None:
    if path is None:
        return None
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise ConfigError(f"cannot read --body-file {path}: {exc.strerror}") from exc


def run_republish(args: argparse.Namespace, env: Mapping[str, str], run_id: str) -> int:
    from drainer import republish

    def done(record: dict[str, Any]) -> None:
        print(f"rejected message {record['id']} republished to {record['queue']} as {record['as']}", flush=True)
        published.append(record["id"])

    published: list[int] = []
    body = _body(args.body_file)
    settings, store = _open(args, env)
    try:
        plans = republish.plan(store, list(dict.fromkeys(args.ids)), body, settings.queue, args.again)
        republish.republish(settings, store, plans, done)
    finally:
        store.dispose()
    log.info("republish finished", extra={"event": "republish", "republished": published, "exit_code": 0})
    return Exit.OK
