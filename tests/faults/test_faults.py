"""Under faults nothing is lost and nothing is doubled: kills, signals, locks, outages, overlaps.

Each test bounds its own time and releases what it locked; none stops a shared service.
"""

from __future__ import annotations

import hashlib
import signal
import subprocess
import time
import uuid
from datetime import datetime, timedelta

import pytest

from tests.conftest import oslo_v2, run_cli, start_cli, wait_for
from tests.faults.support import (
    close_broker_connections,
    db_name,
    mysql_connect,
    rejection_key,
    sessions,
    silent_listener,
    table_locked,
    wait_blocked,
)

pytestmark = [pytest.mark.faults, pytest.mark.integration]


def publish_numbered(rabbit, n, size_pad=0):
    ids = [f"m-{i:06d}-{uuid.uuid4().hex[:6]}" for i in range(n)]
    rabbit.publish([oslo_v2({"seq": i, "pad": "x" * size_pad}, message_id=m) for i, m in enumerate(ids)])
    return ids


def stored_ids(db):
    return [r.message_id for r in db.rows("SELECT message_id FROM drainer_events ORDER BY id")]


def finish(proc, timeout=60):
    out, err = proc.communicate(timeout=timeout)
    from tests.conftest import Result

    return Result(proc.returncode, out, err)


def drain_args(rabbit, db, *extra):
    return ("drain", "--db-url", db.url, "--amqp-url", rabbit.url, "--queue", rabbit.queue, *extra)


@pytest.fixture
def migrated(mysql_db):
    assert run_cli("migrate", "--db-url", mysql_db.url).code == 0
    return mysql_db


def test_sigkill_while_insert_is_blocked_loses_nothing_and_rerun_stores_once(rabbit, migrated):
    db = migrated
    ids = publish_numbered(rabbit, 60)
    with table_locked(db.url):
        proc = start_cli(*drain_args(rabbit, db, "--batch-size", "60"))
        try:
            wait_blocked(db.url)
        finally:
            proc.kill()
            proc.wait(10)
        wait_for(lambda: rabbit.depth() == 60, 30, "the killed run's messages to return")
    wait_for(lambda: sessions(db.url) == 0, 30, "the killed run's session to end")
    assert stored_ids(db) == []
    rerun = run_cli(*drain_args(rabbit, db, "--batch-size", "100"))
    assert rerun.code == 0, rerun.stderr
    assert any(r.get("event") == "lease_takeover" for r in rerun.records)  # its holder is dead
    assert stored_ids(db) == ids
    assert rabbit.depth() == 0


def test_sigterm_while_insert_is_blocked_exits_75_promptly_and_returns_the_batch(rabbit, migrated):
    db = migrated
    ids = publish_numbered(rabbit, 40)
    with table_locked(db.url):
        proc = start_cli(*drain_args(rabbit, db, "--batch-size", "40"))
        wait_blocked(db.url)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        result = finish(proc, timeout=30)
        elapsed = time.monotonic() - started
    assert result.code == 75, result.stderr
    assert elapsed < 10, f"took {elapsed:.1f}s to stop"
    assert result.summary["error"] == "interrupted" and result.summary["returned"] == 40
    assert rabbit.depth() == 40
    wait_for(lambda: sessions(db.url) == 0, 30, "the interrupted session to end")
    assert stored_ids(db) == []  # nothing half-written
    assert run_cli(*drain_args(rabbit, db, "--batch-size", "40")).code == 0  # lease was released
    assert stored_ids(db) == ids


def test_sigterm_between_batches_exits_0_with_everything_acked(rabbit, migrated):
    db = migrated
    publish_numbered(rabbit, 3000)
    proc = start_cli(*drain_args(rabbit, db, "--batch-size", "50", "--until-empty"))
    wait_for(lambda: len(stored_ids(db)) > 0, 30, "the first batch")
    proc.send_signal(signal.SIGTERM)
    result = finish(proc)
    summary = result.summary
    if summary.get("error") == "interrupted":  # the signal landed before a commit: that batch went back
        assert result.code == 75 and 0 < summary["returned"] == summary["fetched"] - summary["acked"]
    else:
        assert result.code == 0, result.stderr
    assert summary["acked"] == summary["stored"] == len(stored_ids(db))
    assert rabbit.depth() == 3000 - summary["acked"]


def test_lock_wait_timeout_is_retried_then_exits_75_without_partial_rows(rabbit, migrated):
    db = migrated
    publish_numbered(rabbit, 20)
    with table_locked(db.url):
        started = time.monotonic()
        result = run_cli(*drain_args(rabbit, db, "--lock-wait-timeout", "1", "--retry-seconds", "3"), timeout=60)
        elapsed = time.monotonic() - started
    assert result.code == 75, result.stderr
    assert result.summary["error"] == "batch_not_committed" and "1205" in result.summary["detail"]
    retries = [r for r in result.records if r.get("event") == "retry"]
    assert retries and retries[0]["attempt"] == 1 and "1205" in retries[0]["cause"]
    assert elapsed < 20
    assert rabbit.depth() == 20
    wait_for(lambda: sessions(db.url) == 0, 30, "the session to end")
    assert stored_ids(db) == []


def test_two_overlapping_runs_store_everything_once_in_queue_order(rabbit, migrated):
    db = migrated
    ids = publish_numbered(rabbit, 3000)
    first = start_cli(*drain_args(rabbit, db, "--batch-size", "100", "--until-empty"))
    wait_for(lambda: len(stored_ids(db)) > 0, 30, "the first run to store a batch")
    second = run_cli(*drain_args(rabbit, db, "--batch-size", "100", "--until-empty"))
    a = finish(first)
    assert a.code == 0 and second.code == 0, a.stderr + second.stderr
    if a.summary["queue_remaining"] != 0 or second.summary["fetched"] == 0:
        held = [r for r in second.records if r.get("event") == "lease_held"]
        assert held and held[0]["holder"].split(":")[1] == str(first.pid)
    assert stored_ids(db) == ids  # once each, ids in queue order
    assert rabbit.depth() == 0


def test_a_live_lease_holds_off_another_run_until_it_expires(rabbit, migrated):
    db = migrated
    publish_numbered(rabbit, 5)
    expires = datetime.utcnow() + timedelta(seconds=3)
    db.execute(
        "INSERT INTO drainer_leases (name, holder, acquired_at, expires_at) VALUES (:n, :h, :a, :e)",
        n=rabbit.queue,
        h="other-host:4242:abcdef",
        a=datetime.utcnow(),
        e=expires,
    )
    held = run_cli(*drain_args(rabbit, db))
    assert held.code == 0 and held.summary["fetched"] == 0
    assert held.summary["lease_holder"] == "other-host:4242:abcdef"
    assert rabbit.depth() == 5
    wait_for(lambda: datetime.utcnow() > expires + timedelta(seconds=0.5), 10, "the lease to expire")
    after = run_cli(*drain_args(rabbit, db))
    assert after.code == 0 and after.summary["stored"] == 5


def test_database_that_never_answers_exits_69_in_bounded_time(rabbit):
    rabbit.publish([oslo_v2({"id": 1})])
    with silent_listener() as peer:
        port = peer.port
        started = time.monotonic()
        result = run_cli(
            "drain",
            "--db-url",
            f"mysql+pymysql://u:hunter2-db@127.0.0.1:{port}/x",
            "--amqp-url",
            rabbit.url,
            "--queue",
            rabbit.queue,
            "--connect-timeout",
            "1",
            "--socket-timeout",
            "2",
            "--retry-seconds",
            "2",
            timeout=60,
        )
        elapsed = time.monotonic() - started
    assert result.code == 69 and result.summary["error"] == "database_unavailable", result.stderr
    assert elapsed < 15
    assert "hunter2-db" not in result.stderr and "Traceback" not in result.stderr
    assert rabbit.depth() == 1


def test_broker_unreachable_exits_69_without_printing_the_password(migrated):
    started = time.monotonic()
    result = run_cli(
        "drain",
        "--db-url",
        migrated.url,
        "--amqp-url",
        "amqp://guest:topsecret-pw@127.0.0.1:1/%2F",
        "--retry-seconds",
        "2",
        timeout=60,
    )
    assert result.code == 69 and result.summary["error"] == "broker_unavailable", result.stderr
    assert time.monotonic() - started < 15
    assert "topsecret-pw" not in result.stderr + result.stdout and "Traceback" not in result.stderr
    assert "guest:***@127.0.0.1:1" in result.summary["detail"]


def test_broker_that_never_answers_exits_69_in_bounded_time(migrated):
    with silent_listener() as peer:
        port = peer.port
        started = time.monotonic()
        result = run_cli(
            "drain",
            "--db-url",
            migrated.url,
            "--amqp-url",
            f"amqp://guest:guest@127.0.0.1:{port}/%2F",
            "--connect-timeout",
            "1",
            "--retry-seconds",
            "2",
            timeout=60,
        )
        elapsed = time.monotonic() - started
    assert result.code == 69, result.stderr
    assert elapsed < 15


def test_wrong_broker_password_exits_77(rabbit, migrated):
    result = run_cli(
        "drain",
        "--db-url",
        migrated.url,
        "--amqp-url",
        "amqp://guest:wrong-pw@127.0.0.1:5672/%2F",
        "--queue",
        rabbit.queue,
    )
    assert result.code == 77 and result.summary["error"] == "broker_access_denied", result.stderr
    assert "wrong-pw" not in result.stderr


def test_wrong_vhost_exits_77_and_names_it(rabbit, migrated):
    result = run_cli(
        "drain",
        "--db-url",
        migrated.url,
        "--amqp-url",
        "amqp://guest:guest@127.0.0.1:5672/no-such-vhost",
        "--queue",
        rabbit.queue,
    )
    assert result.code == 77, result.stderr
    assert "no-such-vhost" in result.summary["detail"]


def test_missing_queue_exits_66_and_names_queue_and_vhost(migrated):
    result = run_cli("drain", "--db-url", migrated.url, "--queue", "no-such-queue.info")
    assert result.code == 66 and result.summary["error"] == "queue_not_found", result.stderr
    assert "'no-such-queue.info'" in result.summary["detail"] and "vhost '/'" in result.summary["detail"]


def test_wrong_database_password_exits_77(rabbit):
    result = run_cli(
        "drain",
        "--db-url",
        "mysql+pymysql://nobody:bad-db-pw@127.0.0.1:3306/test",
        "--amqp-url",
        rabbit.url,
        "--queue",
        rabbit.queue,
    )
    assert result.code == 77 and result.summary["error"] == "database_access_denied", result.stderr
    assert "bad-db-pw" not in result.stderr


def test_oversize_message_is_kept_byte_exact_in_its_queue_and_neighbours_are_stored(rabbit, migrated):
    db = migrated
    big = oslo_v2({"blob": "z" * (20 * 1024 * 1024)}, message_id="big-1")
    rabbit.publish([oslo_v2({"n": 1}, message_id="before"), big, oslo_v2({"n": 2}, message_id="after")])
    result = run_cli(*drain_args(rabbit, db))
    assert result.code == 0, result.stderr
    assert stored_ids(db) == ["before", "after"]
    assert result.summary["oversize"] == 1 and rabbit.depth() == 0
    (row,) = db.rows("SELECT reason, body, body_size, body_sha256 FROM drainer_rejected_messages")
    assert row.body is None and row.body_size == len(big)
    assert row.body_sha256 == hashlib.sha256(big).hexdigest() and "oversize" in row.reason
    parked = rabbit.get_all(rabbit.queue + ".oversize")
    assert len(parked) == 1 and parked[0][1] == big
    assert parked[0][0].headers["x-drainer-reason"].startswith("oversize")


def test_a_batch_larger_than_max_allowed_packet_is_split_and_stored(rabbit, migrated):
    db = migrated
    ids = publish_numbered(rabbit, 1000, size_pad=40_000)  # ~40 MB in one batch, packet is 16 MiB
    result = run_cli(*drain_args(rabbit, db, "--batch-size", "1000"))
    assert result.code == 0, result.stderr
    assert stored_ids(db) == ids


def test_commit_then_crash_redeliveries_are_absorbed(rabbit, migrated):
    db = migrated
    ids = publish_numbered(rabbit, 30)
    # The rows a crashed run committed before it could ack: the same messages, already stored
    # (a redelivery is byte-identical, so it decodes to exactly what was committed).
    from drainer import envelope
    from drainer.model import Delivery

    for i, m in enumerate(ids[:20]):
        event = envelope.decode(
            Delivery(i, oslo_v2({"seq": i, "pad": ""}, message_id=m), "", "", False), datetime.utcnow()
        )
        db.execute(
            "INSERT INTO drainer_events (message_id, collector_timestamp, event_type, publisher_id, priority,"
            " payload, stored_at) VALUES (:m, :t, :e, :p, :pr, :payload, :t)",
            m=m,
            t=event.collector_timestamp,
            e=event.event_type,
            p=event.publisher_id,
            pr=event.priority,
            payload=event.payload,
        )
    result = run_cli(*drain_args(rabbit, db))
    assert result.code == 0, result.stderr
    assert result.summary["duplicates"] == 20 and result.summary["stored"] == 10
    assert stored_ids(db) == ids and rabbit.depth() == 0


def test_a_row_the_database_refuses_is_set_aside_and_the_rest_committed(rabbit, migrated):
    db = migrated
    db.execute("ALTER TABLE drainer_events ADD CONSTRAINT no_poison CHECK (payload NOT LIKE '%refuse-me%')")
    bodies = [oslo_v2({"n": i, "tag": "refuse-me" if i in (3, 7) else "ok"}, message_id=f"r-{i}") for i in range(10)]
    rabbit.publish(bodies)
    result = run_cli(*drain_args(rabbit, db))
    assert result.code == 0, result.stderr
    assert stored_ids(db) == [f"r-{i}" for i in range(10) if i not in (3, 7)]
    kept = db.rows("SELECT reason, body FROM drainer_rejected_messages ORDER BY id")
    assert [bytes(r.body) for r in kept] == [bodies[3], bodies[7]]
    assert all("4025" in r.reason for r in kept)
    assert rabbit.depth() == 0


@pytest.mark.parametrize("rabbit", [{"x-queue-type": "quorum"}], indirect=True)
def test_quorum_queue_drains_like_a_classic_one(rabbit, migrated):
    db = migrated
    ids = publish_numbered(rabbit, 250)
    result = run_cli(*drain_args(rabbit, db, "--batch-size", "100", "--until-empty"))
    assert result.code == 0, result.stderr
    assert stored_ids(db) == ids and rabbit.depth() == 0


@pytest.mark.parametrize("rabbit", [{"x-queue-type": "quorum"}], indirect=True)
def test_quorum_queue_returns_a_killed_runs_messages(rabbit, migrated):
    db = migrated
    ids = publish_numbered(rabbit, 30)
    with table_locked(db.url):
        proc = start_cli(*drain_args(rabbit, db))
        wait_blocked(db.url)
        proc.kill()
        proc.wait(10)
        wait_for(lambda: rabbit.depth() == 30, 30, "redelivery on the quorum queue")
    wait_for(lambda: sessions(db.url) == 0, 30, "the killed session to end")
    assert run_cli(*drain_args(rabbit, db)).code == 0
    stored = stored_ids(db)
    # RabbitMQ 3.10's quorum queue does not return messages in their first order (README,
    # "Quorum queues"); ids follow the order the broker redelivers: all present, each once.
    assert sorted(stored) == sorted(ids) and len(stored) == len(ids)


def test_broker_connection_lost_during_the_write_is_not_committed(rabbit, migrated):
    db = migrated
    ids = publish_numbered(rabbit, 25)
    with table_locked(db.url):
        proc = start_cli(*drain_args(rabbit, db))
        wait_blocked(db.url)
        assert close_broker_connections(rabbit.queue) == 1
        wait_for(lambda: rabbit.depth() == 25, 30, "the broker to requeue")
    result = finish(proc)
    assert result.code == 75 and result.summary["error"] == "batch_not_committed", result.stderr
    assert stored_ids(db) == []
    assert run_cli(*drain_args(rabbit, db)).code == 0
    assert stored_ids(db) == ids


def test_ack_lost_after_commit_is_reported_and_the_redeliveries_stored_once(rabbit, migrated):
    """Cut the broker while the COMMIT itself is held (MariaDB BACKUP STAGE BLOCK_COMMIT)."""
    db = migrated
    ids = publish_numbered(rabbit, 15)
    poison = b"not json at all"
    rabbit.publish([poison])
    monitor = mysql_connect()
    state = monitor.cursor()

    def drainer_doing(prefix: str) -> bool:
        state.execute(
            "SELECT state, info FROM information_schema.processlist WHERE db = %s AND info LIKE %s",
            (db_name(db.url), prefix + "%"),
        )
        return bool(state.fetchall())

    # An uncommitted row with the poison's key: the drainer's INSERT of it waits on that key's lock,
    # after its events are written and before its COMMIT.
    holder = mysql_connect(db_name(db.url)).cursor()
    holder.execute("BEGIN")
    holder.execute(
        "INSERT INTO drainer_rejected_messages (dedupe_key, received_at, queue, reason, body_sha256) "
        "VALUES (%s, NOW(6), 'q', 'test', %s)",
        (rejection_key(poison), hashlib.sha256(poison).hexdigest()),
    )
    proc = start_cli(*drain_args(rabbit, db))
    backup = mysql_connect().cursor()
    try:
        wait_for(lambda: drainer_doing("INSERT INTO drainer_rejected_messages"), 30, "the drainer to wait on the key")
        backup.execute("BACKUP STAGE START")
        backup.execute("BACKUP STAGE BLOCK_COMMIT")
        holder.execute("ROLLBACK")
        wait_for(lambda: drainer_doing("COMMIT"), 30, "the drainer to wait in COMMIT")
        assert close_broker_connections(rabbit.queue) == 1
    finally:
        backup.execute("BACKUP STAGE END")
        holder.connection.close()
        backup.connection.close()
        monitor.close()
    result = finish(proc)
    assert result.code == 75 and result.summary["error"] == "ack_failed_after_commit", result.stderr
    assert result.summary["stored"] == 15 and result.summary["rejected"] == 1 and result.summary["acked"] == 0
    wait_for(lambda: rabbit.depth() == 16, 30, "the broker to requeue the committed batch")
    rerun = run_cli(*drain_args(rabbit, db))
    assert rerun.code == 0 and rerun.summary["duplicates"] == 16 and rerun.summary["stored"] == 0
    assert stored_ids(db) == ids
    assert [bytes(r.body) for r in db.rows("SELECT body FROM drainer_rejected_messages")] == [poison]


def test_a_password_with_a_comma_is_never_printed(migrated):
    result = run_cli(
        "drain",
        "--db-url",
        migrated.url,
        "--amqp-url",
        "amqp://guest:p,w0rd-x@127.0.0.1:1/%2F",
        "--retry-seconds",
        "1",
        timeout=60,
    )
    assert result.code == 69, result.stderr
    assert "p,w0rd-x" not in result.stderr + result.stdout


@pytest.fixture
def quorum_oversize_queue(rabbit):
    conn = rabbit.connection()
    conn.channel().queue_declare(rabbit.queue + ".oversize", durable=True, arguments={"x-queue-type": "quorum"})
    conn.close()
    return rabbit.queue + ".oversize"


def test_oversize_goes_to_an_existing_quorum_queue_and_loses_no_ttl_copy(rabbit, migrated, quorum_oversize_queue):
    db = migrated
    big = oslo_v2({"blob": "q" * 8000}, message_id="big")
    rabbit.publish([oslo_v2({"n": 1}, message_id="small"), big], [{}, {"expiration": "2000"}])
    result = run_cli(*drain_args(rabbit, db, "--max-message-bytes", "4096"))
    assert result.code == 0, result.stderr
    assert stored_ids(db) == ["small"] and result.summary["oversize"] == 1
    ((props, body),) = rabbit.get_all(quorum_oversize_queue)
    assert body == big and props.expiration is None
    assert props.headers["x-original-expiration"] == "2000"
    assert props.headers["x-drainer-sha256"] == hashlib.sha256(big).hexdigest()


def test_a_batch_stops_growing_at_max_batch_bytes(rabbit, migrated):
    db = migrated
    ids = publish_numbered(rabbit, 10, size_pad=2000)
    result = run_cli(*drain_args(rabbit, db, "--max-batch-bytes", "4096"))
    assert result.code == 0, result.stderr
    assert result.summary["fetched"] == 2 and stored_ids(db) == ids[:2]
    assert run_cli(*drain_args(rabbit, db, "--max-batch-bytes", "4096", "--until-empty")).code == 0
    assert stored_ids(db) == ids


@pytest.fixture
def reader_without_permission(rabbit):
    user = f"drainer-noread-{uuid.uuid4().hex[:6]}"

    def ctl(*args):
        subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=60)

    ctl("add_user", user, "noread-pw")
    ctl("set_permissions", "-p", "/", user, ".*", ".*", "^$")  # may configure and write, not read
    yield rabbit.url.replace("guest:guest", f"{user}:noread-pw")
    ctl("delete_user", user)


def test_a_user_without_read_permission_exits_77(rabbit, migrated, reader_without_permission):
    rabbit.publish([oslo_v2({"n": 1})])
    result = run_cli(
        "drain", "--db-url", migrated.url, "--amqp-url", reader_without_permission, "--queue", rabbit.queue
    )
    assert result.code == 77 and result.summary["error"] == "broker_access_denied", result.stderr
    assert rabbit.depth() == 1


def test_sigterm_while_connecting_exits_75_not_a_silent_success(rabbit):
    with silent_listener() as peer:
        port = peer.port
        proc = start_cli(
            "drain",
            "--db-url",
            f"mysql+pymysql://u:p@127.0.0.1:{port}/x",
            "--amqp-url",
            rabbit.url,
            "--queue",
            rabbit.queue,
            "--socket-timeout",
            "30",
            "--retry-seconds",
            "30",
        )
        wait_for(lambda: peer.accepted, 30, "the drainer to connect to the silent database")
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        result = finish(proc, timeout=30)
    assert time.monotonic() - started < 5
    assert result.code == 75 and result.summary["error"] == "interrupted", result.stderr


def catches_sigterm(pid: int) -> bool:
    """True once the process has a handler of its own for SIGTERM (proc(5): SigCgt, bit 15 - 1)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            caught = next(line for line in status if line.startswith("SigCgt:"))
    except (OSError, StopIteration):
        return False
    return bool(int(caught.split()[1], 16) >> (signal.SIGTERM - 1) & 1)


def test_sigterm_while_the_drainer_starts_is_an_interrupted_run_with_its_summary(rabbit, migrated):
    rabbit.publish([oslo_v2({"n": 1})])
    proc = start_cli(*drain_args(rabbit, migrated))
    # The first thing main() does is to catch the signal; the imports and the connects follow.
    wait_for(lambda: catches_sigterm(proc.pid) or proc.poll() is not None, 30, "the drainer to catch SIGTERM")
    proc.send_signal(signal.SIGTERM)
    result = finish(proc, timeout=60)
    assert result.code == 75 and result.summary["error"] == "interrupted", result.stderr
    assert result.summary["fetched"] == 0 and rabbit.depth() == 1


def test_sigterm_after_the_summary_leaves_the_exit_code_the_summary_gives(rabbit, migrated):
    from tests.faults.support import LiveRun

    rabbit.publish([oslo_v2({"n": i}) for i in range(5)])
    run = LiveRun(*drain_args(rabbit, migrated))
    wait_for(lambda: run.saw("summary") or run.proc.poll() is not None, 60, "the summary record")
    try:
        run.proc.send_signal(signal.SIGTERM)  # a CronJob deadline that fires as the run ends
    except ProcessLookupError:
        pass
    result = run.finish(30)
    assert result.code == 0 and result.summary["exit_code"] == 0, result.stderr
    assert result.records[-1]["event"] == "summary"  # nothing logged after it
    assert rabbit.depth() == 0


def test_the_same_oversize_message_twice_in_a_batch_is_parked_once(rabbit, migrated):
    db = migrated
    big = b'{"blob": "' + b"o" * 6000 + b'"}'
    rabbit.publish([big, oslo_v2({"n": 1}, message_id="between"), big])
    result = run_cli(*drain_args(rabbit, db, "--max-message-bytes", "4096"))
    assert result.code == 0, result.stderr
    assert result.summary["oversize"] == 1 and result.summary["duplicates"] == 1
    assert stored_ids(db) == ["between"] and rabbit.depth() == 0
    assert [body for _props, body in rabbit.get_all(rabbit.queue + ".oversize")] == [big]


def test_a_database_back_within_the_retry_budget_gets_the_batch(rabbit, migrated):
    """A failover behind a VIP: the connection drops mid-batch and for a while no node answers, so
    the lease renewal between attempts fails too. The retry goes on within its budget (the next
    attempt's fence renews the lease or finds it lost) and commits once the VIP answers again."""
    from urllib.parse import urlsplit, urlunsplit

    from tests.faults.vip import vip

    db = migrated
    ids = publish_numbered(rabbit, 30)
    parts = urlsplit(db.url)
    with vip((parts.hostname, parts.port or 3306)) as v:
        url = urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{v.port}"))
        with table_locked(db.url):
            proc = start_cli(
                "drain", "--db-url", url, "--amqp-url", rabbit.url, "--queue", rabbit.queue, "--retry-seconds", "30"
            )
            try:
                wait_blocked(db.url)
                v.move(None)  # the VIP is nowhere: open connections drop, new ones are turned away

                def still_retrying() -> bool:
                    assert proc.poll() is None, finish(proc).stderr  # gave up inside its budget
                    return v.refused >= 3  # the renewal between attempts, then two more attempts

                wait_for(still_retrying, 20, "the batch to be retried while the VIP is down")
                v.move((parts.hostname, parts.port or 3306))
            except BaseException:
                proc.kill()
                raise
        result = finish(proc)
    assert result.code == 0, result.stderr
    assert stored_ids(db) == ids and rabbit.depth() == 0
