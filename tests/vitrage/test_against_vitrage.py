"""The drainer's `--history vitrage` against Vitrage 15.0.1 itself, on the same notification stream.

Vitrage's own code does everything on the reference side (tests/vitrage/reference.py, in its own
venv): `vitrage-dbsync` makes both databases, vitrage-graph's `PersistNotifier` publishes the
notifications, vitrage-persistor's listener and `VitragePersistorEndpoint` fill database A, and
`HistoryFacadeConnection` (what `vitrage alarm history` and `vitrage rca show` call) reads both.
The drainer drains the same bytes from a second queue bound to the same routing key (a shadow run)
into database B.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.conftest import AMQP_URL, run_cli, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.vitrage]

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

    def replay(self, messages: list[tuple[Any, bytes]]) -> None:
        self.ch.queue_unbind(self.topic + ".capture", "vitrage", routing_key=self.topic + ".info")
        self.ch.queue_bind(self.topic + ".drainer", "vitrage", routing_key=self.topic + ".info")
        self.ch.confirm_delivery()
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


def test_history_equals_vitrage_persistor_column_by_column(vitrage_side, persistor_topic, tmp_path):
    upstream, drainer = vitrage_side("upstream"), vitrage_side("drainer")
    ids = [str(uuid.uuid4()) for _ in range(3)]
    stream = Stream(persistor_topic)
    try:
        messages = stream.capture(upstream, scenario(ids), tmp_path)
        assert event_types(messages) == [
            "vitrage.alarm.activate",
            "vitrage.alarm.activate",
            "vitrage.alarm.activate",
            "vitrage.causal_relationship.activate",
            "vitrage.causal_relationship.activate",
            "vitrage.alarm.change",
            "vitrage.alarm.change_project_id",
            "vitrage.causal_relationship.deactivate",
            "vitrage.alarm.deactivate",
        ]
        # Vitrage's own rows, which the drain must leave as they are.
        drainer.db.execute("INSERT INTO events (payload, is_vertex, created_at) VALUES ('{\"v\": 1}', 1, NOW())")
        drainer.db.execute(
            "INSERT INTO graph_snapshots (id, event_id, graph_snapshot, created_at) VALUES (1, 1, 'x', NOW())"
        )
        stream.replay(messages)
    finally:
        stream.close()

    persisted = upstream.reference("persist", str(len(messages)))
    result = drain_into(drainer, persistor_topic)

    assert persisted["handled"] == len(messages) and persisted["failures"] == []
    assert result.summary["history_applied"] == len(messages) and result.summary["history_not_applied"] == 0
    expected, got = rows(upstream), rows(drainer)
    assert len(expected["alarms"]) == 3 and len(expected["edges"]) == 2 and len(expected["changes"]) == 1
    assert got == expected
    assert facade(drainer, ids, tmp_path) == facade(upstream, ids, tmp_path)
    assert [tuple(r) for r in drainer.db.rows("SELECT id, payload, is_vertex FROM events")] == [(1, '{"v": 1}', 1)]
    assert [tuple(r) for r in drainer.db.rows("SELECT id, event_id FROM graph_snapshots")] == [(1, 1)]
    assert len(drainer.db.rows("SELECT id FROM drainer_events")) == len(messages)


def test_where_vitrage_loses_history_the_drainer_keeps_it(vitrage_side, persistor_topic, tmp_path):
    """A change before its activation that is redelivered later, a repeated activation (vitrage-graph
    restarted), a byte-identical redelivery of a change, and a 4-byte character in a name."""
    upstream, drainer = vitrage_side("upstream"), vitrage_side("drainer")
    ids = [str(uuid.uuid4()) for _ in range(3)]
    a, b, c = ids
    emoji = alarm(str(uuid.uuid4()), "Disk full \U0001f4be", "WARNING", "2026-11-29 10:00:09+00:00")
    c_crit = scenario(ids)[2]["after"]
    steps = scenario(ids) + [
        {"vertex": b, "before": None, "after": alarm(b, "Überlast – Instanz", "WARNING", "2026-11-29T10:00:08Z")},
        {"vertex": emoji["vitrage_id"], "before": None, "after": emoji},
        {"vertex": c, "before": c_crit, "after": {**c_crit, "vitrage_operational_severity": "WARNING"}},
    ]
    stream = Stream(persistor_topic)
    try:
        captured = stream.capture(upstream, steps, tmp_path)
        change_a, change_c = captured[5], captured[11]
        assert event_types([change_a, change_c]) == ["vitrage.alarm.change"] * 2
        # A's change comes before A's activation (a reordered return), and again, byte for byte,
        # at the end (its redelivery); C's change is redelivered too.
        messages = [change_a, *captured[:5], *captured[6:], change_a, change_c]
        stream.replay(messages)
    finally:
        stream.close()

    persisted = upstream.reference("persist", str(len(messages)))
    result = drain_into(drainer, persistor_topic)

    lost_upstream = [(f["event_type"], f["vitrage_id"]) for f in persisted["failures"]]
    assert sorted(lost_upstream) == sorted(
        [
            ("vitrage.alarm.change", a),  # before its activation: foreign key
            ("vitrage.alarm.activate", b),  # repeated activation: primary key
            ("vitrage.alarm.activate", emoji["vitrage_id"]),  # 4-byte character in a utf8 column
        ]
    )
    assert result.summary["duplicates"] == 2  # the two redeliveries: each stored once
    not_applied = {
        (r.event_type, r.vitrage_id)
        for r in drainer.db.rows(
            "SELECT event_type, vitrage_id FROM drainer_history_outcomes WHERE outcome = 'not_applied'"
        )
    }
    # A's change could not apply on first delivery; its redelivery applied it, once.
    assert not_applied == {("vitrage.alarm.activate", b), ("vitrage.alarm.activate", emoji["vitrage_id"])}
    expected, got = rows(upstream), rows(drainer)
    assert (got["alarms"], got["edges"]) == (expected["alarms"], expected["edges"])
    # Vitrage stored C's redelivered change twice; the drainer once.
    assert [ch[0] for ch in expected["changes"]] == [c, a, c]
    assert got["changes"] == expected["changes"][:2]
    # What upstream lost is kept raw and visible; rebuild-history finds nothing more to apply.
    assert len(drainer.db.rows("SELECT id FROM drainer_events")) == len(messages) - 2
    rebuilt = run_cli("rebuild-history", "--db-url", drainer.db.url, "--queue", persistor_topic + ".drainer")
    assert rebuilt.code == 0, rebuilt.stderr[-2000:]
    assert (rebuilt.summary["applied"], rebuilt.summary["not_applied"]) == (0, 2)
    assert rows(drainer) == got


def test_rebuild_history_applies_a_change_that_came_before_its_alarm(vitrage_side, persistor_topic, tmp_path):
    upstream, drainer = vitrage_side("upstream"), vitrage_side("drainer")
    ids = [str(uuid.uuid4()) for _ in range(3)]
    stream = Stream(persistor_topic)
    try:
        captured = stream.capture(upstream, scenario(ids), tmp_path)
        messages = [captured[5], *captured[:5], *captured[6:]]  # A's change first, never redelivered
        stream.replay(messages)
    finally:
        stream.close()
    persisted = upstream.reference("persist", str(len(messages)))
    result = drain_into(drainer, persistor_topic)
    assert [f["event_type"] for f in persisted["failures"]] == ["vitrage.alarm.change"]
    assert result.summary["history_not_applied"] == 1
    assert rows(drainer) == rows(upstream)  # both without the change, so far

    rebuilt = run_cli("rebuild-history", "--db-url", drainer.db.url, "--queue", persistor_topic + ".drainer")
    assert rebuilt.code == 0 and rebuilt.summary["applied"] == 1, rebuilt.stderr[-2000:]
    got, expected = rows(drainer), rows(upstream)
    assert expected["changes"] == [] and [ch[0] for ch in got["changes"]] == [ids[0]]
    assert (got["alarms"], got["edges"]) == (expected["alarms"], expected["edges"])
    again = run_cli("rebuild-history", "--db-url", drainer.db.url, "--queue", persistor_topic + ".drainer")
    assert again.code == 0 and again.summary["applied"] == 0 and rows(drainer) == got


def test_a_drainer_killed_mid_batch_leaves_the_history_as_a_clean_run_does(vitrage_side, persistor_topic, tmp_path):
    import signal

    from tests.conftest import start_cli
    from tests.faults.support import table_locked, wait_blocked

    upstream, drainer = vitrage_side("upstream"), vitrage_side("drainer")
    ids = [str(uuid.uuid4()) for _ in range(3)]
    stream = Stream(persistor_topic)
    try:
        messages = stream.capture(upstream, scenario(ids), tmp_path)
        stream.replay(messages)
    finally:
        stream.close()
    upstream.reference("persist", str(len(messages)))
    assert run_cli("migrate", "--db-url", drainer.db.url, "--history", "vitrage").code == 0
    args = ["--db-url", drainer.db.url, "--amqp-url", AMQP_URL, "--queue", persistor_topic + ".drainer"]
    with table_locked(drainer.db.url, "changes"):
        proc = start_cli("drain", *args, "--history", "vitrage", "--batch-size", "100")
        wait_blocked(drainer.db.url)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    wait_for(lambda: len(drainer.db.rows("SELECT id FROM drainer_events")) == 0, 10, "nothing committed")

    result = drain_into(drainer, persistor_topic)

    assert result.summary["stored"] == len(messages)
    assert rows(drainer) == rows(upstream)
