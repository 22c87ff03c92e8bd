"""The drain against the real RabbitMQ and MariaDB (and SQLite): rows, bytes, queue depth, exit codes."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime

import pytest

from tests.conftest import fixture_payloads, oslo_v2

pytestmark = pytest.mark.integration


def events(db):
    return db.rows("SELECT id, message_id, collector_timestamp, event_type, payload FROM drainer_events ORDER BY id")


def as_dt(value):
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def test_batch_limit_stores_one_batch_and_leaves_the_rest(rabbit, db, drainer):
    rabbit.publish([oslo_v2({"id": f"vm-{i}"}) for i in range(250)])
    result = drainer("drain", "--batch-size", "100")
    assert result.code == 0, result.stderr
    assert len(events(db)) == 100
    assert rabbit.depth() == 150
    summary = result.summary
    assert summary["fetched"] == 100 and summary["stored"] == 100 and summary["acked"] == 100
    assert summary["batches"] == 1 and summary["queue_remaining"] == 150 and summary["exit_code"] == 0


def test_until_empty_drains_everything_in_queue_order(rabbit, db, drainer):
    ids = [str(uuid.uuid4()) for _ in range(250)]
    rabbit.publish([oslo_v2({"id": f"vm-{i}"}, message_id=m) for i, m in enumerate(ids)])
    result = drainer("drain", "--batch-size", "100", "--until-empty")
    assert result.code == 0, result.stderr
    rows = events(db)
    assert [r.message_id for r in rows] == ids
    assert rabbit.depth() == 0
    assert result.summary["batches"] == 3 and result.summary["stored"] == 250


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)  # the deadline is not about the database
def test_max_seconds_stops_a_long_drain_with_everything_fetched_acked_and_the_rest_queued(rabbit, db, drainer):
    ids = [str(uuid.uuid4()) for _ in range(2000)]
    rabbit.publish([oslo_v2({"id": i}, message_id=m) for i, m in enumerate(ids)])
    # One message a batch: draining all 2,000 takes several seconds, far past the deadline.
    result = drainer("drain", "--batch-size", "1", "--until-empty", "--max-seconds", "1")
    assert result.code == 0, result.stderr
    summary = result.summary
    assert 0 < summary["acked"] < 2000 and "error" not in summary
    assert summary["fetched"] == summary["acked"] == summary["stored"] == summary["batches"]
    assert [r.message_id for r in events(db)] == ids[: summary["acked"]]
    assert rabbit.depth() == 2000 - summary["acked"]
    assert summary["duration_s"] < 1 + 2  # the deadline, one last batch, the lease release


def test_a_finished_run_gives_its_lease_up(rabbit, db, drainer):
    rabbit.publish([oslo_v2({"id": 1})])
    assert drainer("drain").code == 0
    ((holder,),) = db.rows("SELECT holder FROM drainer_leases")
    assert holder is None  # the next run, from any host, need not wait for it to expire


def test_max_batches_bounds_the_run(rabbit, db, drainer):
    rabbit.publish([oslo_v2({"id": i}) for i in range(50)])
    result = drainer("drain", "--batch-size", "10", "--max-batches", "2")
    assert result.code == 0
    assert len(events(db)) == 20 and rabbit.depth() == 30


def test_empty_queue_exits_zero(rabbit, db, drainer):
    result = drainer("drain")
    assert result.code == 0, result.stderr
    assert result.summary["fetched"] == 0 and result.summary["queue_remaining"] == 0


def test_every_fixture_round_trips_with_its_collector_timestamp(rabbit, db, drainer):
    payloads = fixture_payloads()
    rabbit.publish([oslo_v2(p, message_id=name) for name, p in payloads.items()])
    result = drainer("drain")
    assert result.code == 0, result.stderr
    rows = {r.message_id: r for r in events(db)}
    assert set(rows) == set(payloads)
    for name, payload in payloads.items():
        assert json.loads(rows[name].payload) == payload
    inst = rows["driver_inst_snapshot_dynamic.json"]
    assert as_dt(inst.collector_timestamp) == datetime(2015, 12, 1, 12, 46, 41)
    # a malformed date falls back to the envelope timestamp, never rejects
    stack = rows["driver_stack_update_dynamic.json"]
    assert as_dt(stack.collector_timestamp) == datetime(2026, 11, 24, 21, 19, 37, 666931)


POISON = {
    "not_utf8": b"\xff\xfe\x00garbage",
    "not_json": b"{this is not json",
    "json_list": b"[1, 2, 3]",
    "json_string": b'"just a string"',
    "inner_not_json": b'{"oslo.version": "2.0", "oslo.message": "{broken"}',
    "empty": b"",
    "nan": b'{"payload": {"x": NaN}, "message_id": "m-nan"}',
    "infinity": b'{"x": Infinity}',
    "lone_surrogate": b'{"x": "\\ud800"}',
    "too_deep": b"[" * 100_000 + b"]" * 100_000,
}


def test_poison_messages_are_kept_byte_exact_and_neighbours_stored(rabbit, db, drainer):
    bodies = []
    for body in POISON.values():
        bodies += [oslo_v2({"id": str(uuid.uuid4())}), body]
    bodies.append(oslo_v2({"id": "last"}))
    rabbit.publish(bodies)
    result = drainer("drain", "--batch-size", "100")
    assert result.code == 0, result.stderr
    assert len(events(db)) == len(POISON) + 1
    kept = db.rows("SELECT body, reason, queue FROM drainer_rejected_messages ORDER BY id")
    assert [bytes(r.body) for r in kept] == list(POISON.values())
    assert all(r.reason and r.queue == rabbit.queue for r in kept)
    assert rabbit.depth() == 0
    assert result.summary["rejected"] == len(POISON)
    assert {r["event"] for r in result.records} >= {"rejected", "batch", "summary"}


def test_duplicates_in_one_batch_and_across_runs_are_stored_once(rabbit, db, drainer):
    same = oslo_v2({"id": "vm-dup"}, message_id="dup-1")
    rabbit.publish([same, oslo_v2({"id": "a"}, message_id="a-1"), same])
    first = drainer("drain")
    assert first.code == 0 and first.summary["stored"] == 2 and first.summary["duplicates"] == 1
    rabbit.publish([same, oslo_v2({"id": "b"}, message_id="b-1")])  # a redelivery after a crash
    second = drainer("drain")
    assert second.code == 0 and second.summary["stored"] == 1 and second.summary["duplicates"] == 1
    assert [r.message_id for r in events(db)] == ["dup-1", "a-1", "b-1"]


def test_dedupe_key_falls_back_to_amqp_message_id_then_body_hash(rabbit, db, drainer):
    plain = json.dumps({"vitrage_entity_type": "static", "id": "s1"}).encode()
    # `echo '{...}' | publish` ends a body with a newline: it is part of the bytes hashed.
    bare = b'{"id": "p"}\n'
    rabbit.publish(
        [plain, plain, bare, bare, bare.strip()],
        [{"message_id": "amqp-1"}, {"message_id": "amqp-1"}, {}, {}, {}],
    )
    result = drainer("drain")
    assert result.code == 0
    keys = [r.message_id for r in events(db)]
    assert keys == [
        "amqp-1",
        "sha256:" + hashlib.sha256(bare).hexdigest(),
        "sha256:" + hashlib.sha256(bare.strip()).hexdigest(),
    ]
    assert result.summary["duplicates"] == 2 and result.summary["stored"] == 3


def test_unicode_nul_deep_nesting_and_big_integers_round_trip_exactly(rabbit, db, drainer):
    deep: dict = {"leaf": 1}
    for _ in range(60):
        deep = {"n": deep}
    payload = {
        "emoji": "alarm \U0001f525\U0001f4a5",
        "nul": "a\x00b",
        "big": 123456789012345678901234567890,
        "neg": -(2**70),
        "float": 0.1,
        "deep": deep,
        "cjk": "警报",
    }
    rabbit.publish([oslo_v2(payload, message_id="unicode-1")])
    result = drainer("drain")
    assert result.code == 0, result.stderr
    (row,) = events(db)
    assert json.loads(row.payload) == payload
    assert "123456789012345678901234567890" in row.payload


def test_oslo_v1_and_plain_objects_are_events(rabbit, db, drainer):
    v1 = {
        "message_id": "v1-1",
        "publisher_id": "p",
        "event_type": "e",
        "priority": "INFO",
        "payload": {"vitrage_sample_timestamp": "2020-01-02T03:04:05.123456+02:00"},
        "timestamp": "2019-01-01 00:00:00",
    }
    plain = {"vitrage_entity_type": "nagios", "vitrage_sample_date": "2015-12-01T12:46:41Z"}
    rabbit.publish([json.dumps(v1).encode(), json.dumps(plain).encode()])
    assert drainer("drain").code == 0
    first, second = events(db)
    assert first.message_id == "v1-1" and json.loads(first.payload) == v1["payload"]
    assert as_dt(first.collector_timestamp) == datetime(2020, 1, 2, 1, 4, 5, 123456)
    assert json.loads(second.payload) == plain
    assert as_dt(second.collector_timestamp) == datetime(2015, 12, 1, 12, 46, 41)


def test_database_unreachable_exits_69_and_keeps_every_message(rabbit, drainer):
    from tests.conftest import run_cli

    rabbit.publish([oslo_v2({"id": i}) for i in range(5)])
    result = run_cli(
        "drain",
        "--db-url",
        "mysql+pymysql://root:s3cret-pw@127.0.0.1:1/x",
        "--amqp-url",
        rabbit.url,
        "--queue",
        rabbit.queue,
        "--retry-seconds",
        "1",
    )
    assert result.code == 69, result.stderr
    assert result.summary["error"] == "database_unavailable"
    assert "s3cret-pw" not in result.stderr and "Traceback" not in result.stderr
    assert rabbit.depth() == 5


def test_missing_schema_exits_78_and_says_run_migrate(rabbit, sqlite_db):
    from tests.conftest import run_cli

    rabbit.publish([oslo_v2({"id": 1})])
    result = run_cli("drain", "--db-url", sqlite_db.url, "--amqp-url", rabbit.url, "--queue", rabbit.queue)
    assert result.code == 78 and result.summary["error"] == "schema_outdated", result.stderr
    assert "vitrage-drainer migrate" in result.summary["detail"]
    assert result.summary["fetched"] == 0 and rabbit.depth() == 1


def test_schema_behind_exits_78_and_keeps_every_message(rabbit, db, drainer):
    # A drainer upgraded without `migrate`: a migration file of its own is not applied yet.
    db.execute("DELETE FROM drainer_schema_migrations")
    rabbit.publish([oslo_v2({"id": i}) for i in range(3)])
    result = drainer("drain")
    assert result.code == 78 and result.summary["error"] == "schema_outdated", result.stderr
    assert "001_drainer_tables.sql" in result.summary["detail"] and "not applied" in result.summary["detail"]
    assert result.summary["fetched"] == 0 and rabbit.depth() == 3 and events(db) == []


def test_a_table_lacking_a_column_exits_78_and_keeps_every_message(rabbit, db, drainer):
    db.execute("ALTER TABLE drainer_events DROP COLUMN publisher_id")
    rabbit.publish([oslo_v2({"id": i}) for i in range(3)])
    result = drainer("drain")
    assert result.code == 78 and result.summary["error"] == "schema_outdated", result.stderr
    assert "publisher_id" in result.summary["detail"]
    assert result.summary["fetched"] == 0 and rabbit.depth() == 3
    assert db.rows("SELECT COUNT(*) AS n FROM drainer_events")[0].n == 0


@pytest.mark.parametrize(
    "args, env, needle",
    [
        (["drain"], {}, "no database URL"),
        (["drain", "--db-url", "sqlite://", "--batch-size", "0"], {}, "batch size"),
        (["drain", "--db-url", "sqlite://"], {"DRAINER_BATCH_SIZE": "many"}, "DRAINER_BATCH_SIZE"),
        (["drain", "--db-url", "sqlite://", "--no-such-flag"], {}, "unrecognized"),
        (["drain", "--db-url", "sqlite://", "--amqp-url", "http://x"], {}, "amqp://"),
        (["drain", "--config-file", "/nonexistent/vitrage.conf"], {}, "cannot read config file"),
        (["drain", "--db-url", "postgresql://u@h/d"], {}, "unsupported database URL"),
        (["drain", "--db-url", "mysql+pymysql://root@127.0.0.1/test?foo=bar"], {}, "option the driver refuses"),
        (["drain", "--db-url", "mysql+pymysql://u:se/cret-9@h:notaport/db"], {}, "not a valid SQLAlchemy URL"),
        (["drain", "--db-url", "sqlite://", "--amqp-url", 'ampq://guest:p"w,cret-9@h/'], {}, "amqp://"),
    ],
)
def test_configuration_errors_exit_2_with_a_sentence(args, env, needle):
    from tests.conftest import run_cli

    result = run_cli(*args, env=env)
    assert result.code == 2, result.stderr
    assert needle in json.dumps(result.records)
    assert "Traceback" not in result.stderr
    assert "cret-9" not in result.stderr  # a refused URL is never echoed with its password


def test_a_message_id_reused_for_different_content_is_kept_and_a_redelivery_stored_once(rabbit, db, drainer):
    first = oslo_v2({"seq": 1}, message_id="reused-1")
    assert drainer("drain").code == 0  # nothing yet: an empty run
    rabbit.publish([first])
    assert drainer("drain").summary["stored"] == 1
    other = oslo_v2({"seq": 2}, message_id="reused-1")
    in_batch = oslo_v2({"seq": 3}, message_id="reused-1")
    rabbit.publish([first, other, in_batch])

    result = drainer("drain")

    assert result.code == 0, result.stderr
    assert (result.summary["stored"], result.summary["duplicates"], result.summary["rejected"]) == (0, 1, 2)
    kept = db.rows("SELECT body, reason FROM drainer_rejected_messages ORDER BY id")
    assert [r.body for r in kept] == [in_batch, other] or [r.body for r in kept] == [other, in_batch]
    assert all("different content" in r.reason for r in kept)
    assert [json.loads(r.payload) for r in db.rows("SELECT payload FROM drainer_events")] == [{"seq": 1}]
