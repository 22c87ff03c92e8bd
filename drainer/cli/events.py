"""`vitrage-drainer events` and `prune`: read and trim the stored history."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Mapping
from typing import Any

from drainer.cli.exits import DB_NOPERM, DB_UNAVAILABLE, Exit
from drainer.cli.options import CONFIG, DATABASE, TIMEOUTS, Option, add_command, age_value, settings_from
from drainer.errors import ConfigError

log = logging.getLogger("drainer.cli")

PRUNE_CHUNK = 10_000
PRUNE_MAX_SHARE = 50  # percent of the stored events a prune may delete without --yes


def register(sub: Any) -> None:
    ev = add_command(
        sub,
        "events",
        summary="stored events as JSON lines on stdout, in id order",
        description="Write stored events to stdout, one JSON object per line (id, collector_timestamp in\n"
        "ISO 8601 UTC, message_id, event_type, payload as an object), in id order, reading keyset\n"
        "pages of 1000 rows: any number of rows in constant memory. Reads only. Every filter narrows\n"
        "the selection; --event-type, --entity-type and --entity-id are each served by an index, and\n"
        "--after-id with --until-id selects exactly a snapshot's replay window.",
        options=(*CONFIG, *DATABASE, *TIMEOUTS),
        examples=[
            ("vitrage-drainer events --after-id 41230 > replay.jsonl", "what a standby replays after its snapshot"),
            (
                "vitrage-drainer events --since 2026-11-24T00:00:00 --until 2026-11-25T00:00:00 --limit 100",
                "one day's events, the first hundred",
            ),
            ("vitrage-drainer events --after-id 41230 --until-id 52000", "exactly the window between two snapshots"),
            (
                "vitrage-drainer events --entity-id 3dcee183-ca42-4ccb-84af-9f0196b2e160 "
                "--since 2026-11-24T08:00:00 --until 2026-11-24T09:00:00",
                "everything about one host in one hour (an RCA's question)",
            ),
        ],
        exits=[Exit.OK, DB_UNAVAILABLE, DB_NOPERM, Exit.CONFIG],
        handler=run_events,
    )
    for option in (
        Option(
            "--after-id",
            "only events with a larger id (replay after a snapshot)",
            kwargs={"type": int, "metavar": "ID"},
        ),
        Option(
            "--until-id",
            "only events with this id or a smaller one; with --after-id: a replay window",
            kwargs={"type": int, "metavar": "ID"},
        ),
        Option("--event-type", "only this event_type (e.g. vitrage.alarm.activate, nova.instance)", kwargs={}),
        Option("--entity-type", "only this entity_type (the payload's vitrage_entity_type or vitrage_type)", kwargs={}),
        Option("--entity-id", "only this entity_id (the payload's vitrage_id, else its id)", kwargs={}),
        Option(
            "--since",
            "collector_timestamp at or after this ISO 8601 time (without a zone: UTC)",
            kwargs={"metavar": "TIME"},
        ),
        Option("--until", "collector_timestamp before this ISO 8601 time", kwargs={"metavar": "TIME"}),
        Option("--limit", "at most this many events", kwargs={"type": int, "metavar": "N"}),
    ):
        option.add_to(ev)

    pr = add_command(
        sub,
        "prune",
        summary="delete old events (or old runs of the ledger, or old alarm history) in bounded chunks",
        description="Delete stored events older than a cutoff, in chunks of --chunk-size rows, one short\n"
        "transaction each, so replication and the drain are never blocked for long. It first says in\n"
        "one sentence what the cutoff selects (--dry-run stops there). At a terminal it then asks;\n"
        "elsewhere a cutoff that selects every stored event, or more than --max-share of them, is\n"
        "refused without --yes. Each chunk also counts, per run of the ledger, the rows it deleted,\n"
        "so `verify` still balances. --runs-older-than trims the run ledger instead: runs started\n"
        "before the age whose rows are all gone (each queue's newest successful run is kept).",
        options=(*CONFIG, *DATABASE, *TIMEOUTS, "--lock-wait-timeout"),
        examples=[
            ("vitrage-drainer prune --before-id 41230", "Vitrage's expirer rule: id < the snapshot's event id"),
            ("vitrage-drainer prune --older-than 30d --dry-run", "what a 30-day TTL would delete, deleting nothing"),
            ("vitrage-drainer prune --history-older-than 30d", "Vitrage's alarm_history_ttl, with --history vitrage"),
            ("vitrage-drainer prune --runs-older-than 7d", "the run ledger: runs of the last week and runs with rows"),
        ],
        exits=[
            (Exit.OK, "deleted, nothing to delete, a dry run, or the question at the terminal answered no"),
            (Exit.USAGE, "also: the cutoff needs --yes (every event, or more than --max-share)"),
            DB_UNAVAILABLE,
            (Exit.NOPERM, "the database refused the DELETE (prune as the schema owner, not the drain account)"),
            Exit.CONFIG,
        ],
        handler=run_prune,
        usage="(--before-id ID | --older-than AGE | --history-older-than AGE | --runs-older-than AGE) [options]",
    )
    which = pr.add_mutually_exclusive_group(required=True)
    Option(
        "--before-id", "delete events with id < ID (Vitrage's expirer rule)", kwargs={"type": int, "metavar": "ID"}
    ).add_to(which)
    Option(
        "--older-than",
        "delete events whose collector_timestamp is older than AGE: a number and a unit, s, m, h, d or w (30d, 12h)",
        kwargs={"type": age_value, "metavar": "AGE"},
    ).add_to(which)
    Option(
        "--history-older-than",
        "delete Vitrage alarm history instead: alarms that ended more than AGE ago, with their changes and "
        "edges (what vitrage-persistor's expirer does with [persistency] alarm_history_ttl, 30d by default)",
        kwargs={"type": age_value, "metavar": "AGE"},
    ).add_to(which)
    Option(
        "--runs-older-than",
        "delete runs of the ledger (drainer_runs) started more than AGE ago whose rows are all gone; "
        "each queue's newest successful run is kept",
        kwargs={"type": age_value, "metavar": "AGE"},
    ).add_to(which)
    for option in (
        Option(
            "--chunk-size",
            "rows per transaction",
            default=str(PRUNE_CHUNK),
            kwargs={"type": int, "metavar": "N", "default": PRUNE_CHUNK},
        ),
        Option("--dry-run", "say what would be deleted, delete nothing", kwargs={"action": "store_true"}),
        Option(
            "--yes", "delete without asking, also beyond --max-share or every event", kwargs={"action": "store_true"}
        ),
        Option(
            "--max-share",
            "deleting more than this share of the stored events needs --yes (or a yes at the terminal)",
            default=f"{PRUNE_MAX_SHARE}%",
            kwargs={"type": float, "metavar": "PERCENT", "default": PRUNE_MAX_SHARE},
        ),
    ):
        option.add_to(pr)


def _open_current(settings: Any) -> Any:
    """The store, once the schema is known to be the drainer's and current (78 otherwise)."""
    from drainer import schema
    from drainer.db.engine import Store

    store = Store.open(settings.require_db_url(), settings)
    try:
        schema.check(store)
    except BaseException:
        store.dispose()
        raise
    return store


def run_events(args: argparse.Namespace, env: Mapping[str, str], run_id: str) -> int:
    from drainer.db import reads
    from drainer.envelope import parse_timestamp
    from drainer.export import write_events

    settings = settings_from(args, env)
    bounds = {}
    for name in ("since", "until"):
        raw = getattr(args, name)
        bounds[name] = parse_timestamp(raw) if raw else None
        if raw and bounds[name] is None:
            raise ConfigError(f"--{name} {raw!r} is not an ISO 8601 time")
    if args.limit is not None and args.limit < 0:
        raise ConfigError("--limit must not be negative")
    store = _open_current(settings)
    try:
        where = reads.EventFilter(
            after_id=args.after_id,
            until_id=args.until_id,
            since=bounds["since"],
            until=bounds["until"],
            event_type=args.event_type,
            entity_type=args.entity_type,
            entity_id=args.entity_id,
        )
        rows = reads.iter_events(store, where, args.limit)
        count = write_events(rows, sys.stdout)
        sys.stdout.flush()
    except BrokenPipeError:  # `vitrage-drainer events | head`: the reader has what it wanted
        return Exit.OK
    finally:
        store.dispose()
    log.info("events exported", extra={"event": "export", "exported": count, "exit_code": 0})
    return Exit.OK


def run_prune(args: argparse.Namespace, env: Mapping[str, str], run_id: str) -> int:
    from drainer import prune, tty

    if args.chunk_size < 1:
        raise ConfigError("--chunk-size must be at least 1")
    max_share = args.max_share
    if not 0 <= max_share <= 100:
        raise ConfigError("--max-share must be a percentage from 0 to 100")
    settings = settings_from(args, env)
    store = _open_current(settings)
    try:
        if args.history_older_than:
            return _prune_history(store, args)
        if args.runs_older_than:
            return _prune_runs(store, args)
        plan = prune.plan(store, args.before_id, args.older_than)
        sentence = prune.describe(plan)
        figures = {"would_delete": plan.selection.count, "stored": plan.selection.total}
        log.info(sentence, extra={"event": "prune_plan", **figures, "dry_run": args.dry_run})
        if args.dry_run or not plan.selection.count:
            said = "dry run, nothing deleted" if args.dry_run else "nothing to delete"
            log.info(f"prune finished: {said}", extra={"event": "prune", **figures, "deleted": 0, "exit_code": 0})
            return Exit.OK
        reason = prune.confirmation_needed(plan, max_share / 100)
        if not args.yes:
            if tty.is_terminal():
                question = f"{reason[0].upper()}{reason[1:]}. Delete them?" if reason else "Delete them?"
                if not tty.confirm(question):
                    log.info(
                        "prune finished: not confirmed, nothing deleted",
                        extra={"event": "prune", **figures, "deleted": 0, "exit_code": 0},
                    )
                    return Exit.OK
            elif reason:
                raise ConfigError(f"nothing deleted: {reason}; add --yes to confirm (at a terminal it asks)")
        deleted = prune.execute(store, plan, args.chunk_size)
    finally:
        store.dispose()
    log.info("prune finished", extra={"event": "prune", **figures, "deleted": deleted, "exit_code": 0})
    return Exit.OK


def _prune_history(store: Any, args: argparse.Namespace) -> int:
    """`--history-older-than`: the same sentence first, and the same question at a terminal. Only
    ended alarms are selected, as vitrage-persistor's own expirer does every minute, so no share of
    them needs --yes."""
    from drainer import prune, tty

    count = prune.prune_history(store, args.history_older_than, args.chunk_size, dry_run=True)
    sentence = (
        f"prune would delete {count:,} Vitrage alarms that ended more than {args.history_older_than} ago, "
        "with their changes and edges"
    )
    log.info(sentence, extra={"event": "prune_plan", "would_delete": count, "dry_run": args.dry_run})
    deleted = 0
    if args.dry_run or not count:
        said = "dry run, nothing deleted" if args.dry_run else "nothing to delete"
    elif not args.yes and tty.is_terminal() and not tty.confirm("Delete them?"):
        said = "not confirmed, nothing deleted"
    else:
        deleted = prune.prune_history(store, args.history_older_than, args.chunk_size, dry_run=False)
        said = "alarm history deleted"
    log.info(
        f"prune finished: {said}", extra={"event": "prune", "would_delete": count, "deleted": deleted, "exit_code": 0}
    )
    return Exit.OK


def _prune_runs(store: Any, args: argparse.Namespace) -> int:
    """`--runs-older-than`: the same sentence first, and the same question at a terminal. Only runs
    whose rows are gone are selected, so `verify` keeps what it balances; no share needs --yes."""
    from drainer import prune, tty

    count = prune.prune_runs(store, args.runs_older_than, args.chunk_size, dry_run=True)
    sentence = (
        f"prune would delete {count:,} runs of the ledger started more than {args.runs_older_than} ago whose "
        "rows are all gone (each queue's newest successful run kept)"
    )
    log.info(sentence, extra={"event": "prune_plan", "would_delete": count, "dry_run": args.dry_run})
    deleted = 0
    if args.dry_run or not count:
        said = "dry run, nothing deleted" if args.dry_run else "nothing to delete"
    elif not args.yes and tty.is_terminal() and not tty.confirm("Delete them?"):
        said = "not confirmed, nothing deleted"
    else:
        deleted = prune.prune_runs(store, args.runs_older_than, args.chunk_size, dry_run=False)
        said = "runs deleted"
    log.info(
        f"prune finished: {said}", extra={"event": "prune", "would_delete": count, "deleted": deleted, "exit_code": 0}
    )
    return Exit.OK
