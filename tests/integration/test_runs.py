"""The run ledger (drainer_runs), `runs`, and what `status` and `prune` do with it."""

from __future__ import annotations

import json
import signal
import uuid
from datetime import datetime, timedelta

import pytest

from drainer import schema
from drainer.config import Settings
from drainer.db import runs
from drainer.db.batch import BatchHooks, write_batch
from drainer.db.engine import Store
from drainer.errors import BatchNotCommitted
from drainer.model import Event
from tests.conftest import oslo_v2, run_cli, start_cli, wait_for

pytestmark = pytest.mark.integration

# The dialect does not matter here (the SQL is tested on both elsewhere): MariaDB only, for CI time.
mysql_only = pytest.mark.parametrize("db", ["mysql"], indirect=True)

LEDGER = (
    "SELECT run_id, queue, exit_code, error, ended_at, batches, fetched, stored, duplicates, rejected,"
    " oversize, first_id, last_id, lease_holder FROM drainer_runs ORDER BY id"
)


def ledger(db):
    return db.rows(LEDGER)


def test_a_run_s_row_matches_its_summary(rabbit, db, drainer):
    ids = [f"r-{i:04d}" for i in range(250)]
    bodies = [oslo_v2({"n": i}, message_id=m) for i, m in enumerate(ids)]
    rabbit.publish([*bodies[:120], bodies[5], b"not json", *bodies[120:], b"\xff"])

    result = drainer("drain", "--batch-size", "100", "--until-empty")

    assert result.code == 0, result.stderr
    s = result.summary
    (row,) = ledger(db)
    assert row.run_id == s["run_id"] and row.queue == rabbit.queue and row.exit_code == 0 and row.error is None
    assert row.ended_at is not None
    for key in ("batches", "fetched", "stored", "duplicates", "rejected", "oversize", "first_id", "last_id"):
        assert getattr(row, key) == s[key], key
    assert (row.batches, row.fetched, row.stored, row.duplicates, row.rejected) == (3, 253, 250, 1, 2)
    assert (row.first_id, row.last_id) == (1, 250)


def test_a_killed_run_s_row_is_exact_up_to_its_last_commit(rabbit, mysql_db):
    db = mysql_db
    assert run_cli("migrate", "--db-url", db.url).code == 0
    rabbit.publish([oslo_v2({"n": i, "pad": "x" * 2000}) for i in range(3000)])
    proc = start_cli(
        "drain", "--db-url", db.url, "--amqp-url", rabbit.url, "--queue", rabbit.queue,
        "--batch-size", "20", "--until-empty",
    )  # fmt: skip
    try:
        wait_for(lambda: (ledger(db) or [None])[0] is not None and ledger(db)[0].batches >= 3, 60, "three commits")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    (row,) = ledger(db)
    stored = db.rows("SELECT COUNT(*) AS n, MIN(id) AS lo, MAX(id) AS hi FROM drainer_events")[0]
    assert row.ended_at is None and row.exit_code is None  # it never got to write its end
    assert (row.stored, row.first_id, row.last_id) == (stored.n, stored.lo, stored.hi)
    assert row.fetched == row.batches * 20 and row.stored == row.fetched
    assert run_cli("verify", "--db-url", db.url).code == 0  # the ledger and the rows agree


def test_a_batch_whose_ledger_update_fails_commits_nothing(db):
    store = Store.open(db.url, Settings(db_url=db.url, retry_seconds=1), create=True)
    try:
        schema.migrate(store)
        now = datetime(2026, 11, 25)
        event = Event("k1", now, "t", "p", "INFO", None, None, None, '{"a": 1}')

        def record(conn, written):
            result = written.result
            counts = runs.BatchCounts(1, result.stored, 0, 0, 0, result.first_id, result.last_id)
            runs.record_batch(store, conn, "no-such-run", counts)

        with pytest.raises(BatchNotCommitted, match="missing from drainer_runs"):
            write_batch(store, "q.info", [event], [], None, BatchHooks(in_transaction=record))
    finally:
        store.dispose()
    assert db.rows("SELECT COUNT(*) AS n FROM drainer_events")[0].n == 0


@mysql_only
def test_a_run_against_a_missing_queue_is_recorded_and_leaves_no_lease_row(rabbit, db, drainer):
    missing = f"missing-{uuid.uuid4().hex[:8]}.info"
    result = run_cli("drain", "--db-url", db.url, "--amqp-url", rabbit.url, "--queue", missing)

    assert result.code == 66
    (row,) = ledger(db)
    assert (row.queue, row.exit_code, row.error) == (missing, 66, "queue_not_found")
    assert db.rows("SELECT name FROM drainer_leases") == []


@mysql_only
def test_a_run_that_finds_the_lease_held_records_who_holds_it(rabbit, db, drainer):
    db.execute(
        "INSERT INTO drainer_leases (name, holder, acquired_at, expires_at) VALUES (:n, 'ctl-2:77:abc:1', :a, :e)",
        n=rabbit.queue,
        a=datetime.utcnow(),
        e=datetime.utcnow() + timedelta(minutes=5),
    )
    rabbit.publish([oslo_v2({"n": 1})])
    assert drainer("drain").code == 0
    (row,) = ledger(db)
    assert (row.exit_code, row.lease_holder, row.batches, row.stored) == (0, "ctl-2:77:abc:1", 0, 0)


@mysql_only
def test_status_shows_the_last_run_and_the_last_success(rabbit, db, drainer):
    rabbit.publish([oslo_v2({"n": 1})])
    ok = drainer("drain")
    failed = run_cli(
        "drain", "--db-url", db.url, "--amqp-url", "amqp://guest:guest@127.0.0.1:1/%2F",
        "--queue", rabbit.queue, "--retry-seconds", "1",
    )  # fmt: skip
    assert (ok.code, failed.code) == (0, 69)

    report = json.loads(drainer("status", "--json").stdout)

    assert report["last_run"]["run_id"] == failed.summary["run_id"]
    assert (report["last_run"]["exit_code"], report["last_run"]["error"]) == (69, "broker_unavailable")
    assert report["last_success"]["run_id"] == ok.summary["run_id"] and report["last_success"]["stored"] == 1
    text = drainer("status").stdout
    assert f"last success       {ok.summary['run_id']} started" in text
    assert f"last run           {failed.summary['run_id']} started" in text and "exit 69 broker_unavailable" in text


def test_runs_lists_the_ledger_newest_first(rabbit, db, drainer):
    for n in range(3):
        rabbit.publish([oslo_v2({"n": n})])
        assert drainer("drain").code == 0
    result = drainer("runs", "--json", "--limit", "2", "--queue", rabbit.queue)
    assert result.code == 0, result.stderr
    listed = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["first_id"] for r in listed] == [3, 2]
    assert all(r["state"] == "ok" and r["stored"] == 1 and r["ended_at"].endswith("Z") for r in listed)
    table = drainer("runs", "--queue", rabbit.queue).stdout.splitlines()
    assert table[0].split()[:4] == ["run_id", "started_at", "duration_s", "state"] and len(table) == 4


@mysql_only
def test_runs_shows_a_killed_run_as_no_end_recorded(db, drainer):
    store = Store.open(db.url, Settings(db_url=db.url))
    try:
        runs.start(store, "killed00run", "host:1:killed00run:1", "q.info")
    finally:
        store.dispose()
    (row,) = [json.loads(x) for x in drainer("runs", "--json", "--queue", "q.info").stdout.splitlines()]
    assert row["state"] == "no end recorded" and row["exit_code"] is None


def test_prune_runs_older_than_keeps_each_queue_s_newest_success_and_runs_with_rows(rabbit, db, drainer):
    old = datetime.utcnow() - timedelta(days=100)
    for i, (queue, code) in enumerate([("a", 0), ("a", 0), ("a", 75), ("b", 69), ("a", 75)]):
        started = old + timedelta(minutes=i) if i < 4 else datetime.utcnow()
        db.execute(
            "INSERT INTO drainer_runs (run_id, holder, queue, started_at, exit_code) VALUES (:r, 'h', :q, :s, :c)",
            r=f"run{i}",
            q=queue,
            s=started,
            c=code,
        )
    # An old run whose rows are still stored stays: `verify` balances it.
    rabbit.publish([oslo_v2({"n": 1})])
    assert drainer("drain").code == 0
    db.execute("UPDATE drainer_runs SET started_at = :s, exit_code = 75 WHERE first_id = 1", s=old)
    dry = drainer("prune", "--runs-older-than", "30d", "--dry-run")
    assert dry.code == 0 and dry.summary["would_delete"] == 3 and dry.summary["deleted"] == 0
    result = drainer("prune", "--runs-older-than", "30d")
    assert result.code == 0 and result.summary["deleted"] == 3
    # run1 is a's newest success (what `status` shows): kept although old; run4 is recent.
    kept = [r.run_id for r in db.rows("SELECT run_id FROM drainer_runs WHERE first_id IS NULL ORDER BY id")]
    assert kept == ["run1", "run4"] and len(db.rows("SELECT id FROM drainer_runs WHERE first_id = 1")) == 1


def test_prune_counts_the_deleted_rows_of_each_run(rabbit, db, drainer):
    for n in (30, 30):
        rabbit.publish([oslo_v2({"n": i}) for i in range(n)])
        assert drainer("drain").code == 0
    assert drainer("prune", "--before-id", "41", "--chunk-size", "7", "--yes").summary["deleted"] == 40
    assert [(r.stored, r.pruned) for r in db.rows("SELECT stored, pruned FROM drainer_runs ORDER BY id")] == [
        (30, 30),
        (30, 10),
    ]


@mysql_only
def test_the_metrics_count_pending_rejections(rabbit, db, drainer, tmp_path):
    from prometheus_client.parser import text_string_to_metric_families

    rabbit.publish([b"not json", b"[1]", oslo_v2({"n": 1})])
    path = tmp_path / "m.prom"
    result = drainer("drain", "--metrics-file", str(path))
    assert result.code == 0 and result.summary["rejected_pending"] == 2
    db.execute("UPDATE drainer_rejected_messages SET republished_at = :t WHERE id = 1", t=datetime.utcnow())
    rabbit.publish([oslo_v2({"n": 2})])
    assert drainer("drain", "--metrics-file", str(path)).code == 0
    samples = {s.name: s.value for f in text_string_to_metric_families(path.read_text()) for s in f.samples}
    assert samples["vitrage_drainer_rejected_pending"] == 1
    report = json.loads(drainer("status", "--json").stdout)
    assert (report["rejected"], report["rejected_republished"]) == (1, 1)
