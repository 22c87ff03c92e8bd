"""The drainer's `--history vitrage` against Vitrage 15.0.1 itself, on the same notification stream.

Vitrage's own code does everything on the reference side (tests/vitrage/reference.py, in its own
venv): `vitrage-dbsync` makes both databases, vitrage-graph's `PersistNotifier` publishes the
notifications, vitrage-persistor's listener and `VitragePersistorEndpoint` fill database A, and
`HistoryFacadeConnection` (what `vitrage alarm history` and `vitrage rca show` call) reads both.
The drainer drains the same bytes from a second queue bound to the same routing key (a shadow run)
into database B.
"""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import AMQP_URL, run_cli, wait_for
from tests.vitrage.support import Stream, alarm, drain_into, event_types, facade, rows, scenario

pytestmark = [pytest.mark.integration, pytest.mark.vitrage]


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
        # A's change comes before A's activation (a reordered return).
        messages = [change_a, *captured[:5], *captured[6:]]
        stream.replay(messages)
    finally:
        stream.close()
    persisted = upstream.reference("persist", str(len(messages)))
    result = drain_into(drainer, persistor_topic)
    # Both crash after committing their last notifications and before acking them: the broker
    # redelivers A's early change and C's change, byte for byte, to a fresh process. (Within one
    # listener process oslo.messaging drops a repeat it sees within 16 acks of the first, a race
    # with prefetch; a crash always gives a fresh process.)
    redelivered = [change_a, change_c]
    stream = Stream(persistor_topic)
    try:
        stream.replay(redelivered)
    finally:
        stream.close()
    persisted_again = upstream.reference("persist", str(len(redelivered)))
    again = drain_into(drainer, persistor_topic)

    assert persisted_again["failures"] == [] and again.summary["duplicates"] == 2
    lost_upstream = [(f["event_type"], f["vitrage_id"]) for f in persisted["failures"]]
    assert sorted(lost_upstream) == sorted(
        [
            ("vitrage.alarm.change", a),  # before its activation: foreign key
            ("vitrage.alarm.activate", b),  # repeated activation: primary key
            ("vitrage.alarm.activate", emoji["vitrage_id"]),  # 4-byte character in a utf8 column
        ]
    )
    assert result.summary["history_not_applied"] == 3 and again.summary["history_applied"] == 1
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
    assert len(drainer.db.rows("SELECT id FROM drainer_events")) == len(messages)
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
