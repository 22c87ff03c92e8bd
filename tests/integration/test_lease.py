"""`lease show` and `lease release`: states as the database clock sees them, refusals, and what
--force does to a drain that is running (nothing lost, nothing twice, order kept)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from datetime import datetime, timedelta

import pytest

from tests.conftest import oslo_v2, run_cli, start_cli, wait_for
from tests.integration.test_operations import grants_db  # noqa: F401  (fixture)

pytestmark = pytest.mark.integration

# The dialect does not matter here (the SQL is tested on both elsewhere): MariaDB only, for CI time.
mysql_only = pytest.mark.parametrize("db", ["mysql"], indirect=True)


def _pidns() -> str:
    return str(os.stat("/proc/self/ns/pid").st_ino)


def dead_holder() -> str:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return f"{socket.gethostname()}:{proc.stdout.strip()}:deadrun:{_pidns()}"


def put_lease(db, name, holder, expires_in_s):
    now = datetime.utcnow()
    db.execute(
        "INSERT INTO drainer_leases (name, holder, acquired_at, renewed_at, expires_at) VALUES (:n, :h, :a, :a, :e)",
        n=name,
        h=holder,
        a=now,
        e=now + timedelta(seconds=expires_in_s),
    )


def leases(db):
    return {
        r.name if isinstance(r.name, str) else r.name.decode(): r.holder
        for r in db.rows("SELECT * FROM drainer_leases")
    }


@pytest.fixture
def four_leases(db, drainer):
    put_lease(db, "free.info", None, -10)
    put_lease(db, "live.info", "ctl-2:4242:liverun:1", 300)
    put_lease(db, "expired.info", "ctl-3:77:oldrun:1", -5)
    put_lease(db, "dead.info", dead_holder(), 300)
    return db


def test_lease_show_gives_each_queue_s_state(four_leases, drainer):
    result = drainer("lease", "show", "--json")
    assert result.code == 0, result.stderr
    shown = {r["queue"]: r for r in map(json.loads, result.stdout.splitlines())}
    assert {q: r["state"] for q, r in shown.items()} == {
        "free.info": "free",
        "live.info": "held",
        "expired.info": "expired",
        "dead.info": "held by a dead process",
    }
    assert 280 < shown["live.info"]["expires_in_s"] <= 300 and shown["free.info"]["expires_in_s"] is None
    table = drainer("lease", "show").stdout.splitlines()
    assert table[0].split() == list(("queue", "state", "holder", "acquired_at", "renewed_at", "expires_in_s"))


@pytest.mark.parametrize("queue", ["free.info", "expired.info", "dead.info"])
@mysql_only
def test_lease_release_removes_a_lease_nobody_live_holds(four_leases, drainer, queue):
    result = drainer("lease", "release", queue)
    assert result.code == 0, result.stderr
    assert queue not in leases(four_leases) and "live.info" in leases(four_leases)


@mysql_only
def test_lease_release_refuses_a_live_holder_unless_forced(four_leases, drainer):
    refused = drainer("lease", "release", "live.info")
    assert refused.code == 75 and refused.summary["error"] == "lease_held"
    assert "ctl-2:4242:liverun:1" in refused.summary["message"] and "--force" in refused.summary["message"]
    assert leases(four_leases)["live.info"] == "ctl-2:4242:liverun:1"
    forced = drainer("lease", "release", "live.info", "--force")
    assert forced.code == 0 and "live.info" not in leases(four_leases)
    assert any(r.get("event") == "lease_forced" for r in forced.records)
    assert drainer("lease", "release", "nowhere.info").code == 66


def test_force_release_under_a_running_drain_loses_nothing_and_stores_nothing_twice(rabbit, mysql_db):
    db = mysql_db
    assert run_cli("migrate", "--db-url", db.url).code == 0
    ids = [f"f-{i:05d}" for i in range(3000)]
    rabbit.publish([oslo_v2({"n": i}, message_id=m) for i, m in enumerate(ids)])
    base = ("--db-url", db.url, "--amqp-url", rabbit.url, "--queue", rabbit.queue)
    proc = start_cli("drain", *base, "--batch-size", "5", "--until-empty")
    try:
        wait_for(lambda: (db.rows("SELECT MAX(batches) AS b FROM drainer_runs")[0].b or 0) >= 3, 60, "three batches")
        forced = run_cli("lease", "release", rabbit.queue, "--force", "--db-url", db.url)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert forced.code == 0, forced.stderr
    assert proc.returncode == 75 and '"batch_not_committed"' in err  # its next batch failed its lease check
    assert run_cli("drain", *base, "--until-empty").code == 0
    stored = [r.message_id for r in db.rows("SELECT message_id FROM drainer_events ORDER BY id")]
    assert stored == ids  # all of them, once each, in queue order


def test_lease_release_as_the_drain_account_is_refused(rabbit, grants_db):  # noqa: F811
    sql, urls = grants_db
    assert run_cli("migrate", "--db-url", urls["owner"]).code == 0
    part2 = sql.split("\n-- PART 3", 1)[0]  # PART 3 is for --history vitrage only
    subprocess.run(["mariadb", "-uroot", "-h127.0.0.1"], input=part2, text=True, check=True, capture_output=True)
    assert run_cli("drain", "--db-url", urls["drain"], "--amqp-url", rabbit.url, "--queue", rabbit.queue).code == 0
    assert run_cli("lease", "release", rabbit.queue, "--db-url", urls["drain"]).code == 77
    assert run_cli("lease", "show", "--db-url", urls["reader"]).code == 0
    assert run_cli("lease", "release", rabbit.queue, "--db-url", urls["owner"]).code == 0
