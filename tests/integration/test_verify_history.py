"""`verify --history vitrage`: Vitrage's alarms, edges and changes against the stored notifications,
recomputed with the drain's own projection."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.conftest import run_cli
from tests.integration.test_history import alarm, drain, graph, history_db  # noqa: F401  (fixture)

pytestmark = pytest.mark.integration

# The dialect does not matter here (the SQL is tested on both elsewhere): MariaDB only, for CI time.
mysql_only = pytest.mark.parametrize("db", ["mysql"], indirect=True)


def verify(db, *extra):
    result = run_cli("verify", "--json", "--history", "vitrage", "--db-url", db.url, *extra)
    assert result.code in (0, 1), result.stderr
    return result.code, json.loads(result.stdout)


def checks(report, key="findings"):
    return [f["check"] for f in report[key]]


@pytest.fixture
def drained(rabbit, history_db):  # noqa: F811
    """Two alarms, an edge, changes and a deactivation, a change drained before its alarm, and a
    second batch that redelivers it: what a day of vitrage-graph looks like."""
    a, b, late = (str(uuid.uuid4()) for _ in range(3))
    edge = {"source_id": a, "target_id": b, "relationship_type": "causes", "update_timestamp": "2026-11-29 10:00:02"}
    early_change = graph(alarm(late, vitrage_operational_severity="CRITICAL"), "vitrage.alarm.change")
    rabbit.publish(
        [
            graph(alarm(a), "vitrage.alarm.activate"),
            graph(alarm(b), "vitrage.alarm.activate"),
            graph(edge, "vitrage.causal_relationship.activate"),
            graph(
                alarm(a, "2026-11-29 10:30:00+00:00", vitrage_operational_severity="CRITICAL"), "vitrage.alarm.change"
            ),
            early_change,  # its alarm is not activated yet: not applied, kept
        ]
    )
    assert drain(rabbit, history_db).code == 0
    rabbit.publish(
        [
            graph(alarm(late), "vitrage.alarm.activate"),
            early_change,  # redelivered: applied now
            graph(alarm(a, "2026-11-29 11:00:00+00:00"), "vitrage.alarm.deactivate"),
        ]
    )
    assert drain(rabbit, history_db).summary["history_applied"] >= 3
    return history_db, a, b, late


def test_a_history_the_drain_wrote_is_what_the_notifications_imply(drained):
    db, _a, _b, _late = drained
    code, report = verify(db)
    assert code == 0, report["findings"]
    assert report["checked"]["history"] is True
    assert checks(report, "information") == []


def test_a_changed_alarm_a_lost_change_and_a_doubled_one_are_findings(drained):
    db, a, b, late = drained
    db.execute("UPDATE alarms SET vitrage_operational_severity = 'OK' WHERE vitrage_id = :a", a=b)
    db.execute("DELETE FROM changes WHERE vitrage_id = :a", a=a)
    db.execute(
        "INSERT INTO changes (vitrage_id, timestamp, severity, payload, created_at)"
        " SELECT vitrage_id, timestamp, severity, payload, created_at FROM changes WHERE vitrage_id = :v",
        v=late,
    )
    code, report = verify(db)
    assert code == 1
    assert sorted(checks(report)) == ["history_alarm_differs", "history_change_doubled", "history_change_missing"]
    differs = next(f for f in report["findings"] if f["check"] == "history_alarm_differs")
    assert differs["key"] == b and differs["column"] == "vitrage_operational_severity"


@mysql_only
def test_an_active_alarm_missing_is_a_finding_an_expired_one_information(drained):
    db, a, b, _late = drained
    db.execute("DELETE FROM edges")
    db.execute("DELETE FROM changes WHERE vitrage_id = :a", a=a)
    db.execute("DELETE FROM alarms WHERE vitrage_id = :a", a=a)  # ended 11:00: an expirer's work
    code, report = verify(db)
    assert code == 0 and checks(report, "information") == ["history_expired"]
    db.execute("DELETE FROM alarms WHERE vitrage_id = :b", b=b)  # still active: lost
    code, report = verify(db)
    assert code == 1 and checks(report) == ["history_alarm_missing"] and report["findings"][0]["key"] == b


@mysql_only
def test_rows_from_before_the_drainer_are_information(drained):
    db, *_ = drained
    db.execute(
        "INSERT INTO alarms (vitrage_id, start_timestamp, end_timestamp, name, vitrage_type,"
        " vitrage_aggregated_severity, vitrage_operational_severity)"
        " VALUES ('from-vitrage-persistor', '2026-01-01 00:00:00', '2222-02-22 22:22:22', 'old', 'nagios', 'OK', 'OK')"
    )
    code, report = verify(db)
    assert code == 0 and checks(report, "information") == ["history_rows_not_from_stored_notifications"]
    assert report["information"][0]["alarms"] == 1


@mysql_only
def test_notifications_stored_before_history_was_enabled_are_information(rabbit, history_db):  # noqa: F811
    rabbit.publish([graph(alarm(str(uuid.uuid4())), "vitrage.alarm.activate")])
    plain = run_cli("drain", "--db-url", history_db.url, "--amqp-url", rabbit.url, "--queue", rabbit.queue)
    assert plain.code == 0
    code, report = verify(history_db)
    assert code == 0 and checks(report, "information") == ["history_never_applied"]
    assert "rebuild-history" in report["information"][0]["message"]
    assert run_cli("rebuild-history", "--db-url", history_db.url, "--queue", rabbit.queue).code == 0
    assert verify(history_db) == (0, verify(history_db)[1]) and verify(history_db)[1]["information"] == []
