"""Command line: parse, build Settings, set up logs, run a command; the ONLY place mapping errors
to exit codes."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from enum import IntEnum
from typing import Any

from drainer import __version__, defaults
from drainer.errors import (
    AckFailed,
    BatchNotCommitted,
    BrokerAccessDenied,
    BrokerError,
    ConfigError,
    DatabaseAccessDenied,
    DatabaseError,
    DrainerError,
    Interrupted,
    QueueNotFound,
    SchemaConflict,
    SchemaOutdated,
)

log = logging.getLogger(__name__)


class Exit(IntEnum):
    """sysexits(3) values; README "Exit codes" explains each."""

    OK = 0  # done: batches stored and acked, queue empty, or another drainer holds the lease
    SOFTWARE = 1  # a bug: unexpected exception (traceback in the JSON record)
    USAGE = 2  # bad flags, environment or config file
    NOINPUT = 66  # the queue does not exist on the vhost
    UNAVAILABLE = 69  # broker or database unreachable within the retry budget
    TEMPFAIL = 75  # batch not committed (messages returned) or committed but not acked
    NOPERM = 77  # broker or database refused the credentials or the vhost
    CONFIG = 78  # database schema missing, behind, or changed: run migrate


# Most specific first: the first match decides.
_CODES: tuple[tuple[type[BaseException], Exit, str], ...] = (
    (ConfigError, Exit.USAGE, "config_error"),
    (QueueNotFound, Exit.NOINPUT, "queue_not_found"),
    (BrokerAccessDenied, Exit.NOPERM, "broker_access_denied"),
    (DatabaseAccessDenied, Exit.NOPERM, "database_access_denied"),
    (SchemaOutdated, Exit.CONFIG, "schema_outdated"),
    (SchemaConflict, Exit.CONFIG, "schema_conflict"),
    (AckFailed, Exit.TEMPFAIL, "ack_failed_after_commit"),
    (Interrupted, Exit.TEMPFAIL, "interrupted"),
    (BatchNotCommitted, Exit.TEMPFAIL, "batch_not_committed"),
    (BrokerError, Exit.UNAVAILABLE, "broker_unavailable"),
    (DatabaseError, Exit.UNAVAILABLE, "database_unavailable"),
)


def exit_code_for(exc: BaseException) -> tuple[Exit, str]:
    for kind, code, name in _CODES:
        if isinstance(exc, kind):
            return code, name
    return Exit.SOFTWARE, "unexpected_error"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:
        raise ConfigError(f"{self.prog}: {message}")


# argparse expands "%" in help texts: the default's "%2F" must be written "%%2F".
_DEFAULT_AMQP_SHOWN = defaults.AMQP_URL.replace("guest:guest", "guest:***").replace("%", "%%")


def _common(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("connections (flag > env > --config-file > default)")
    g.add_argument(
        "--config-file",
        action="append",
        metavar="PATH",
        help="oslo-style INI (vitrage.conf): [DEFAULT] transport_url, [database] "
        "connection, [persistency] persistor_topic; repeatable; env DRAINER_CONFIG_FILE",
    )
    g.add_argument(
        "--amqp-url",
        help=f"env DRAINER_AMQP_URL; default {_DEFAULT_AMQP_SHOWN}; "
        "several URLs separated by ';' or a rabbit:// transport_url fail over in order",
    )
    g.add_argument("--amqp-url-file", metavar="PATH", help="read the AMQP URL from a file; env DRAINER_AMQP_URL_FILE")
    g.add_argument("--db-url", help="SQLAlchemy URL, e.g. mysql+pymysql://user:pass@host/vitrage; env DRAINER_DB_URL")
    g.add_argument("--db-url-file", metavar="PATH", help="read the database URL from a file; env DRAINER_DB_URL_FILE")
    g.add_argument(
        "--topic", help=f"oslo topic; the queue is <topic>.info; env DRAINER_TOPIC; default {defaults.TOPIC}"
    )
    g.add_argument("--queue", help="queue name, overrides --topic; env DRAINER_QUEUE")
    g.add_argument(
        "--connect-timeout",
        type=float,
        help=f"seconds per connect attempt; env DRAINER_CONNECT_TIMEOUT; default {defaults.CONNECT_TIMEOUT:g}",
    )
    g.add_argument(
        "--socket-timeout",
        type=float,
        help=f"seconds per read/write; env DRAINER_SOCKET_TIMEOUT; default {defaults.SOCKET_TIMEOUT:g}",
    )
    g.add_argument(
        "--retry-seconds",
        type=float,
        help=f"retry budget for connects and a batch; env DRAINER_RETRY_SECONDS; default {defaults.RETRY_SECONDS:g}",
    )
    g.add_argument("--log-format", choices=("json", "text"), help="env DRAINER_LOG_FORMAT; default json")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="vitrage-drainer", description="Drain Vitrage's vitrage_persistor queue into an events table."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    d = sub.add_parser("drain", help="store up to N messages in one transaction, ack after commit")
    _common(d)
    d.add_argument(
        "--batch-size",
        type=int,
        help=f"messages per transaction; env DRAINER_BATCH_SIZE; default {defaults.BATCH_SIZE}",
    )
    d.add_argument(
        "--max-batches",
        type=int,
        help=f"batches per run; env DRAINER_MAX_BATCHES; default {defaults.MAX_BATCHES}",
    )
    d.add_argument(
        "--until-empty",
        action="store_true",
        default=None,
        help="batches until the queue is empty; env DRAINER_UNTIL_EMPTY",
    )
    d.add_argument(
        "--max-seconds",
        type=float,
        help=f"start no batch after this; env DRAINER_MAX_SECONDS; default {defaults.MAX_SECONDS:g}",
    )
    d.add_argument(
        "--max-message-bytes",
        type=int,
        help="larger bodies go to the oversize queue; env DRAINER_MAX_MESSAGE_BYTES; default 4 MiB",
    )
    d.add_argument(
        "--oversize-queue",
        help="durable queue for oversize messages; env DRAINER_OVERSIZE_QUEUE; default <queue>.oversize",
    )
    d.add_argument(
        "--lock-wait-timeout",
        type=int,
        help=f"MySQL session lock wait seconds; env DRAINER_LOCK_WAIT_TIMEOUT; default {defaults.LOCK_WAIT_TIMEOUT}",
    )
    d.add_argument(
        "--heartbeat",
        type=int,
        help=f"AMQP heartbeat seconds; env DRAINER_HEARTBEAT; default {defaults.HEARTBEAT}",
    )
    d.add_argument(
        "--max-batch-bytes",
        type=int,
        help="a batch stops growing at this many body bytes; env DRAINER_MAX_BATCH_BYTES; default 64 MiB",
    )
    d.add_argument("--metrics-file", metavar="PATH", help="node_exporter textfile to write; env DRAINER_METRICS_FILE")
    d.add_argument("--pushgateway", metavar="URL", help="Prometheus Pushgateway to push to; env DRAINER_PUSHGATEWAY")
    d.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar (default: only for a multi-batch drain on a TTY); env DRAINER_PROGRESS",
    )
    d.set_defaults(handler=_run_drain)

    m = sub.add_parser("migrate", help="create or upgrade the schema from sql/<dialect>/*.sql")
    _common(m)
    m.set_defaults(handler=_run_migrate)

    st = sub.add_parser("status", help="queue depth, events, lag, rejected, schema; non-zero when unreachable")
    _common(st)
    st.add_argument("--json", action="store_true", help="print one JSON object")
    st.set_defaults(handler=_run_status)

    ev = sub.add_parser("events", help="stored events as JSON lines on stdout, in id order")
    _common(ev)
    ev.add_argument("--after-id", type=int, help="only events with a larger id (replay after a snapshot)")
    ev.add_argument("--since", help="collector_timestamp at or after this ISO 8601 time (naive = UTC)")
    ev.add_argument("--until", help="collector_timestamp before this ISO 8601 time")
    ev.add_argument("--limit", type=int, help="at most this many events")
    ev.set_defaults(handler=_run_events)

    pr = sub.add_parser("prune", help="delete old events in bounded chunks")
    _common(pr)
    which = pr.add_mutually_exclusive_group(required=True)
    which.add_argument("--before-id", type=int, help="delete events with id < ID (Vitrage's expirer rule)")
    which.add_argument("--older-than", metavar="AGE", help="delete events whose collector_timestamp is older, e.g. 30d")
    pr.add_argument("--chunk-size", type=int, default=10_000, help="rows per transaction (default 10000)")
    pr.add_argument("--dry-run", action="store_true", help="count, delete nothing")
    pr.set_defaults(handler=_run_prune)
    return parser


_COMMAND_ONLY = (
    "command",
    "handler",
    "json",
    "after_id",
    "since",
    "until",
    "limit",
    "before_id",
    "older_than",
    "chunk_size",
    "dry_run",
)


def _settings(args: argparse.Namespace, env: Mapping[str, str]) -> Any:
    from drainer import logs
    from drainer.config import resolve, secrets_of, url_passwords

    flags = {k: v for k, v in vars(args).items() if k not in _COMMAND_ONLY}
    # Known before validation, so even a refused URL is never echoed with its password.
    raw = [flags.get("amqp_url"), flags.get("db_url"), env.get("DRAINER_AMQP_URL"), env.get("DRAINER_DB_URL")]
    logs.add_secrets({p for value in raw if value for p in url_passwords(value)}, tuple(v for v in raw if v))
    settings = resolve(flags, env)
    logs.add_secrets(secrets_of(settings), (*settings.amqp_urls, settings.db_url or ""))
    return settings


def _run_drain(args: argparse.Namespace, env: Mapping[str, str], run_id: str) -> int:
    from drainer import metrics, tty
    from drainer.drain import Progress, drain
    from drainer.signals import StopFlag

    settings = _settings(args, env)
    settings.require_db_url()
    progress = Progress(queue=settings.queue_name)
    on_batch, close_bar = tty.batch_bar(settings.progress, settings.until_empty or settings.max_batches > 1)
    stop = StopFlag()
    stop.install()  # until the very end: a late SIGTERM must not cut the summary line
    code, error, message, trace = Exit.OK, None, None, None
    try:
        try:
            drain(settings, run_id, stop, progress, on_batch)
        except DrainerError as exc:
            code, error = exit_code_for(exc)
            message = str(exc)
        except Exception as exc:  # a bug: exit 1, traceback inside the summary record
            code, error, message, trace = Exit.SOFTWARE, "unexpected_error", repr(exc), sys.exc_info()
        finally:
            close_bar()
        fields: dict[str, Any] = {"event": "summary", **progress.as_record(), "exit_code": int(code)}
        if error:
            fields.update(error=error, detail=message or "")
        level = logging.INFO if code == Exit.OK else logging.ERROR
        log.log(level, "drain finished" if code == Exit.OK else "drain failed", extra=fields, exc_info=trace)
        metrics.publish(fields, settings.queue_name, settings.metrics_file, settings.pushgateway)
    finally:
        stop.restore()
    return code


def _run_status(args: argparse.Namespace, env: Mapping[str, str], run_id: str) -> int:
    import json

    from drainer import logs, status

    settings = _settings(args, env)
    settings.require_db_url()
    report, errors = status.collect(settings)
    code = exit_code_for(errors[0])[0] if errors else Exit.OK
    if errors:
        report["errors"] = [{"error": exit_code_for(e)[1], "detail": logs.scrub(str(e))} for e in errors]
    report["exit_code"] = int(code)
    # The report holds counts and names, no URLs; error details are scrubbed value by value.
    print(json.dumps(report) if args.json else status.render_text(report))
    for exc in errors:
        log.error(str(exc), extra={"event": "error", "error": exit_code_for(exc)[1]})
    return code


def _run_events(args: argparse.Namespace, env: Mapping[str, str], run_id: str) -> int:
    from drainer.envelope import parse_timestamp
    from drainer.export import write_events
    from drainer.store import Store

    settings = _settings(args, env)
    bounds = {}
    for name in ("since", "until"):
        raw = getattr(args, name)
        bounds[name] = parse_timestamp(raw) if raw else None
        if raw and bounds[name] is None:
            raise ConfigError(f"--{name} {raw!r} is not an ISO 8601 time")
    if args.limit is not None and args.limit < 0:
        raise ConfigError("--limit must not be negative")
    store = Store.open(settings.require_db_url(), settings)
    try:
        rows = store.iter_events(args.after_id, bounds["since"], bounds["until"], args.limit)
        count = write_events(rows, sys.stdout)
        sys.stdout.flush()
    except BrokenPipeError:  # `vitrage-drainer events | head`: the reader has what it wanted
        return Exit.OK
    finally:
        store.dispose()
    log.info("events exported", extra={"event": "export", "exported": count, "exit_code": 0})
    return Exit.OK


def _run_prune(args: argparse.Namespace, env: Mapping[str, str], run_id: str) -> int:
    from drainer import prune
    from drainer.store import Store

    settings = _settings(args, env)
    store = Store.open(settings.require_db_url(), settings)
    try:
        total = prune.prune(store, args.before_id, args.older_than, args.chunk_size, args.dry_run)
    finally:
        store.dispose()
    key = "would_delete" if args.dry_run else "deleted"
    log.info("prune finished", extra={"event": "prune", key: total, "dry_run": args.dry_run, "exit_code": 0})
    return Exit.OK


def _run_migrate(args: argparse.Namespace, env: Mapping[str, str], run_id: str) -> int:
    from drainer import schema
    from drainer.store import Store

    settings = _settings(args, env)
    store = Store.open(settings.require_db_url(), settings)
    try:
        applied = schema.migrate(store)
        version = schema.check(store)
    finally:
        store.dispose()
    log.info(
        "schema up to date",
        extra={"event": "migrate", "applied": applied, "version": version, "exit_code": 0},
    )
    return Exit.OK


def _log_format(argv: Sequence[str], env: Mapping[str, str]) -> str:
    for i, arg in enumerate(argv):
        if arg.startswith("--log-format="):
            return arg.split("=", 1)[1]
        if arg == "--log-format" and i + 1 < len(argv):
            return argv[i + 1]
    return env.get("DRAINER_LOG_FORMAT") or defaults.LOG_FORMAT


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Run one command; return its exit code (only __main__ and the console script exit)."""
    from drainer import logs
    from drainer.drain import new_run_id

    argv = list(sys.argv[1:] if argv is None else argv)
    env = os.environ if env is None else env
    run_id = new_run_id()
    fmt = _log_format(argv, env)
    logs.setup(fmt if fmt in ("json", "text") else "json", run_id)
    try:
        args = build_parser().parse_args(argv)
        return int(args.handler(args, env, run_id))
    except SystemExit as exc:  # --help / --version
        return int(exc.code or 0)
    except DrainerError as exc:
        code, error = exit_code_for(exc)
        log.error(str(exc), extra={"event": "error", "error": error, "exit_code": int(code)})
        return code
    except Exception as exc:  # a bug: keep the traceback, inside one JSON record (logs scrub secrets)
        log.exception(
            "unexpected error",
            extra={
                "event": "error",
                "error": "unexpected_error",
                "exit_code": 1,
                "detail": repr(exc),
            },
        )
        return Exit.SOFTWARE
