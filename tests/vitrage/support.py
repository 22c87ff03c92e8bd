"""Helpers shared by tests/vitrage and the history benchmark: Vitrage-shaped graph changes, a
notification stream captured from Vitrage's notifier and replayed byte for byte, and the rows and
answers compared."""

from __future__ import annotations

import json
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import AMQP_URL, MYSQL_URL, Database, _mysql_admin, run_cli

REFERENCE = Path(__file__).parent / "reference.py"


@dataclass
class VitrageSide:
    """One Vitrage database made by vitrage-dbsync, and an oslo config file pointing at it."""

    db: Database
    conf: Path
    venv: Path

    def drop(self) -> None:
        _mysql_admin(f"DROP DATABASE IF EXISTS {self.db.url.rsplit('/', 1)[1]}")

    def reference(self, command: str, arg: str, timeout: float = 300) -> dict[str, Any]:
        proc = subprocess.run(
            [str(self.venv / "bin" / "python"), str(REFERENCE), command, str(self.conf), arg],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads(proc.stdout.strip().splitlines()[-1])


def _oslo_url(url: str) -> str:
    return url.replace("amqp://", "rabbit://").replace("%2F", "")


def make_side(venv: Path, folder: Path, label: str, topic: str, threads: int | None = 1) -> VitrageSide:
    """A fresh MariaDB database with Vitrage's schema (its own vitrage-dbsync) and an oslo config
    file for it. threads: vitrage-persistor's listener threads (None: Vitrage's default, 64)."""
    name = f"drainer_vitrage_{label}_{uuid.uuid4().hex[:8]}"
    _mysql_admin(f"CREATE DATABASE {name}")
    db = Database(f"{MYSQL_URL}/{name}", "mysql")
    conf = folder / f"vitrage-{label}-{name}.conf"
    executor = f"executor_thread_pool_size = {threads}\n" if threads else ""
    conf.write_text(
        f"[DEFAULT]\ntransport_url = {_oslo_url(AMQP_URL)}\n{executor}"
        f"[persistency]\npersistor_topic = {topic}\n"
        f"[database]\nconnection = {db.url}\n"
    )
    dbsync = subprocess.run(
        [str(venv / "bin" / "vitrage-dbsync"), "--config-file", str(conf)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert dbsync.returncode == 0, dbsync.stderr[-2000:]
    return VitrageSide(db, conf, venv)


# Columns compared row by row. created_at/updated_at are each writer's wall clock; updated_at is
# compared as set or not. changes.id is left out: InnoDB spends an auto-increment value on every
# insert Vitrage's persistor attempts, including the ones that then fail, so ids may differ.
ALARM_COLUMNS = (
    "vitrage_id, start_timestamp, end_timestamp, name, vitrage_type, vitrage_aggregated_severity, "
    "vitrage_operational_severity, project_id, vitrage_resource_type, vitrage_resource_id, "
    "vitrage_resource_project_id, payload, updated_at IS NOT NULL AS updated"
)
EDGE_COLUMNS = "source_id, target_id, label, start_timestamp, end_timestamp, payload, updated_at IS NOT NULL AS updated"
CHANGE_COLUMNS = "vitrage_id, timestamp, severity, payload"


def alarm(vid: str, name: str, severity: str, ts: str, **extra: Any) -> dict[str, Any]:
    """An alarm vertex's properties as vitrage-graph holds them (vitrage/common/constants.py)."""
    return {
        "vitrage_id": vid,
        "vitrage_category": "ALARM",
        "vitrage_type": "prometheus",
        "name": name,
        "severity": severity.lower(),
        "vitrage_aggregated_severity": severity,
        "vitrage_operational_severity": severity,
        "state": "Active",
        "project_id": "7c1b5e8f9a",
        "vitrage_resource_id": f"host-{vid[:4]}",
        "vitrage_resource_type": "nova.host",
        "vitrage_resource_project_id": "7c1b5e8f9a",
        "update_timestamp": ts,
        "vitrage_sample_timestamp": ts,
        "vitrage_is_deleted": False,
        "vitrage_is_placeholder": False,
        **extra,
    }


def causes(ts: str, deleted: bool = False) -> dict[str, Any]:
    return {"relationship_type": "causes", "update_timestamp": ts, "vitrage_is_deleted": deleted}


def scenario(ids: list[str]) -> list[dict[str, Any]]:
    """Graph changes vitrage-graph makes in an RCA story: three alarms, two causal edges, a severity
    change, a resource moving project, then recovery. Timestamps in Vitrage's own formats."""
    a, b, c = ids
    t = "2026-11-29 10:00:0{}.123456+00:00"
    a_crit = alarm(a, "HighCpuLoad", "CRITICAL", t.format(0))
    a_severe = {**a_crit, "vitrage_operational_severity": "SEVERE", "vitrage_aggregated_severity": "SEVERE"}
    b_warn = alarm(b, "Überlast – Instanz", "WARNING", "2026-11-29T10:00:01Z")
    c_crit = alarm(c, "ServiceDown", "CRITICAL", t.format(2), vitrage_type="vitrage")
    return [
        {"vertex": a, "before": None, "after": a_crit},
        {"vertex": b, "before": None, "after": b_warn},
        {"vertex": c, "before": None, "after": c_crit},
        {"edge": [a, b, "causes"], "before": None, "after": causes(t.format(3))},
        {"edge": [b, c, "causes"], "before": None, "after": causes(t.format(3))},
        {"vertex": a, "before": a_crit, "after": {**a_severe, "update_timestamp": t.format(4)}},
        {
            "vertex": b,
            "before": b_warn,
            "after": {**b_warn, "vitrage_resource_project_id": "0f0f0f0f", "update_timestamp": t.format(5)},
        },
        {"edge": [a, b, "causes"], "before": causes(t.format(3)), "after": causes(t.format(6), deleted=True)},
        {
            "vertex": a,
            "before": a_severe,
            "after": {**a_severe, "vitrage_is_deleted": True, "update_timestamp": t.format(7)},
        },
    ]


class Stream:
    """One notification stream, captured from Vitrage's notifier, then replayed byte for byte to
    vitrage-persistor's queue `<topic>.info` and the drainer's `<topic>.drainer`."""

    def __init__(self, topic: str) -> None:
        import pika

        self.topic = topic
        self.confirming = False
        self.conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
        self.ch = self.conn.channel()
        # oslo.messaging's control exchange, declared as its kombu driver declares it by default.
        self.ch.exchange_declare("vitrage", "topic", durable=False)
        for suffix in (".drainer", ".capture"):  # `.info` is the notifier's to declare, with its arguments
            self.ch.queue_declare(topic + suffix, durable=False)
        self.ch.queue_bind(topic + ".capture", "vitrage", routing_key=topic + ".info")

    def capture(self, side: Any, steps: list[dict[str, Any]], tmp_path: Any) -> list[tuple[Any, bytes]]:
        path = tmp_path / f"scenario-{uuid.uuid4().hex[:6]}.json"
        path.write_text(json.dumps(steps))
        side.reference("notify", str(path))
        captured = []
        while True:
            method, props, body = self.ch.basic_get(self.topic + ".capture", auto_ack=True)
            if method is None:
                break
            captured.append((props, body))
        self.ch.queue_purge(self.topic + ".info")  # the notifier's own copy; the replay feeds it
        return captured

    def replay(self, messages: list[tuple[Any, bytes]], to_drainer: bool = True) -> None:
        """Publish the captured bytes, in this order, to `<topic>.info` (and `<topic>.drainer`)."""
        self.ch.queue_unbind(self.topic + ".capture", "vitrage", routing_key=self.topic + ".info")
        if to_drainer:
            self.ch.queue_bind(self.topic + ".drainer", "vitrage", routing_key=self.topic + ".info")
        if not self.confirming:
            self.ch.confirm_delivery()
            self.confirming = True
        for props, body in messages:
            self.ch.basic_publish("vitrage", self.topic + ".info", body, props)
        self.ch.queue_unbind(self.topic + ".drainer", "vitrage", routing_key=self.topic + ".info")

    def close(self) -> None:
        self.conn.close()


def event_types(messages: list[tuple[Any, bytes]]) -> list[str]:
    return [json.loads(json.loads(body)["oslo.message"])["event_type"] for _, body in messages]


def drain_into(side: Any, topic: str, *extra: str) -> Any:
    assert run_cli("migrate", "--db-url", side.db.url, "--history", "vitrage").code == 0
    result = run_cli(
        "drain", "--db-url", side.db.url, "--amqp-url", AMQP_URL, "--queue", topic + ".drainer",
        "--history", "vitrage", "--until-empty", *extra,
    )  # fmt: skip
    assert result.code == 0, result.stderr[-3000:]
    return result


def rows(side: Any) -> dict[str, list[tuple[Any, ...]]]:
    db = side.db
    return {
        "alarms": [tuple(r) for r in db.rows(f"SELECT {ALARM_COLUMNS} FROM alarms ORDER BY vitrage_id")],
        "edges": [tuple(r) for r in db.rows(f"SELECT {EDGE_COLUMNS} FROM edges ORDER BY source_id, target_id")],
        "changes": [tuple(r) for r in db.rows(f"SELECT {CHANGE_COLUMNS} FROM changes ORDER BY id")],
    }


def facade(side: Any, ids: list[str], tmp_path: Any) -> dict[str, Any]:
    path = tmp_path / f"ids-{uuid.uuid4().hex[:6]}.json"
    path.write_text(json.dumps(ids))
    return side.reference("history", str(path))
