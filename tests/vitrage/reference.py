"""Vitrage 15.0.1 itself, as the reference the drainer is compared with. Runs in a venv of its own
(`.venv-vitrage`, made by .ci/run: `pip install vitrage==15.0.1`), never in the drainer's.

    python reference.py notify  CONF SCENARIO.json   vitrage-graph's PersistNotifier publishes the
                                                     notifications a sequence of graph changes makes
    python reference.py persist CONF COUNT           vitrage-persistor's listener + endpoint store
                                                     COUNT notifications; prints timing and failures
    python reference.py history CONF IDS.json        HistoryFacadeConnection's answers, as JSON

CONF is an oslo config file with [DEFAULT] transport_url, [persistency] persistor_topic and
[database] connection. Output is one JSON document on stdout.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import warnings
from datetime import datetime
from typing import Any

warnings.filterwarnings("ignore")  # eventlet's deprecation notice, on import of oslo.service


def _configure(conf: str) -> None:
    from vitrage.common import config

    config.parse_config(["vitrage-reference", "--config-file", conf])


def notify(conf: str, scenario_path: str) -> dict[str, Any]:
    """Feed vitrage-graph's own PersistNotifier (publisher vitrage.graph, driver messagingv2) the
    before/after states of vertices and edges; it decides which notifications to send."""
    _configure(conf)
    from vitrage.entity_graph.processor.notifier import PersistNotifier
    from vitrage.graph.driver.elements import Edge, Vertex
    from vitrage.graph.driver.networkx_graph import NXGraph

    graph = NXGraph("reference")
    notifier = PersistNotifier()
    with open(scenario_path, encoding="utf-8") as handle:
        steps = json.load(handle)
    for step in steps:
        if "vertex" in step:
            vid = step["vertex"]
            before = Vertex(vid, dict(step["before"])) if step.get("before") else None
            notifier.notify_when_applicable(before, Vertex(vid, dict(step["after"])), True, graph)
        else:
            source, target, label = step["edge"]
            before = Edge(source, target, label, dict(step["before"])) if step.get("before") else None
            notifier.notify_when_applicable(before, Edge(source, target, label, dict(step["after"])), False, graph)
    notifier.oslo_notifier.transport.cleanup()
    return {"steps": len(steps)}


def persist(conf: str, count: int) -> dict[str, Any]:
    """vitrage-persistor's runtime path: an oslo notification listener on the persistor topic with
    VitragePersistorEndpoint (one ORM commit per notification), until COUNT were handled."""
    _configure(conf)
    import oslo_messaging
    from oslo_config import cfg
    from vitrage import messaging, storage
    from vitrage.persistency.service import VitragePersistorEndpoint

    db = storage.get_connection_from_config()
    done = threading.Event()
    failures: list[dict[str, str]] = []
    seen = {"n": 0, "first": None, "last": None}

    class Counting(VitragePersistorEndpoint):
        # Vitrage's own endpoint; only counted and timed. oslo's dispatcher would log an exception
        # and ack the message (allow_requeue=False): the notification is lost. We record which.
        def info(self, ctxt: Any, publisher_id: str, event_type: str, payload: Any, metadata: Any) -> None:
            seen["first"] = seen["first"] or time.monotonic()
            try:
                super().info(ctxt, publisher_id, event_type, payload, metadata)
            except Exception as exc:  # what the listener swallows
                failures.append(
                    {"event_type": event_type, "vitrage_id": str(payload.get("vitrage_id")), "error": repr(exc)[:300]}
                )
            seen["n"] += 1
            seen["last"] = time.monotonic()
            if seen["n"] >= count:
                done.set()

    transport = messaging.get_transport()
    target = oslo_messaging.Target(topic=cfg.CONF.persistency.persistor_topic)
    listener = messaging.get_notification_listener(transport, [target], [Counting(db)])
    listener.start()
    finished = done.wait(timeout=120)  # a notification oslo dropped as a duplicate is never handled
    listener.stop()
    listener.wait()
    transport.cleanup()
    elapsed = (seen["last"] or 0) - (seen["first"] or 0)
    return {"handled": seen["n"], "finished": finished, "failures": failures, "seconds": elapsed}


def _alarm(row: Any) -> dict[str, Any]:
    return {
        key: (value.isoformat() if isinstance(value, datetime) else value)
        for key, value in row.__dict__.items()
        if not key.startswith("_") and key not in ("created_at", "updated_at")
    }


def history(conf: str, ids_path: str) -> dict[str, Any]:
    """What Vitrage's API serves from the history tables: all alarms, active alarms, the active
    count by severity, and the RCA graph of each given alarm (vitrage/storage/history_facade.py)."""
    _configure(conf)
    from vitrage import storage

    facade = storage.get_connection_from_config().history_facade
    with open(ids_path, encoding="utf-8") as handle:
        ids = json.load(handle)
    rca = {}
    for alarm_id in ids:
        nodes, edges = facade.alarm_rca(alarm_id, admin=True)
        rca[alarm_id] = {
            "alarms": sorted((_alarm(n) for n in nodes), key=lambda a: a["vitrage_id"]),
            "edges": sorted([e.source_id, e.target_id, e.label] for e in edges),
        }
    return {
        "alarms": [_alarm(a) for a in facade.get_alarms(limit=0)],
        "active": [_alarm(a) for a in facade.get_alarms(limit=0, only_active_alarms=True)],
        "count": facade.count_active_alarms(is_admin_project=True),
        "rca": rca,
    }


def main(argv: list[str]) -> int:
    command, conf, arg = argv[1], argv[2], argv[3]
    if command == "notify":
        out = notify(conf, arg)
    elif command == "persist":
        out = persist(conf, int(arg))
    elif command == "history":
        out = history(conf, arg)
    else:
        raise SystemExit(f"unknown command {command}")
    sys.stdout.write(json.dumps(out, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
