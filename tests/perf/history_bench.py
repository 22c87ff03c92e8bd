"""Benchmark: Vitrage's own persistor and `drain --history vitrage` on the same notification stream.

    python -m tests.perf.history_bench [--alarms 400] [--json]

vitrage-graph's own PersistNotifier (Vitrage 15.0.1, from .venv-vitrage) publishes the notifications
of ALARMS alarms that each activate, cause the next one, change severity and recover (5 per alarm);
the bytes are replayed to vitrage-persistor's queue and to the drainer's. vitrage-persistor's listener
and endpoint (one ORM commit per notification) run twice, at Vitrage's default of 64 listener threads
and with one; the drainer runs `drain --history vitrage --until-empty` once. Reported for each: the
history rows (equal to the one-thread run or not, and how many rows differ from it, order aside), the
notifications lost (an exception in vitrage-persistor's endpoint; the drainer's would be a batch that
did not commit), and notifications per second. Both sides are timed in-process, without start-up:
vitrage-persistor from the first notification it handled to the last, the drainer by its summary's
`duration_s` (connect, schema check, lease, fetch, decode, write, ack). Every database is made by
Vitrage's own `vitrage-dbsync`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from tests.conftest import AMQP_URL, ROOT
from tests.vitrage.support import Stream, alarm, causes, drain_into, make_side, rows

VENV = ROOT / ".venv-vitrage"


def storm(count: int) -> list[dict[str, Any]]:
    """A cascade: each alarm activates and causes the next; then severities change; then recovery."""
    ids = [str(uuid.uuid4()) for _ in range(count)]
    t = "2026-11-29 10:{:02d}:{:02d}.000001+00:00"
    active = {vid: alarm(vid, f"alarm {i}", "WARNING", t.format(i // 60 % 60, i % 60)) for i, vid in enumerate(ids)}
    steps: list[dict[str, Any]] = [{"vertex": vid, "before": None, "after": props} for vid, props in active.items()]
    for source, target in zip(ids, ids[1:], strict=False):
        steps.append({"edge": [source, target, "causes"], "before": None, "after": causes(t.format(1, 0))})
    for vid, props in active.items():
        critical = {**props, "vitrage_operational_severity": "CRITICAL", "update_timestamp": t.format(2, 0)}
        steps.append({"vertex": vid, "before": props, "after": critical})
        active[vid] = critical
    for source, target in zip(ids, ids[1:], strict=False):
        steps.append(
            {
                "edge": [source, target, "causes"],
                "before": causes(t.format(1, 0)),
                "after": causes(t.format(3, 0), True),
            }
        )
    for vid, props in active.items():
        steps.append(
            {
                "vertex": vid,
                "before": props,
                "after": {**props, "vitrage_is_deleted": True, "update_timestamp": t.format(4, 0)},
            }
        )
    return steps


def differing(a: dict[str, list[tuple[Any, ...]]], b: dict[str, list[tuple[Any, ...]]]) -> int:
    """Rows in one side's history tables and not in the other's, either way, as multisets: a
    `changes` row inserted in another order is the same row; a missing or altered one is not."""
    return sum(sum(((Counter(a[t]) - Counter(b[t])) + (Counter(b[t]) - Counter(a[t]))).values()) for t in a)


def run(alarms: int) -> dict[str, Any]:
    if not (VENV / "bin" / "vitrage-dbsync").exists():
        raise SystemExit(f"needs Vitrage's reference venv at {VENV} (bash .ci/run makes it)")
    topic = f"vitrage_persistor_bench_{uuid.uuid4().hex[:8]}"
    folder = Path(tempfile.mkdtemp(prefix="history-bench-"))
    sides = {
        "persistor_64": make_side(VENV, folder, "p64", topic, threads=None),
        "persistor_1": make_side(VENV, folder, "p1", topic, threads=1),
        "drainer": make_side(VENV, folder, "drainer", topic),
    }
    stream = Stream(topic)
    try:
        messages = stream.capture(sides["persistor_1"], storm(alarms), folder)
        figures: dict[str, Any] = {"notifications": len(messages)}
        for name in ("persistor_64", "persistor_1"):
            stream.replay(messages, to_drainer=name == "persistor_1")
            out = sides[name].reference("persist", str(len(messages)), timeout=1800)
            figures[name] = {
                "seconds": round(out["seconds"], 3),
                "per_second": round(len(messages) / out["seconds"]) if out["seconds"] else None,
                "lost": len(out["failures"]),
            }
        result = drain_into(sides["drainer"], topic)
        seconds = result.summary["duration_s"]
        figures["drainer"] = {
            "seconds": seconds,
            "per_second": round(len(messages) / seconds) if seconds else None,
            "lost": 0,
            "not_applied": result.summary["history_not_applied"],
        }
        reference = rows(sides["persistor_1"])
        for name in sides:
            mine = rows(sides[name])
            figures[name]["rows_equal_to_persistor_1"] = mine == reference
            figures[name]["rows_differing"] = differing(mine, reference)
        figures["speedup_vs_persistor_1"] = round(
            figures["drainer"]["per_second"] / figures["persistor_1"]["per_second"], 1
        )
        return figures
    finally:
        stream.close()
        for side in sides.values():
            side.drop()
        import pika

        conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
        for suffix in (".info", ".drainer", ".capture"):
            conn.channel().queue_delete(topic + suffix)
        conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alarms", type=int, default=400, help="alarms in the storm (5 notifications each)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    figures = run(args.alarms)
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"{figures['notifications']} notifications from Vitrage 15.0.1's PersistNotifier, {args.alarms} alarms")
    header = f"{'writer':<30} {'seconds':>8} {'notif/s':>8} {'lost':>5}"
    print(f"{header} {'rows = persistor(1 thread)':>27} {'differing':>9}")
    for name, label in (
        ("persistor_64", "vitrage-persistor, 64 threads"),
        ("persistor_1", "vitrage-persistor, 1 thread"),
        ("drainer", "drain --history vitrage"),
    ):
        f = figures[name]
        print(
            f"{label:<30} {f['seconds']:>8} {f['per_second']:>8} {f['lost']:>5} "
            f"{str(f['rows_equal_to_persistor_1']):>27} {f['rows_differing']:>9}"
        )
    print(f"drainer / vitrage-persistor (1 thread): {figures['speedup_vs_persistor_1']}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
