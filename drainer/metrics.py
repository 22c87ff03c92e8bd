"""Run metrics for Prometheus: a node_exporter textfile (atomic) and/or a Pushgateway push."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from drainer.errors import ConfigError

log = logging.getLogger(__name__)

_GAUGES = {
    "fetched": "Messages fetched by the last run",
    "stored": "Events stored by the last run",
    "duplicates": "Redelivered or repeated messages absorbed by the last run",
    "rejected": "Messages kept in rejected_messages by the last run",
    "oversize": "Messages moved to the oversize queue by the last run",
    "history_applied": "Alarm-history notifications applied to Vitrage's tables by the last run",
    "history_not_applied": "Alarm-history notifications the last run could not apply (kept in drainer_events)",
    "acked": "Messages acked by the last run",
    "batches": "Batches committed by the last run",
    "queue_remaining": "Messages left in the queue after the last run",
    "duration_s": "Duration of the last run in seconds",
    "exit_code": "Exit code of the last run",
}
# Not a count of the last run: the state it left behind.
_STATE_GAUGES = {
    "rejected_pending": ("vitrage_drainer_rejected_pending", "Rejected messages not republished yet"),
}
_LAST_SUCCESS = "vitrage_drainer_last_success_timestamp_seconds"


def _client() -> Any:
    try:
        import prometheus_client
    except ImportError as exc:
        raise ConfigError("metrics need prometheus-client: pip install 'vitrage-drainer[metrics]'") from exc
    return prometheus_client


def _registry(record: dict[str, Any], queue: str, last_success: float | None) -> Any:
    pc = _client()
    registry = pc.CollectorRegistry()
    for key, help_text in _GAUGES.items():
        value = record.get(key)
        if value is None:
            continue
        name = "vitrage_drainer_last_run_" + ("duration_seconds" if key == "duration_s" else key)
        pc.Gauge(name, help_text, ["queue"], registry=registry).labels(queue).set(value)
    for key, (name, help_text) in _STATE_GAUGES.items():
        if record.get(key) is not None:
            pc.Gauge(name, help_text, ["queue"], registry=registry).labels(queue).set(record[key])
    if last_success is not None:
        pc.Gauge(_LAST_SUCCESS, "Unix time of the last run that exited 0", ["queue"], registry=registry).labels(
            queue
        ).set(last_success)
    return registry


def _previous_success(path: Path, queue: str) -> float | None:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == _LAST_SUCCESS and sample.labels.get("queue") == queue:
                return float(sample.value)
    return None


def write_textfile(path: str, record: dict[str, Any], queue: str) -> None:
    """Write the run's gauges atomically; a failed run keeps the previous last-success time."""
    target = Path(path)
    ok = record.get("exit_code") == 0
    last_success = time.time() if ok else _previous_success(target, queue)
    _client().write_to_textfile(str(target), _registry(record, queue, last_success))


def push(url: str, record: dict[str, Any], queue: str, timeout: float) -> None:
    """Push to a Pushgateway; a failed run adds to the group so the last-success time stays."""
    pc = _client()
    ok = record.get("exit_code") == 0
    registry = _registry(record, queue, time.time() if ok else None)
    send = pc.push_to_gateway if ok else pc.pushadd_to_gateway
    send(url, job="vitrage_drainer", grouping_key={"queue": queue}, registry=registry, timeout=timeout)


# A push is the last thing a run does inside its deadline; it must not use up the grace period.
PUSH_TIMEOUT_S = 5.0


def publish(record: dict[str, Any], queue: str, metrics_file: str | None, pushgateway: str | None) -> None:
    """Write and push as configured; a metrics failure is logged, never fails the run."""
    targets = [(metrics_file, lambda: write_textfile(metrics_file or "", record, queue))]
    targets.append((pushgateway, lambda: push(pushgateway or "", record, queue, PUSH_TIMEOUT_S)))
    for target, send in targets:
        if not target:
            continue
        try:
            send()
        except Exception as exc:  # the events are stored and acked whatever happens to a gauge
            log.warning("could not publish metrics", extra={"event": "metrics_failed", "cause": repr(exc)})
