"""Every database step classifies errors the way the batch does, and a lock held by something that
is not a drainer is never reported as "lease held": real MariaDB and SQLite, real processes.

Each test bounds its own time and releases what it locked; none stops a shared service.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from drainer.config import Settings
from drainer.db import reads
from drainer.db.engine import Store
from tests.conftest import Database, Rabbit, oslo_v2, run_cli, wait_for
from tests.faults.support import db_name, mysql_connect, sessions
from tests.integration.test_operations import grants_db  # noqa: F401 - a fixture

pytestmark = [pytest.mark.faults, pytest.mark.integration]

TABLES = ("drainer_events", "drainer_rejected_messages", "drainer_leases", "drainer_schema_migrations")


@pytest.fixture
def migrated(mysql_db: Database) -> Database:
    assert run_cli("migrate", "--db-url", mysql_db.url).code == 0
    return mysql_db


@contextmanager
def backup_lock(db_url: str, seconds: float) -> Iterator[None]:
    """What mysqldump --lock-tables does: LOCK TABLES ... READ on the drainer's tables from
    another session, released after `seconds` (or when the block ends)."""
    conn = mysql_connect(db_name(db_url))
    with conn.cursor() as cur:
        cur.execute("LOCK TABLES " + ", ".join(f"{t} READ" for t in TABLES))
    timer = threading.Timer(seconds, lambda: conn.query("UNLOCK TABLES"))
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        timer.join()
        conn.close()


@contextmanager
def sqlite_writer(path: str, seconds: float) -> Iterator[None]:
    """Another process's open write transaction (BEGIN IMMEDIATE) on the SQLite file."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("BEGIN IMMEDIATE")
    timer = threading.Timer(seconds, lambda: conn.execute("ROLLBACK"))
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        timer.join()
        conn.close()


def drain_args(rabbit: Rabbit, db: Database, *extra: str) -> tuple[str, ...]:
    return ("drain", "--db-url", db.url, "--amqp-url", rabbit.url, "--queue", rabbit.queue, *extra)


def test_a_backup_lock_shorter_than_the_budget_is_waited_out_and_everything_stored(rabbit, migrated) -> None:
    rabbit.publish([oslo_v2({"seq": i}) for i in range(5)])
    with backup_lock(migrated.url, 6):
        result = run_cli(*drain_args(rabbit, migrated, "--lock-wait-timeout", "2", "--retry-seconds", "8"))
    assert result.code == 0, result.stderr
    assert result.summary["stored"] == 5 and result.summary["lease_holder"] is None
    assert not [r for r in result.records if r.get("event") == "lease_held"]
    assert len(migrated.rows("SELECT id FROM drainer_events")) == 5


def test_a_backup_lock_longer_than_the_budget_is_75_never_a_success(rabbit, migrated, tmp_path: Path) -> None:
    rabbit.publish([oslo_v2({"seq": i}) for i in range(5)])
    metrics = tmp_path / "drainer.prom"
    with backup_lock(migrated.url, 25):
        started = time.monotonic()
        result = run_cli(
            *drain_args(rabbit, migrated, "--lock-wait-timeout", "2", "--retry-seconds", "6"),
            "--metrics-file",
            str(metrics),
        )
        elapsed = time.monotonic() - started
    assert result.code == 75, result.stderr
    assert result.summary["error"] == "database_locked" and result.summary["lease_holder"] is None
    assert "LOCK TABLES" in result.summary["detail"]
    assert elapsed < 20
    assert rabbit.depth() == 5 and result.summary["fetched"] == 0
    assert "last_success" not in metrics.read_text()


@pytest.mark.parametrize(("seconds", "code"), [(4, 0), (25, 75)])
def test_an_open_sqlite_write_transaction_is_waited_out_or_75(rabbit, sqlite_db, seconds: int, code: int) -> None:
    assert run_cli("migrate", "--db-url", sqlite_db.url).code == 0
    rabbit.publish([oslo_v2({"seq": i}) for i in range(3)])
    path = sqlite_db.url.removeprefix("sqlite:///")
    with sqlite_writer(path, seconds):
        result = run_cli(*drain_args(rabbit, sqlite_db, "--lock-wait-timeout", "2", "--retry-seconds", "8"))
    assert result.code == code, result.stderr
    assert result.summary["lease_holder"] is None
    if code == 0:
        assert result.summary["stored"] == 3
    else:
        assert result.summary["error"] == "database_locked" and rabbit.depth() == 3


@contextmanager
def read_only_for(db_url: str, seconds: float) -> Iterator[None]:
    """The server refuses every write with 1290 (read-only during a failover) for `seconds`: a
    trigger on the lease table signals the server's own error number, so only this test's
    database is affected (setting the shared server read-only would hit other sessions)."""
    conn = mysql_connect(db_name(db_url))
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE failover_state (read_only BOOL NOT NULL)")
        cur.execute("INSERT INTO failover_state VALUES (TRUE)")
        for when in ("INSERT", "UPDATE"):
            cur.execute(
                f"CREATE TRIGGER failover_{when.lower()} BEFORE {when} ON drainer_leases FOR EACH ROW "
                "IF (SELECT read_only FROM failover_state) THEN SIGNAL SQLSTATE 'HY000' SET MYSQL_ERRNO = 1290, "
                "MESSAGE_TEXT = 'The MariaDB server is running with the --read-only option so it cannot execute "
                "this statement'; END IF"
            )
    timer = threading.Timer(seconds, lambda: conn.query("UPDATE failover_state SET read_only = FALSE"))
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        timer.join()
        conn.close()


def test_a_server_read_only_for_3s_at_the_lease_is_retried_like_the_batch(rabbit, migrated) -> None:
    rabbit.publish([oslo_v2({"seq": i}) for i in range(3)])
    with read_only_for(migrated.url, 3):
        result = run_cli(*drain_args(rabbit, migrated, "--retry-seconds", "10"))
    assert result.code == 0, result.stderr
    assert result.summary["stored"] == 3
    retries = [r for r in result.records if r.get("event") == "retry"]
    assert retries and all("1290" in r["cause"] for r in retries)
    assert retries[0]["operation"] == "taking the lease"


def test_a_server_read_only_past_the_budget_is_69_after_it(rabbit, migrated) -> None:
    rabbit.publish([oslo_v2({"seq": 1})])
    with read_only_for(migrated.url, 30):
        started = time.monotonic()
        result = run_cli(*drain_args(rabbit, migrated, "--retry-seconds", "3"))
        elapsed = time.monotonic() - started
    assert result.code == 69 and result.summary["error"] == "database_unavailable", result.stderr
    assert 2 < elapsed < 15 and rabbit.depth() == 1


def test_the_read_only_account_used_to_drain_is_77_naming_the_privilege(rabbit, grants_db) -> None:  # noqa: F811
    sql, urls = grants_db
    import subprocess

    owner = run_cli("migrate", "--db-url", urls["owner"])
    assert owner.code == 0, owner.stderr
    part2 = sql.split("\n-- PART 3", 1)[0]  # PART 3 is for --history vitrage only
    subprocess.run(["mariadb", "-uroot", "-h127.0.0.1"], input=part2, text=True, check=True, capture_output=True)
    rabbit.publish([oslo_v2({"seq": 1})])
    result = run_cli("drain", "--db-url", urls["reader"], "--amqp-url", rabbit.url, "--queue", rabbit.queue)
    assert result.code == 77, result.stderr
    assert result.summary["error"] == "database_access_denied"
    # The first write of a drain is its row in the run ledger, before the lease and any fetch.
    assert "command denied" in result.summary["detail"] and "drainer_runs" in result.summary["detail"]
    assert rabbit.depth() == 1


def test_a_pooled_connection_the_server_closed_while_idle_is_replaced(migrated) -> None:
    store = Store.open(migrated.url, Settings(db_url=migrated.url, retry_seconds=5))
    try:
        assert reads.overview(store)["events"] == 0  # leaves one connection idle in the pool
        admin = mysql_connect()
        with admin.cursor() as cur:
            cur.execute("SELECT id FROM information_schema.processlist WHERE db = %s", (db_name(migrated.url),))
            for (session,) in cur.fetchall():
                cur.execute(f"KILL {int(session)}")
        admin.close()
        wait_for(lambda: sessions(migrated.url) == 0, 10, "the server to drop the idle session")
        assert reads.overview(store)["events"] == 0
    finally:
        store.dispose()


@pytest.mark.parametrize("rabbit", [{"x-queue-type": "quorum"}], indirect=True)
def test_a_run_that_cannot_reach_the_database_never_fetches_on_a_quorum_queue(rabbit) -> None:
    rabbit.publish([oslo_v2({"seq": 1})])
    for _ in range(3):
        result = run_cli(
            "drain",
            "--db-url",
            "mysql+pymysql://root@127.0.0.1:1/nowhere",
            "--amqp-url",
            rabbit.url,
            "--queue",
            rabbit.queue,
            "--retry-seconds",
            "1",
        )
        assert result.code == 69 and result.summary["fetched"] == 0
    ((props, _body),) = rabbit.get_all(rabbit.queue)
    assert (props.headers or {}).get("x-delivery-count", 0) == 0  # never delivered before this read


def test_the_broker_connection_lost_while_the_database_waits_is_75_not_a_crash(rabbit, migrated) -> None:
    from tests.faults.support import table_locked, wait_blocked

    rabbit.publish([oslo_v2({"seq": i}) for i in range(5)])
    args = ("--heartbeat", "2", "--retry-seconds", "30", "--lock-wait-timeout", "5")
    results: list = []
    runner = threading.Thread(target=lambda: results.append(run_cli(*drain_args(rabbit, migrated, *args))))
    with table_locked(migrated.url, "drainer_events"):
        runner.start()
        wait_blocked(migrated.url)
        time.sleep(12)  # the lock's length is the scenario: heartbeats are missed meanwhile
    runner.join(90)
    (result,) = results
    assert result.code == 75, result.stderr
    assert result.summary["error"] == "batch_not_committed"
    assert (result.summary["fetched"], result.summary["returned"], result.summary["stored"]) == (5, 5, 0)
    assert migrated.rows("SELECT id FROM drainer_events") == []
    wait_for(lambda: rabbit.depth() == 5, 30, "the batch back in the queue")
