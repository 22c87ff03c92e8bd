"""`vitrage-drainer drain`: the batch job."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Mapping
from typing import Any

from drainer.cli.exits import Exit, exit_code_for
from drainer.cli.options import BROKER, CONFIG, DATABASE, TIMEOUTS, add_command, settings_from
from drainer.errors import DrainerError

log = logging.getLogger("drainer.cli")


def register(sub: Any) -> None:
    add_command(
        sub,
        "drain",
        summary="store up to N messages in one transaction, ack after commit",
        description="Take up to --batch-size messages from the queue with basic.get, store them in one\n"
        "transaction, ack them after the commit, and exit; --max-batches or --until-empty take more\n"
        "batches. Messages that cannot be stored are kept in drainer_rejected_messages; bodies over\n"
        "--max-message-bytes are moved to the oversize queue. stderr carries a record per batch and\n"
        "the run's summary, always last; nothing is written to stdout.",
        options=(
            *CONFIG,
            *BROKER,
            "--heartbeat",
            *DATABASE,
            "--lock-wait-timeout",
            *TIMEOUTS,
            "--batch-size",
            "--max-batches",
            "--until-empty",
            "--max-seconds",
            "--max-batch-bytes",
            "--max-message-bytes",
            "--oversize-queue",
            "--metrics-file",
            "--pushgateway",
            "--history",
            "--progress",
        ),
        examples=[
            ("vitrage-drainer drain --config-file /etc/vitrage/vitrage.conf", "one batch, as a CronJob runs it"),
            (
                "vitrage-drainer drain --config-file /etc/vitrage/vitrage.conf --until-empty --max-seconds 1800",
                "everything waiting, for at most half an hour, with a progress bar at a terminal",
            ),
        ],
        exits=[
            (Exit.OK, "batches stored and acked; also an empty queue, or another drainer holds the lease"),
            Exit.NOINPUT,
            Exit.UNAVAILABLE,
            Exit.TEMPFAIL,
            Exit.PROTOCOL,
            Exit.NOPERM,
            Exit.CONFIG,
        ],
        handler=run,
    )


def _outcome(failure: BaseException | None) -> tuple[int, str | None]:
    """How a run ended, for its row in drainer_runs: the same mapping as the exit code."""
    if failure is None:
        return Exit.OK, None
    code, error = exit_code_for(failure)
    return code, error


def run(args: argparse.Namespace, env: Mapping[str, str], run_id: str) -> int:
    from drainer import metrics, tty
    from drainer.drain import Progress, drain
    from drainer.signals import adopt

    stop = adopt()  # installed when main() began: a SIGTERM since then is not lost
    settings = settings_from(args, env)
    settings.require_db_url()
    progress = Progress(queue=settings.queue_name)
    code, error, message, trace = Exit.OK, None, None, None
    try:
        try:
            with tty.batch_bar(progress, settings.progress, settings.until_empty or settings.max_batches > 1) as bar:
                drain(settings, run_id, stop, progress, bar, _outcome)
        except DrainerError as exc:
            code, error = exit_code_for(exc)
            message = str(exc)
        except Exception as exc:  # a bug: exit 1, traceback inside the summary record
            code, error, message, trace = Exit.SOFTWARE, "unexpected_error", repr(exc), sys.exc_info()
        fields: dict[str, Any] = {"event": "summary", **progress.as_record(), "exit_code": int(code)}
        if error:
            fields.update(error=error, detail=message or "")
        # Metrics first (bounded by their own timeout), so the summary is the run's last record
        # even when publishing them fails.
        metrics.publish(fields, settings.queue_name, settings.metrics_file, settings.pushgateway)
        level = logging.INFO if code == Exit.OK else logging.ERROR
        log.log(level, "drain finished" if code == Exit.OK else "drain failed", extra=fields, exc_info=trace)
    finally:
        # Kept installed until the process exits: a SIGTERM after the summary would otherwise end
        # it with 143 while its last record says otherwise.
        stop.quiet()
    return code
