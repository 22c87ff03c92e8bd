"""`events` filters: exactly the rows asked for, each filter served by an index (the query plan)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from drainer import schema
from drainer.config import Settings
from drainer.db import reads
from drainer.db.engine import Store
from tests.conftest import oslo_v2

pytestmark = pytest.mark.integration

HOST = "3dcee183-ca42-4ccb-84af-9f0196b2e160"


def ids(result):
    assert result.code == 0, result.stderr
    return [json.loads(line)["message_id"] for line in result.stdout.splitlines()]


def test_each_filter_selects_exactly_its_rows_and_after_until_id_is_a_replay_window(rabbit, db, drainer):
    sent = [
        ("m1", "nova.host", HOST, "2026-11-24T07:59:59Z", "nova.host"),
        ("m2", "nova.instance", "vm-1", "2026-11-24T08:10:00Z", "nova.instance"),
        ("m3", "nova.host", HOST, "2026-11-24T08:30:00Z", "vitrage.alarm.activate"),
        ("m4", "nova.host", "host-2", "2026-11-24T08:40:00Z", "nova.host"),
        ("m5", "nova.host", HOST, "2026-11-24T09:00:00Z", "nova.host"),
    ]
    rabbit.publish(
        [
            oslo_v2(
                {"vitrage_entity_type": etype, "vitrage_id": eid, "vitrage_sample_timestamp": ts},
                message_id=m,
                event_type=evtype,
            )
            for m, etype, eid, ts, evtype in sent
        ]
    )
    assert drainer("drain").code == 0

    assert ids(drainer("events", "--entity-id", HOST)) == ["m1", "m3", "m5"]
    assert ids(drainer("events", "--entity-type", "nova.host")) == ["m1", "m3", "m4", "m5"]
    assert ids(drainer("events", "--event-type", "nova.host")) == ["m1", "m4", "m5"]
    assert ids(drainer("events", "--after-id", "1", "--until-id", "4")) == ["m2", "m3", "m4"]
    # The RCA question: everything about this host between these times.
    window = ("--since", "2026-11-24T08:00:00", "--until", "2026-11-24T09:00:00")
    assert ids(drainer("events", "--entity-id", HOST, *window)) == ["m3"]
    assert ids(drainer("events", "--entity-type", "nova.host", "--entity-id", HOST, "--until-id", "3")) == ["m1", "m3"]
    assert ids(drainer("events", "--entity-id", "nobody")) == []


@pytest.fixture
def filled(db):
    """3,000 events over 300 entities, 20 entity types and 50 event types, written directly."""
    store = Store.open(db.url, Settings(db_url=db.url), create=True)
    schema.migrate(store)
    t0 = datetime(2026, 11, 24)
    rows = [
        {
            "message_id": f"k{i}",
            "collector_timestamp": t0 + timedelta(seconds=i),
            "event_type": f"type-{i % 50}",
            "publisher_id": "p",
            "priority": "INFO",
            "entity_type": f"etype-{i % 20}",
            "entity_id": f"entity-{i % 300}",
            "action": "update",
            "payload": "{}",
            "stored_at": t0,
        }
        for i in range(3000)
    ]
    from sqlalchemy import insert

    with store.writer.begin() as conn:
        conn.execute(insert(store.t.events), rows)
        if db.kind == "mysql":
            conn.exec_driver_sql("ANALYZE TABLE drainer_events")
        else:
            conn.exec_driver_sql("ANALYZE")
    yield store
    store.dispose()


@pytest.mark.parametrize(
    ("where", "index"),
    [
        (reads.EventFilter(event_type="type-3"), "ix_drainer_events_event_type"),
        (reads.EventFilter(entity_type="etype-1"), "ix_drainer_events_entity_type"),
        (reads.EventFilter(entity_id="entity-7"), "ix_drainer_events_entity_id"),
        (reads.EventFilter(entity_type="etype-1", entity_id="entity-7"), "ix_drainer_events_entity_id"),
        (
            reads.EventFilter(entity_id="entity-7", since=datetime(2026, 11, 24), until=datetime(2026, 11, 25)),
            "ix_drainer_events_entity_id",
        ),
        (reads.EventFilter(after_id=100, until_id=200), "PRIMARY"),
    ],
)
def test_each_filter_is_served_by_an_index_in_id_order(filled, db, where, index):
    statement = reads.events_page(filled, where, where.after_id or -1, 1000)
    sql = str(statement.compile(filled.engine, compile_kwargs={"literal_binds": True}))
    with filled.engine.connect() as conn:
        if db.kind == "mysql":
            (plan,) = conn.exec_driver_sql("EXPLAIN " + sql).mappings().all()
            assert plan["key"] == index, plan
            assert "filesort" not in (plan["Extra"] or ""), plan  # (column, id): already in id order
        else:
            plan = " | ".join(row[-1] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
            expected = "INTEGER PRIMARY KEY" if index == "PRIMARY" else f"INDEX {index}"
            assert expected in plan, plan
            assert "TEMP B-TREE" not in plan, plan  # no sort step
