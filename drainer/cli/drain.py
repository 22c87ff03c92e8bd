"""`vitrage-drainer drain`: the batch job."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Mapping
from typing import Any

from drainer import defaults
from drainer.cli.exits import Exit, exit_code_for
from drainer.cli.options import connections, history_option, settings_from
from drainer.errors import DrainerError

log = logging.getLogger("drainer.cli")


def register(sub: Any) -> None:
    d = sub.add_parser("drain", help="store up to N messages in one transaction, ack after commit")
    connections(d)
    history_option(d)
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
    d.set_defaults(handler=run)


def run(args: argparse.Namespace, env: Mapping[str, str], run_id: str) -> int:
    from drainer import metrics, tty
    from drainer.drain import Progress, drain
    from drainer.signals import StopFlag

    settings = settings_from(args, env)
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
