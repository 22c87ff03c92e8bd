"""`--history vitrage` against the real broker and database (MariaDB and SQLite), without Vitrage's
own code; tests/vitrage/ compares the same with Vitrage 15.0.1 itself."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.conftest import oslo_v2, run_cli

pytestmark = pytest.mark.integration


def alarm(vid: str, ts: str = "2026-11-29 10:00:00+00:00", **extra: object) -> dict[str, object]:
    return {
        "vitrage_id": vid,
        "vitrage_category": "ALARM",
        "vitrage_type": "zabbix",
        "name": "Disk almost full",
        "vitrage_aggregated_severity": "WARNING",
        "vitrage_operational_severity": "WARNING",
        "vitrage_resource_id": "host-1",
        "vitrage_resource_type": "nova.host",
        "update_timestamp": ts,
        **extra,
    }


def graph(payload: dict[str, object], event_type: str, message_id: str | None = None) -> bytes:
    body = json.loads(oslo_v2(payload, message_id=message_id, event_type=event_type))
    inner = json.loads(body["oslo.message"])
    inner["publisher_id"] = "vitrage.graph"
    return json.dumps({"oslo.version": "2.0", "oslo.message": json.dumps(inner)}).encode()


@pytest.fixture
def history_db(db):
    result = run_cli("migrate", "--db-url", db.url, "--history", "vitrage")
    assert result.code == 0, result.stderr
    return db


def drain(rabbit, db, *extra: str):
    return run_cli(
        "drain", "--db-url", db.url, "--amqp-url", rabbit.url, "--queue", rabbit.queue, "--history", "vitrage", *extra
    )


def test_migrate_creates_vitrage_s_history_tables_where_there_are_none(history_db):
    tables = {"alarms", "edges", "changes", "drainer_history_outcomes"}
    for table in tables:
        assert history_db.rows(f"SELECT COUNT(*) AS n FROM {table}")[0].n == 0
    again = run_cli("migrate", "--db-url", history_db.url, "--history", "vitrage")
    assert again.code == 0 and again.summary["applied"] == []


def test_migrate_refuses_an_incomplete_set_of_history_tables(db):
    db.execute("CREATE TABLE alarms (vitrage_id VARCHAR(128) PRIMARY KEY)")

    result = run_cli("migrate", "--db-url", db.url, "--history", "vitrage")

    assert result.code == 78 and "edges" in result.summary["message"]


def test_drain_with_history_needs_the_tables(rabbit, db):
    assert run_cli("migrate", "--db-url", db.url).code == 0
    rabbit.publish([graph(alarm("a"), "vitrage.alarm.activate")])

    result = drain(rabbit, db)

    assert result.code == 78 and "migrate --history vitrage" in result.summary["detail"]
    assert rabbit.depth() == 1


def test_alarm_history_is_applied_in_the_batch_and_raw_rows_are_kept(rabbit, history_db):
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    edge = {"source_id": a, "target_id": b, "relationship_type": "causes", "update_timestamp": "2026-11-29 10:00:02"}
    rabbit.publish(
        [
            graph(alarm(a), "vitrage.alarm.activate"),
            graph(alarm(b), "vitrage.alarm.activate"),
            graph(edge, "vitrage.causal_relationship.activate"),
            graph(alarm(a, vitrage_operational_severity="CRITICAL"), "vitrage.alarm.change"),
            graph(alarm(a, "2026-11-29 11:00:00+00:00"), "vitrage.alarm.deactivate"),
            oslo_v2({"vitrage_entity_type": "nova.host", "id": "host-1", "vitrage_datasource_action": "update"}),
        ]
    )

    result = drain(rabbit, history_db)

    assert result.code == 0, result.stderr
    summary = result.summary
    assert (summary["stored"], summary["history_applied"], summary["history_not_applied"]) == (6, 5, 0)
    rows = {r.vitrage_id: r for r in history_db.rows("SELECT vitrage_id, end_timestamp FROM alarms")}
    assert str(rows[a].end_timestamp).startswith("2026-11-29 11:00:00")
    assert str(rows[b].end_timestamp).startswith("2222-02-22 22:22:22")
    assert [(r.source_id, r.target_id, r.label) for r in history_db.rows("SELECT * FROM edges")] == [(a, b, "causes")]
    assert [(r.vitrage_id, r.severity) for r in history_db.rows("SELECT * FROM changes")] == [(a, "CRITICAL")]
    meta = history_db.rows(
        "SELECT event_type, entity_type, entity_id, entity_category, related_id, action FROM drainer_events ORDER BY id"
    )
    assert [tuple(r) for r in meta] == [
        ("vitrage.alarm.activate", "zabbix", a, "ALARM", None, "activate"),
        ("vitrage.alarm.activate", "zabbix", b, "ALARM", None, "activate"),
        ("vitrage.causal_relationship.activate", "causes", a, None, b, "activate"),
        ("vitrage.alarm.change", "zabbix", a, "ALARM", None, "change"),
        ("vitrage.alarm.deactivate", "zabbix", a, "ALARM", None, "deactivate"),
        ("nova.instance", "nova.host", "host-1", None, None, "update"),
    ]


def test_a_redelivered_notification_is_never_applied_twice(rabbit, history_db):
    a = str(uuid.uuid4())
    activate = graph(alarm(a), "vitrage.alarm.activate")
    change = graph(alarm(a, vitrage_operational_severity="CRITICAL"), "vitrage.alarm.change")
    rabbit.publish([activate, change])
    assert drain(rabbit, history_db).code == 0
    rabbit.publish([change, activate])  # a crash between commit and ack: the broker redelivers

    again = drain(rabbit, history_db)

    assert again.code == 0 and again.summary["duplicates"] == 2 and again.summary["history_applied"] == 0
    assert len(history_db.rows("SELECT id FROM changes")) == 1


def test_a_notification_that_cannot_apply_never_fails_the_batch(rabbit, history_db):
    a = str(uuid.uuid4())
    rabbit.publish(
        [
            graph(alarm("ghost", vitrage_operational_severity="CRITICAL"), "vitrage.alarm.change"),
            graph(alarm(a, name="Disk \U0001f4be"), "vitrage.alarm.activate"),
            graph(alarm(a), "vitrage.alarm.activate"),
        ]
    )

    result = drain(rabbit, history_db)

    assert result.code == 0, result.stderr
    assert (result.summary["stored"], result.summary["history_applied"], result.summary["history_not_applied"]) == (
        3,
        1,
        2,
    )
    reasons = [
        r.reason for r in history_db.rows("SELECT reason FROM drainer_history_outcomes WHERE outcome = 'not_applied'")
    ]
    assert sorted(reasons)[0].startswith("name holds a 4-byte character") or any("4-byte" in r for r in reasons)
    assert any("names no alarm" in r for r in reasons)
    assert [r.event for r in map(_Record, result.records) if r.event == "history_not_applied"] == [
        "history_not_applied"
    ] * 2
    assert rabbit.depth() == 0


class _Record:
    def __init__(self, record: dict[str, object]) -> None:
        self.event = record.get("event")


def test_a_value_the_database_refuses_falls_back_to_one_notification_at_a_time(rabbit, mysql_db):
    db = mysql_db
    assert run_cli("migrate", "--db-url", db.url, "--history", "vitrage").code == 0
    db.execute("ALTER TABLE alarms MODIFY vitrage_resource_id VARCHAR(4) NULL")  # an operator's narrower column
    ok, refused = str(uuid.uuid4()), str(uuid.uuid4())
    rabbit.publish(
        [
            graph(alarm(ok, vitrage_resource_id="h1"), "vitrage.alarm.activate"),
            graph(alarm(refused, vitrage_resource_id="host-123"), "vitrage.alarm.activate"),
        ]
    )

    result = drain(rabbit, db)

    assert result.code == 0, result.stderr
    assert [r.vitrage_id for r in db.rows("SELECT vitrage_id FROM alarms")] == [ok]
    (row,) = db.rows("SELECT vitrage_id, reason FROM drainer_history_outcomes WHERE outcome = 'not_applied'")
    assert row.vitrage_id == refused and "database refused" in row.reason and "1406" in row.reason


def test_rebuild_history_applies_events_stored_before_history_was_enabled(rabbit, history_db):
    a = str(uuid.uuid4())
    rabbit.publish(
        [graph(alarm(a), "vitrage.alarm.activate"), graph(alarm(a, "2026-11-30"), "vitrage.alarm.deactivate")]
    )
    plain = run_cli("drain", "--db-url", history_db.url, "--amqp-url", rabbit.url, "--queue", rabbit.queue)
    assert plain.code == 0 and history_db.rows("SELECT COUNT(*) AS n FROM alarms")[0].n == 0

    rebuilt = run_cli("rebuild-history", "--db-url", history_db.url, "--queue", rabbit.queue, "--chunk-size", "1")

    assert rebuilt.code == 0, rebuilt.stderr
    assert (rebuilt.summary["applied"], rebuilt.summary["transactions"]) == (2, 2)
    assert str(history_db.rows("SELECT end_timestamp FROM alarms")[0].end_timestamp).startswith("2026-11-30")
    again = run_cli("rebuild-history", "--db-url", history_db.url, "--queue", rabbit.queue)
    assert again.code == 0 and again.summary["applied"] == 0


def test_rebuild_history_waits_for_a_drain_holding_the_lease(rabbit, history_db):
    from drainer.config import Settings
    from drainer.db import lease as leases
    from drainer.db.engine import Store

    store = Store.open(history_db.url, Settings(db_url=history_db.url))
    try:
        assert leases.acquire(store, rabbit.queue, "other-host:1:run:1", 60) is None
    finally:
        store.dispose()

    result = run_cli("rebuild-history", "--db-url", history_db.url, "--queue", rabbit.queue)

    assert result.code == 75 and result.summary["error"] == "lease_held"


def test_prune_history_expires_ended_alarms_with_their_changes_and_edges(rabbit, history_db):
    old, live = str(uuid.uuid4()), str(uuid.uuid4())
    edge = {"source_id": old, "target_id": live, "relationship_type": "causes", "update_timestamp": "2020-01-01"}
    rabbit.publish(
        [
            graph(alarm(old, "2020-01-01"), "vitrage.alarm.activate"),
            graph(alarm(live, "2020-01-01"), "vitrage.alarm.activate"),
            graph(edge, "vitrage.causal_relationship.activate"),
            graph(alarm(old, "2020-01-02", vitrage_operational_severity="CRITICAL"), "vitrage.alarm.change"),
            graph(alarm(old, "2020-01-03"), "vitrage.alarm.deactivate"),
        ]
    )
    assert drain(rabbit, history_db).code == 0
    dry = run_cli("prune", "--db-url", history_db.url, "--history-older-than", "30d", "--dry-run")
    assert dry.code == 0 and dry.summary["would_delete"] == 1

    result = run_cli("prune", "--db-url", history_db.url, "--history-older-than", "30d")

    assert result.code == 0 and result.summary["deleted"] == 1
    assert [r.vitrage_id for r in history_db.rows("SELECT vitrage_id FROM alarms")] == [live]
    assert history_db.rows("SELECT COUNT(*) AS n FROM changes")[0].n == 0
    assert history_db.rows("SELECT COUNT(*) AS n FROM edges")[0].n == 0
    assert history_db.rows("SELECT COUNT(*) AS n FROM drainer_events")[0].n == 5  # the raw record stays
