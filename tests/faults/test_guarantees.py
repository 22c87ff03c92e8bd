"""Each test here fails when one guarantee of the README breaks (tests/mutation/ breaks them on
purpose): the lease, the deadlines and bounded waits, a COMMIT under SIGTERM, the oversize copy,
every kind of row the database refuses, a bug's exit. They assert rows, bytes, queue depth and exit
codes; each bounds its own time, and none stops a shared service.
"""

from __future__ import annotations

import hashlib
import json
import signal
import sqlite3
import subprocess
import time
import uuid
from datetime import timedelta

import pytest

from tests.conftest import oslo_v2, run_cli, wait_for
from tests.faults.support import (
    CONFIRM_SELECT,
    LiveRun,
    broker_proxy,
    db_name,
    mysql_connect,
    rejection_key,
    sessions,
    table_locked,
    wait_blocked,
)

pytestmark = [pytest.mark.faults, pytest.mark.integration]


def publish_numbered(rabbit, n, **payload):
    ids = [f"g-{i:05d}-{uuid.uuid4().hex[:6]}" for i in range(n)]
    rabbit.publish([oslo_v2({"seq": i, **payload}, message_id=m) for i, m in enumerate(ids)])
    return ids


def stored_ids(db):
    return [r.message_id for r in db.rows("SELECT message_id FROM drainer_events ORDER BY id")]


def drain_args(rabbit, db, *extra, amqp_url=None):
    return ("drain", "--db-url", db.url, "--amqp-url", amqp_url or rabbit.url, "--queue", rabbit.queue, *extra)


@pytest.fixture
def migrated(mysql_db):
    assert run_cli("migrate", "--db-url", mysql_db.url).code == 0
    return mysql_db


@pytest.fixture
def migrated_sqlite(sqlite_db):
    assert run_cli("migrate", "--db-url", sqlite_db.url).code == 0
    return sqlite_db


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture
def broker_user(rabbit):
    """A broker account of this test with a distinctive password; `grant(configure, write, read)`."""
    name = f"drainer-g-{uuid.uuid4().hex[:6]}"
    password = f"Pw-{uuid.uuid4().hex[:12]}"
    rabbitmqctl("add_user", name, password)

    def grant(configure: str = ".*", write: str = ".*", read: str = ".*") -> str:
        rabbitmqctl("set_permissions", "-p", "/", name, configure, write, read)
        return rabbit.url.replace("guest:guest", f"{name}:{password}")

    grant.password = password  # type: ignore[attr-defined]
    yield grant
    rabbitmqctl("delete_user", name)


def lease_row(db, queue):
    rows = db.rows("SELECT holder, acquired_at, renewed_at, expires_at FROM drainer_leases WHERE name = :n", n=queue)
    return rows[0] if rows else None


def renewed_since_taken(db, queue) -> bool:
    row = lease_row(db, queue)
    return row is not None and row.holder is not None and row.renewed_at != row.acquired_at


# -- the lease ---------------------------------------------------------------------------------------


def test_a_lease_is_renewed_while_a_batch_is_retried_and_a_second_drainer_finds_it_held(rabbit, migrated):
    db = migrated
    ids = publish_numbered(rabbit, 30)
    # --retry-seconds + 2 x --socket-timeout + 2 x --heartbeat + 10 s (README, "The lease")
    ttl = 30 + 2 * 5 + 2 * 7 + 10
    with table_locked(db.url):
        timings = ("--lock-wait-timeout", "1", "--retry-seconds", "30", "--socket-timeout", "5", "--heartbeat", "7")
        run = LiveRun(*drain_args(rabbit, db, *timings))
        try:
            # Every attempt's own fence is rolled back with the attempt: only a renewal between
            # attempts moves the committed row while the batch is held.
            wait_for(lambda: renewed_since_taken(db, rabbit.queue), 20, "a renewal while the batch is retried")
            row = lease_row(db, rabbit.queue)
            assert row.expires_at - row.renewed_at == timedelta(seconds=ttl)
            second = run_cli(*drain_args(rabbit, db, "--lock-wait-timeout", "1"))
            assert second.code == 0, second.stderr
            assert second.summary["fetched"] == 0 and second.summary["lease_holder"]
            assert run.proc.poll() is None  # still holding its batch
        except BaseException:
            run.proc.kill()
            raise
    first = run.finish(60)
    assert first.code == 0, first.stderr
    assert stored_ids(db) == ids and rabbit.depth() == 0


def test_a_run_whose_lease_was_taken_exits_75_and_returns_its_batch(rabbit, migrated):
    db = migrated
    publish_numbered(rabbit, 25)
    thief = mysql_connect(db_name(db.url))
    try:
        with table_locked(db.url):
            run = LiveRun(*drain_args(rabbit, db, "--lock-wait-timeout", "1", "--retry-seconds", "30"))
            wait_blocked(db.url)
            with thief.cursor() as cur:  # waits for the attempt holding the row to roll back, then takes it
                cur.execute(
                    "UPDATE drainer_leases SET holder = 'thief:1:x:1',"
                    " expires_at = UTC_TIMESTAMP(6) + INTERVAL 60 SECOND WHERE name = %s",
                    (rabbit.queue,),
                )
        result = run.finish(60)  # the table is free again: only the lost lease stops the commit
    finally:
        thief.close()
    assert result.code == 75, result.stderr
    assert result.summary["error"] == "batch_not_committed" and result.summary["returned"] == 25
    assert result.summary["acked"] == 0
    wait_for(lambda: rabbit.depth() == 25, 30, "the batch back in the queue")
    wait_for(lambda: sessions(db.url) == 0, 30, "the run's session to end")
    assert stored_ids(db) == []
    assert lease_row(db, rabbit.queue).holder == "thief:1:x:1"


# -- SIGTERM while the COMMIT itself is held --------------------------------------------------------


def test_sigterm_while_the_commit_is_held_exits_0_with_everything_acked(rabbit, migrated):
    db = migrated
    ids = publish_numbered(rabbit, 12)
    poison = b"not json, so the last INSERT is of drainer_rejected_messages"
    rabbit.publish([poison])
    key = rejection_key(poison)
    monitor = mysql_connect()
    holder = mysql_connect(db_name(db.url))
    backup = mysql_connect()

    def drainer_doing(prefix: str) -> bool:
        with monitor.cursor() as cur:
            cur.execute(
                "SELECT 1 FROM information_schema.processlist WHERE db = %s AND info LIKE %s",
                (db_name(db.url), prefix + "%"),
            )
            return bool(cur.fetchall())

    # An uncommitted row with the poison's key holds the drainer's last INSERT, so BLOCK_COMMIT can
    # be in place before the drainer reaches its COMMIT (MariaDB BACKUP STAGE blocks commits only).
    with holder.cursor() as cur:
        cur.execute("BEGIN")
        cur.execute(
            "INSERT INTO drainer_rejected_messages (dedupe_key, received_at, queue, reason, body_sha256)"
            " VALUES (%s, NOW(6), 'q', 'test', %s)",
            (key, hashlib.sha256(poison).hexdigest()),
        )
    run = LiveRun(*drain_args(rabbit, db))
    try:
        wait_for(lambda: drainer_doing("INSERT INTO drainer_rejected_messages"), 30, "the drainer to wait on the key")
        with backup.cursor() as cur:
            cur.execute("BACKUP STAGE START")
            cur.execute("BACKUP STAGE BLOCK_COMMIT")
        with holder.cursor() as cur:
            cur.execute("ROLLBACK")
        wait_for(lambda: drainer_doing("COMMIT"), 30, "the drainer to wait in COMMIT")
        run.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: run.saw("signal"), 10, "the drainer to take the signal")
    finally:
        with backup.cursor() as cur:
            cur.execute("BACKUP STAGE END")
        for conn in (holder, backup, monitor):
            conn.close()
    result = run.finish(30)
    assert result.code == 0, result.stderr
    summary = result.summary
    assert summary["returned"] == 0 and summary["acked"] == 13 and summary["stored"] == 12
    assert summary["rejected"] == 1 and "error" not in summary
    assert stored_ids(db) == ids and rabbit.depth() == 0


# -- the deadline and the bounded waits ----------------------------------------------------------------


def test_a_retry_that_succeeds_stores_the_batch_in_queue_order(rabbit, migrated):
    db = migrated
    ids = publish_numbered(rabbit, 40)
    with table_locked(db.url):
        run = LiveRun(*drain_args(rabbit, db, "--lock-wait-timeout", "1", "--retry-seconds", "30"))
        try:
            wait_for(lambda: run.saw("retry") or run.proc.poll() is not None, 30, "the first retry")
        except BaseException:
            run.proc.kill()
            raise
    result = run.finish(60)
    assert result.code == 0, result.stderr
    assert result.summary["stored"] == 40 and result.summary["acked"] == 40 and result.summary["returned"] == 0
    assert stored_ids(db) == ids and rabbit.depth() == 0


def test_a_slow_broker_shortens_the_batch_to_the_fetch_time_bound(rabbit, migrated):
    db = migrated
    ids = publish_numbered(rabbit, 1000)
    with broker_proxy(rabbit.url) as proxy:
        proxy.delay = 0.025  # each basic_get takes 25 ms or more: 1,000 would take 25 s
        started = time.monotonic()
        result = run_cli(*drain_args(rabbit, db, "--batch-size", "1000", amqp_url=proxy.url), timeout=60)
        elapsed = time.monotonic() - started
    assert result.code == 0, result.stderr
    fetched = result.summary["fetched"]
    assert 0 < fetched < 1000 and result.summary["batches"] == 1
    assert result.summary["stored"] == result.summary["acked"] == fetched
    assert stored_ids(db) == ids[:fetched]
    assert rabbit.depth() == 1000 - fetched
    assert elapsed < 10 + 8, f"the batch was held {elapsed:.1f}s"  # FETCH_SECONDS, then write and exit


def test_a_broker_connection_lost_while_fetching_exits_69_and_keeps_every_message(rabbit, migrated):
    db = migrated
    publish_numbered(rabbit, 300)
    with broker_proxy(rabbit.url) as proxy:
        proxy.delay = 0.02
        run = LiveRun(*drain_args(rabbit, db, "--batch-size", "1000", amqp_url=proxy.url))
        try:
            wait_for(lambda: rabbit.depth() <= 280, 30, "the drainer to be fetching")
        finally:
            proxy.cut()
        result = run.finish(30)
    assert result.code == 69 and result.summary["error"] == "broker_unavailable", result.stderr
    assert result.summary["acked"] == 0
    wait_for(lambda: rabbit.depth() == 300, 30, "the broker to requeue what was fetched")
    assert stored_ids(db) == []


def test_an_oversize_copy_never_confirmed_exits_75_in_bounded_time(rabbit, migrated):
    db = migrated
    big = oslo_v2({"blob": "c" * 8000}, message_id="big")
    rabbit.publish([oslo_v2({"n": 1}, message_id="small"), big])
    with broker_proxy(rabbit.url) as proxy:
        proxy.freeze_after = CONFIRM_SELECT  # the connection stays up; the broker's replies stop
        args = drain_args(rabbit, db, "--max-message-bytes", "4096", "--socket-timeout", "2", amqp_url=proxy.url)
        started = time.monotonic()
        run = LiveRun(*args, "--connect-timeout", "1")
        result = run.finish(40)
        elapsed = time.monotonic() - started
        assert proxy.frozen.is_set()
    assert result.code == 75 and result.summary["error"] == "batch_not_committed", result.stderr
    assert elapsed < 2 + 1 + 8, f"took {elapsed:.1f}s"  # the confirm deadline, the close deadline, start-up
    wait_for(lambda: rabbit.depth() == 2, 30, "the batch back in the queue")
    assert stored_ids(db) == [] and db.rows("SELECT id FROM drainer_rejected_messages") == []


def test_a_sqlite_write_lock_is_waited_for_only_lock_wait_timeout(rabbit, migrated_sqlite):
    db = migrated_sqlite
    publish_numbered(rabbit, 3)
    other = sqlite3.connect(db.url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process holds the database's write lock
        started = time.monotonic()
        result = run_cli(*drain_args(rabbit, db, "--lock-wait-timeout", "1", "--retry-seconds", "2"), timeout=60)
        elapsed = time.monotonic() - started
    finally:
        other.close()
    assert result.code == 75 and result.summary["error"] == "database_locked", result.stderr
    assert result.summary["fetched"] == 0 and rabbit.depth() == 3
    # Each try waits the busy timeout (1 s) within the 2 s budget; SQLite's default would be 5 s a try.
    assert elapsed < 4.8, f"waited {elapsed:.1f}s"


# -- the oversize copy --------------------------------------------------------------------------------


def test_a_parked_copy_carries_every_header_and_property_of_the_original(rabbit, migrated, broker_user):
    import pika

    db = migrated
    url = broker_user()
    big = oslo_v2({"blob": "h" * 8000}, message_id="big-1")
    original = {
        "content_type": "application/json",
        "content_encoding": "utf-8",
        "headers": {"x-trace": "kept", "hops": 2},
        "delivery_mode": 1,  # transient on the way in; the parked copy must survive a restart
        "priority": 3,
        "correlation_id": "corr-1",
        "reply_to": "nowhere",
        "expiration": "60000",
        "message_id": "amqp-big-1",
        "timestamp": 1_764_000_000,
        "type": "vitrage.event",
        "user_id": url.split("//", 1)[1].split(":", 1)[0],
        "app_id": "vitrage-collector",
    }
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = conn.channel()
        channel.confirm_delivery()
        channel.queue_bind(rabbit.queue, "amq.topic", routing_key=rabbit.queue)
        channel.basic_publish("amq.topic", rabbit.queue, oslo_v2({"n": 1}, message_id="small"))
        channel.basic_publish("amq.topic", rabbit.queue, big, pika.BasicProperties(**original))
    finally:
        conn.close()
    result = run_cli(*drain_args(rabbit, db, "--max-message-bytes", "4096", amqp_url=url))
    assert result.code == 0, result.stderr
    assert stored_ids(db) == ["small"] and result.summary["oversize"] == 1 and rabbit.depth() == 0
    ((props, body),) = rabbit.get_all(rabbit.queue + ".oversize")
    assert body == big
    assert props.delivery_mode == 2
    assert props.expiration is None and props.user_id is None  # kept as headers instead
    for name in ("content_type", "content_encoding", "priority", "correlation_id", "reply_to", "message_id"):
        assert getattr(props, name) == original[name], name
    assert (props.timestamp, props.type, props.app_id) == (original["timestamp"], original["type"], original["app_id"])
    headers = props.headers
    assert headers["x-trace"] == "kept" and headers["hops"] == 2
    assert headers["x-original-exchange"] == "amq.topic"
    assert headers["x-original-routing-key"] == rabbit.queue
    assert headers["x-original-expiration"] == "60000"
    assert headers["x-original-user-id"] == original["user_id"]
    assert headers["x-drainer-sha256"] == hashlib.sha256(big).hexdigest()
    assert headers["x-drainer-reason"].startswith("oversize: ")
    (row,) = db.rows("SELECT exchange, routing_key, body, body_size, body_sha256 FROM drainer_rejected_messages")
    assert (row.exchange, row.routing_key, row.body) == ("amq.topic", rabbit.queue, None)
    assert (row.body_size, row.body_sha256) == (len(big), hashlib.sha256(big).hexdigest())


def test_a_403_on_the_oversize_queue_exits_77_and_returns_the_batch(rabbit, migrated, broker_user):
    db = migrated
    url = broker_user(write="^$")  # may read and ack, may not publish anywhere
    rabbit.publish([oslo_v2({"n": 1}, message_id="small"), oslo_v2({"blob": "f" * 8000}, message_id="big")])
    result = run_cli(*drain_args(rabbit, db, "--max-message-bytes", "4096", amqp_url=url))
    assert result.code == 77 and result.summary["error"] == "broker_access_denied", result.stderr
    assert result.summary["acked"] == 0 and result.summary["returned"] == 2
    wait_for(lambda: rabbit.depth() == 2, 30, "the batch back in the queue")
    assert stored_ids(db) == []


# -- rows the database refuses ----------------------------------------------------------------------

# (database, how the table is made to refuse one row, the payload it refuses, extra drain flags)
REFUSALS = [
    pytest.param(
        "mysql",
        # A table converted to utf8mb3 (MySQL's old "utf8") cannot hold a 4-byte character.
        "ALTER TABLE drainer_events MODIFY payload LONGTEXT CHARACTER SET utf8mb3 NOT NULL",
        {"alarm": "disk on fire \U0001f525"},
        (),
        id="1366",
    ),
    pytest.param(
        "mysql",
        "ALTER TABLE drainer_events MODIFY payload TEXT NOT NULL",  # 64 KiB
        {"blob": "t" * 70_000},
        (),
        id="1406",
    ),
    pytest.param(
        "mysql",
        "ALTER TABLE drainer_events MODIFY collector_timestamp TIMESTAMP(6) NOT NULL",  # until 2038
        {"vitrage_sample_date": "2100-01-01T00:00:00Z"},
        (),
        id="1292",
    ),
    pytest.param(
        "mysql",
        # A generated column an operator added to index a payload field.
        "ALTER TABLE drainer_events ADD COLUMN alarm_level TINYINT AS (JSON_VALUE(payload, '$.level')) PERSISTENT",
        {"level": 1000},
        (),
        id="1264",
    ),
    pytest.param(
        "mysql",
        None,
        # 1e15 is 4 bytes in the body and 18 in the stored JSON: the row outgrows max_allowed_packet.
        {"samples": [1e16] * 1_100_000},
        ("--max-message-bytes", "7000000"),
        id="1153",
    ),
    pytest.param(
        "mysql",
        "ALTER TABLE drainer_events ADD CONSTRAINT no_poison CHECK (payload NOT LIKE '%refuse-me%')",
        {"tag": "refuse-me"},
        (),
        id="4025",
    ),
    pytest.param(
        "sqlite",
        "CREATE TRIGGER no_poison BEFORE INSERT ON drainer_events WHEN NEW.payload LIKE '%refuse-me%'"
        " BEGIN SELECT RAISE(ABORT, 'refused by a trigger'); END",
        {"tag": "refuse-me"},
        (),
        id="sqlite",
    ),
]


@pytest.mark.parametrize("kind, alter, payload, flags", REFUSALS)
def test_a_row_the_database_refuses_is_set_aside_byte_exact(rabbit, request, kind, alter, payload, flags):
    number = request.node.callspec.id
    expected_reason = {"sqlite": "refused by a trigger", "1153": "oversize"}.get(number, f"({number}, ")
    db = request.getfixturevalue("migrated" if kind == "mysql" else "migrated_sqlite")
    if alter:
        db.execute(alter)
    refused = oslo_v2(payload, message_id="refused").replace(b"1e+16", b"1e15")
    bodies = [oslo_v2({"n": 1}, message_id="before"), refused, oslo_v2({"n": 2}, message_id="after")]
    rabbit.publish(bodies)
    result = run_cli(*drain_args(rabbit, db, *flags), timeout=120)
    assert result.code == 0, result.stderr[-3000:]
    assert stored_ids(db) == ["before", "after"]
    (row,) = db.rows("SELECT body, reason FROM drainer_rejected_messages")
    assert expected_reason in row.reason
    if number == "1153":  # set apart before the INSERT: the bytes are in the oversize queue
        assert row.body is None and result.summary["oversize"] == 1
        assert [body for _props, body in rabbit.get_all(rabbit.queue + ".oversize")] == [refused]
    else:
        assert bytes(row.body) == refused and result.summary["rejected"] == 1
    assert result.summary["stored"] == 2 and result.summary["acked"] == 3
    assert rabbit.depth() == 0


# -- a bug ------------------------------------------------------------------------------------------


def test_an_unexpected_error_exits_1_with_its_traceback_and_no_password(rabbit, migrated_sqlite, broker_user):
    db = migrated_sqlite
    url = broker_user()
    password = broker_user.password
    publish_numbered(rabbit, 3)
    # A lease row no drainer could have written: its text reaches the error's message, password and all.
    db.execute(
        "INSERT INTO drainer_leases (name, holder, expires_at) VALUES (:n, 'someone:1:x:1', :e)",
        n=rabbit.queue,
        e=f"corrupt {password} corrupt",
    )
    result = run_cli(*drain_args(rabbit, db, amqp_url=url))
    assert result.code == 1, result.stderr
    summary = result.summary
    assert summary["exit_code"] == 1 and summary["error"] == "unexpected_error"
    assert "Traceback" in summary["exc_info"] and "ValueError" in summary["exc_info"]
    assert "***" in summary["detail"]
    assert password not in result.stderr + result.stdout
    assert summary["fetched"] == 0 and rabbit.depth() == 3
    assert json.loads(json.dumps(summary))  # one JSON record, traceback inside


def test_an_oversize_body_that_is_not_json_is_parked_not_written_as_a_row(rabbit, migrated):
    db = migrated
    garbage = b"\xff\xfe not json " * 500  # 6,000 bytes that cannot be decoded, over the limit
    rabbit.publish([oslo_v2({"n": 1}, message_id="small"), garbage])
    result = run_cli(*drain_args(rabbit, db, "--max-message-bytes", "4096"))
    assert result.code == 0, result.stderr
    assert stored_ids(db) == ["small"] and result.summary["oversize"] == 1 and rabbit.depth() == 0
    (row,) = db.rows("SELECT body, body_size FROM drainer_rejected_messages")
    assert row.body is None and row.body_size == len(garbage)  # the bytes live in the oversize queue
    assert [body for _props, body in rabbit.get_all(rabbit.queue + ".oversize")] == [garbage]
