"""Operating it: status, events, prune, metrics, vitrage.conf, secret files, least-privilege grants."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
import uuid
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from drainer.schema import migrations
from tests.conftest import MYSQL_URL, ROOT, _mysql_admin, oslo_v2, run_cli

pytestmark = pytest.mark.integration


def publish_drain(rabbit, drainer, n, **payload):
    ids = [f"e-{i:05d}-{uuid.uuid4().hex[:6]}" for i in range(n)]
    rabbit.publish([oslo_v2({"seq": i, **payload}, message_id=m) for i, m in enumerate(ids)])
    result = drainer("drain", "--batch-size", "500", "--until-empty")
    assert result.code == 0, result.stderr
    return ids


def test_status_reports_queue_depth_events_newest_event_age_and_schema(rabbit, db, drainer):
    publish_drain(rabbit, drainer, 3, vitrage_sample_date="2026-01-01T00:00:00Z")
    rabbit.publish([oslo_v2({"x": 1}), b"not json"])
    result = drainer("status", "--json")
    assert result.code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["queue_depth"] == 2 and report["consumers"] == 0
    assert report["events"] == 3 and report["last_event_id"] == 3 and report["rejected"] == 0
    assert report["newest_collector_timestamp"] == "2026-01-01T00:00:00.000000Z"
    assert report["newest_event_age_s"] == pytest.approx(
        (datetime.utcnow() - datetime(2026, 1, 1)).total_seconds(), abs=60
    )
    assert report["schema_version"] == migrations(db.kind)[-1].name and report["exit_code"] == 0
    assert report["lease_holder"] is None


def test_status_names_the_drainer_holding_the_lease(rabbit, db, drainer):
    db.execute(
        "INSERT INTO drainer_leases (name, holder, acquired_at, expires_at) VALUES (:n, :h, :a, :e)",
        n=rabbit.queue,
        h="ctl-1:123:abc",
        a=datetime.utcnow(),
        e=datetime.utcnow() + timedelta(minutes=5),
    )
    report = json.loads(drainer("status", "--json").stdout)
    assert report["lease_holder"] == "ctl-1:123:abc" and report["lease_expires_at"].endswith("Z")


def test_status_exits_69_when_the_broker_is_unreachable_and_masks_the_password(db, drainer):
    result = run_cli(
        "status",
        "--json",
        "--db-url",
        db.url,
        "--amqp-url",
        "amqp://guest:probe-secret@127.0.0.1:1/%2F",
        "--retry-seconds",
        "1",
    )
    assert result.code == 69
    report = json.loads(result.stdout)
    assert report["queue_depth"] is None and report["events"] == 0
    assert report["errors"][0]["error"] == "broker_unavailable"
    assert "probe-secret" not in result.stdout + result.stderr


def test_status_exits_78_when_the_schema_is_missing(rabbit, sqlite_db):
    result = run_cli("status", "--json", "--db-url", sqlite_db.url, "--amqp-url", rabbit.url, "--queue", rabbit.queue)
    assert result.code == 78 and json.loads(result.stdout)["queue_depth"] == 0


def test_events_exports_json_lines_in_id_order_with_after_id_and_limit(rabbit, db, drainer):
    ids = publish_drain(rabbit, drainer, 2500)
    full = drainer("events")
    assert full.code == 0, full.stderr
    lines = [json.loads(line) for line in full.stdout.splitlines()]
    assert [e["message_id"] for e in lines] == ids  # pages of 1000, in id order, nothing skipped
    assert [e["payload"]["seq"] for e in lines[:3]] == [0, 1, 2]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", lines[0]["collector_timestamp"])
    page = drainer("events", "--after-id", str(lines[1000]["id"]), "--limit", "5")
    assert [json.loads(x)["id"] for x in page.stdout.splitlines()] == [e["id"] for e in lines[1001:1006]]


def test_events_filters_by_collector_timestamp(rabbit, db, drainer):
    stamps = ["2025-01-01T00:00:00Z", "2025-06-01T00:00:00+02:00", "2026-01-01T00:00:00Z"]
    rabbit.publish([oslo_v2({"vitrage_sample_date": s}, message_id=f"t{i}") for i, s in enumerate(stamps)])
    assert drainer("drain").code == 0
    result = drainer("events", "--since", "2025-05-31T22:00:00", "--until", "2026-01-01")
    assert [json.loads(x)["message_id"] for x in result.stdout.splitlines()] == ["t1"]


def test_prune_before_id_deletes_exactly_the_older_rows_in_chunks(rabbit, db, drainer):
    ids = publish_drain(rabbit, drainer, 50)
    dry = drainer("prune", "--before-id", "31", "--dry-run")
    assert dry.code == 0 and dry.summary["would_delete"] == 30
    assert len(db.rows("SELECT id FROM drainer_events")) == 50
    result = drainer("prune", "--before-id", "31", "--chunk-size", "7", "--yes")  # 60% > --max-share
    assert result.code == 0 and result.summary["deleted"] == 30
    assert len([r for r in result.records if r.get("event") == "prune_chunk"]) == 5  # 7+7+7+7+2
    assert [r.message_id for r in db.rows("SELECT message_id FROM drainer_events ORDER BY id")] == ids[30:]


def test_prune_older_than_uses_the_collector_timestamp(rabbit, db, drainer):
    old = (datetime.utcnow() - timedelta(days=40)).isoformat()
    new = (datetime.utcnow() - timedelta(days=2)).isoformat()
    rabbit.publish(
        [oslo_v2({"vitrage_sample_date": ts}, message_id=m) for m, ts in [("a", old), ("b", new), ("c", old)]]
    )
    assert drainer("drain").code == 0
    assert drainer("prune", "--older-than", "30d", "--max-share", "70").summary["deleted"] == 2
    assert [r.message_id for r in db.rows("SELECT message_id FROM drainer_events")] == ["b"]


def test_metrics_file_is_prometheus_text_and_keeps_last_success_after_a_failure(rabbit, db, drainer, tmp_path):
    from prometheus_client.parser import text_string_to_metric_families

    path = tmp_path / "vitrage_drainer.prom"
    publish_drain(rabbit, drainer, 4)
    rabbit.publish([oslo_v2({"n": 1})])
    assert drainer("drain", "--metrics-file", str(path)).code == 0

    def samples():
        return {s.name: s.value for f in text_string_to_metric_families(path.read_text()) for s in f.samples}

    first = samples()
    assert first["vitrage_drainer_last_run_stored"] == 1 and first["vitrage_drainer_last_run_exit_code"] == 0
    assert first["vitrage_drainer_last_run_queue_remaining"] == 0
    success = first["vitrage_drainer_last_success_timestamp_seconds"]
    failed = run_cli(
        "drain",
        "--db-url",
        db.url,
        "--amqp-url",
        "amqp://guest:guest@127.0.0.1:1/%2F",
        "--queue",
        rabbit.queue,
        "--retry-seconds",
        "1",
        "--metrics-file",
        str(path),
    )
    assert failed.code == 69
    second = samples()
    assert second["vitrage_drainer_last_run_exit_code"] == 69
    assert second["vitrage_drainer_last_success_timestamp_seconds"] == success
    assert not list(tmp_path.glob("*.tmp*"))  # written atomically, no leftovers


class _Gateway(BaseHTTPRequestHandler):
    received: list[tuple[str, str, bytes]] = []

    def _take(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.received.append((self.command, self.path, body))
        self.send_response(200)
        self.end_headers()

    do_PUT = do_POST = _take

    def log_message(self, *args) -> None:
        pass


def test_pushgateway_receives_the_run_metrics(rabbit, db, drainer):
    server = HTTPServer(("127.0.0.1", 0), _Gateway)
    _Gateway.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        rabbit.publish([oslo_v2({"n": 1})])
        result = drainer("drain", "--pushgateway", f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
    assert result.code == 0, result.stderr
    from prometheus_client.parser import text_string_to_metric_families

    ((method, path, body),) = _Gateway.received
    assert method == "PUT" and path.startswith("/metrics/job/vitrage_drainer/queue")
    pushed = {s.name: s for f in text_string_to_metric_families(body.decode()) for s in f.samples}
    assert pushed["vitrage_drainer_last_run_stored"].value == 1
    assert pushed["vitrage_drainer_last_run_acked"].value == 1
    assert pushed["vitrage_drainer_last_run_exit_code"].value == 0
    assert pushed["vitrage_drainer_last_run_queue_remaining"].value == 0
    assert pushed["vitrage_drainer_last_run_stored"].labels == {"queue": rabbit.queue}
    assert abs(pushed["vitrage_drainer_last_success_timestamp_seconds"].value - time.time()) < 60


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)  # not about the database
def test_a_pushgateway_that_never_answers_delays_the_run_only_by_the_push_timeout(rabbit, db, drainer):
    from tests.faults.support import silent_listener

    rabbit.publish([oslo_v2({"n": i}) for i in range(3)])
    with silent_listener() as gateway:
        started = time.monotonic()
        result = drainer("drain", "--pushgateway", f"http://127.0.0.1:{gateway.port}", timeout=30)
        elapsed = time.monotonic() - started
    assert result.code == 0, result.stderr
    assert result.summary["stored"] == 3 and rabbit.depth() == 0
    assert elapsed < 5 + 5, f"took {elapsed:.1f}s"  # the push timeout, start-up and the drain


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)  # not about the database
def test_a_metrics_failure_does_not_fail_the_run(rabbit, db, drainer, tmp_path):
    rabbit.publish([oslo_v2({"n": i}) for i in range(3)])
    unwritable = tmp_path / "no-such-dir" / "vitrage_drainer.prom"
    result = drainer("drain", "--metrics-file", str(unwritable), "--pushgateway", "http://127.0.0.1:1")
    assert result.code == 0, result.stderr
    assert result.summary["exit_code"] == 0 and result.summary["stored"] == 3
    assert len(db.rows("SELECT id FROM drainer_events")) == 3 and rabbit.depth() == 0
    assert not unwritable.exists()


def test_vitrage_conf_with_a_dead_first_host_fails_over_to_the_second(rabbit, db, tmp_path):
    conf = tmp_path / "vitrage.conf"
    conf.write_text(
        "[DEFAULT]\n"
        "transport_url = rabbit://guest:guest@127.0.0.1:1,guest:guest@127.0.0.1:5672/\n"
        f"[database]\nconnection = {db.url}\n"
        f"[persistency]\npersistor_topic = {rabbit.queue.removesuffix('.info')}\n"
    )
    assert run_cli("migrate", "--config-file", str(conf)).code == 0
    rabbit.publish([oslo_v2({"n": i}) for i in range(3)])
    result = run_cli("drain", "--config-file", str(conf))
    assert result.code == 0, result.stderr
    assert result.summary["stored"] == 3 and result.summary["queue"] == rabbit.queue


def test_urls_from_secret_files_are_used(rabbit, db, tmp_path):
    from tests.conftest import AMQP_URL

    (tmp_path / "amqp").write_text(AMQP_URL + "\n")
    (tmp_path / "db").write_text(db.url + "\n")
    env = {
        "DRAINER_AMQP_URL_FILE": str(tmp_path / "amqp"),
        "DRAINER_DB_URL_FILE": str(tmp_path / "db"),
        "DRAINER_QUEUE": rabbit.queue,
    }
    assert run_cli("migrate", env=env).code == 0
    rabbit.publish([oslo_v2({"n": 1})])
    result = run_cli("drain", env=env)
    assert result.code == 0 and result.summary["stored"] == 1
    assert len(db.rows("SELECT id FROM drainer_events")) == 1 and rabbit.depth() == 0
    assert result.stdout == ""  # nothing on stdout for drain
    assert all(line.startswith("{") for line in result.stderr.splitlines())  # off a TTY: JSON records only
    assert len({r["run_id"] for r in result.records}) == 1 and len(result.records) >= 2  # one run id on each


# Five characters: too short to be scrubbed as free text, so only URL masking hides it; and a long one.
@pytest.mark.parametrize("db", ["sqlite"], indirect=True)  # not about the database
@pytest.mark.parametrize("password", ["Zq7xk", "Kq2-distinct-9Xw"], ids=["short", "long"])
def test_a_failing_run_never_prints_a_short_password_from_a_secret_file(rabbit, db, tmp_path, password):
    from tests.conftest import AMQP_URL

    assert run_cli("migrate", "--db-url", db.url).code == 0
    (tmp_path / "amqp").write_text(AMQP_URL.replace("guest:guest", f"guest:{password}") + "\n")
    env = {"DRAINER_AMQP_URL_FILE": str(tmp_path / "amqp"), "DRAINER_DB_URL": db.url, "DRAINER_QUEUE": rabbit.queue}
    rabbit.publish([oslo_v2({"n": 1})])
    for command in ("drain", "status"):
        result = run_cli(command, env=env)
        assert result.code == 77, result.stderr  # the broker refuses the password
        assert password not in result.stdout + result.stderr
        assert "guest:***@" in result.stdout + result.stderr  # the URL is named, masked
    assert rabbit.depth() == 1


@pytest.fixture
def grants_db():
    """Apply sql/mysql/grants.sql with fresh names: a database and its three accounts."""
    from tests.conftest import _require

    _require(MYSQL_URL, 3306, "MariaDB")
    tag = "g" + uuid.uuid4().hex[:8]
    sql = (ROOT / "sql/mysql/grants.sql").read_text()
    sql = sql.replace("`vitrage`", f"`{tag}_db`").replace("'vitrage_drainer", f"'{tag}_drainer")
    for role in ("DRAIN", "READER", "OWNER"):
        sql = sql.replace(f"@@{role}_PASSWORD@@", f"pw-{role.lower()}-{tag}")
    part1 = sql.split("\n-- PART 2", 1)[0]
    base = MYSQL_URL.split("://", 1)[1].split("@", 1)[-1]
    urls = {
        role: f"mysql+pymysql://{tag}_drainer{suffix}:pw-{role}-{tag}@{base}/{tag}_db"
        for role, suffix in (("drain", ""), ("reader", "_ro"), ("owner", "_owner"))
    }
    mysql = ["mariadb", "-uroot", "-h127.0.0.1"]
    subprocess.run(mysql, input=part1, text=True, check=True, capture_output=True)
    yield sql, urls
    _mysql_admin(f"DROP DATABASE IF EXISTS {tag}_db")
    for suffix in ("", "_ro", "_owner"):
        _mysql_admin(f"DROP USER IF EXISTS '{tag}_drainer{suffix}'@'%'")


def test_the_drain_user_can_drain_but_cannot_delete_or_drop(rabbit, grants_db):
    sql, urls = grants_db
    assert run_cli("migrate", "--db-url", urls["owner"]).code == 0
    part2 = sql.split("\n-- PART 3", 1)[0]  # PART 3 is for --history vitrage only
    subprocess.run(["mariadb", "-uroot", "-h127.0.0.1"], input=part2, text=True, check=True, capture_output=True)
    rabbit.publish([oslo_v2({"n": i}) for i in range(5)] + [b"poison"])
    result = run_cli("drain", "--db-url", urls["drain"], "--amqp-url", rabbit.url, "--queue", rabbit.queue)
    assert result.code == 0, result.stderr
    assert result.summary["stored"] == 5 and result.summary["rejected"] == 1
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError, ProgrammingError

    engine = create_engine(urls["drain"])
    try:
        for statement in (
            "DELETE FROM drainer_events",
            "DROP TABLE drainer_events",
            "UPDATE drainer_events SET payload = '{}'",
        ):
            with pytest.raises((OperationalError, ProgrammingError), match="1142"):
                with engine.begin() as conn:
                    conn.execute(text(statement))
    finally:
        engine.dispose()
    assert run_cli("prune", "--db-url", urls["drain"], "--before-id", "99", "--yes").code == 77
    reader = run_cli("events", "--db-url", urls["reader"])
    assert reader.code == 0 and len(reader.stdout.splitlines()) == 5
    assert run_cli("prune", "--db-url", urls["owner"], "--before-id", "3").summary["deleted"] == 2


def test_crontab_line_is_guarded_by_flock():
    line = [x for x in (ROOT / "cron/crontab").read_text().splitlines() if x and not x.startswith("#") and "drain" in x]
    assert line and "flock -n" in line[0] and "vitrage-drainer drain" in line[0]
    assert Path(ROOT / "cron/Containerfile").exists()


def test_oslo_mysql_url_spelling_migrates_and_drains(rabbit, mysql_db):
    url = mysql_db.url.replace("mysql+pymysql://", "mysql://")  # as in vitrage.conf [database] connection
    assert run_cli("migrate", "--db-url", url).code == 0
    rabbit.publish([oslo_v2({"n": i}) for i in range(3)])
    result = run_cli("drain", "--db-url", url, "--amqp-url", rabbit.url, "--queue", rabbit.queue)
    assert result.code == 0, result.stderr
    assert len(mysql_db.rows("SELECT id FROM drainer_events")) == 3 and rabbit.depth() == 0
