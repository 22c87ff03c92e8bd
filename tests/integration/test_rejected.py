"""`rejected list|show|republish` against the real broker and database: rows, bytes, queue depth,
properties on the wire, exit codes."""

from __future__ import annotations

import hashlib
import json
import subprocess
import uuid
from datetime import datetime, timedelta

import pytest

from tests.conftest import ROOT, oslo_v2, run_cli
from tests.integration.test_operations import grants_db  # noqa: F401  (fixture)

pytestmark = pytest.mark.integration

# The dialect does not matter here (the SQL is tested on both elsewhere): MariaDB only, for CI time.
mysql_only = pytest.mark.parametrize("db", ["mysql"], indirect=True)

BAD = b'{"oslo.version": "2.0", "oslo.message": "{\\"message_id\\": \\"fix-me\\", \\"payload\\": {\\"id\\": 1,}}"}'
PROPS = {
    "message_id": "amqp-fix-me",
    "app_id": "vitrage-graph",
    "type": "vitrage.alarm.activate",
    "priority": 3,
    "headers": {"x-tenant": "t-1", "attempt": 2, "flag": True, "nested": {"k": "v"}},
}


def reject(rabbit, drainer, bodies, properties=None):
    rabbit.publish(bodies, properties)
    result = drainer("drain")
    assert result.code == 0 and result.summary["rejected"] == len(bodies), result.stderr
    return result


def peek_raw(rabbit):
    """The next message as the broker holds it (properties and body), given back afterwards."""
    conn = rabbit.connection()
    try:
        ch = conn.channel()
        method, props, body = ch.basic_get(rabbit.queue, auto_ack=False)
        assert method is not None, "the queue is empty"
        ch.basic_nack(method.delivery_tag, requeue=True)
        return props, body
    finally:
        conn.close()


def rows(db):
    return db.rows(
        "SELECT id, republished_at, republished_to, republished_sha256 FROM drainer_rejected_messages ORDER BY id"
    )


def test_list_shows_pending_rows_newest_first_and_filters(rabbit, db, drainer):
    reject(rabbit, drainer, [b"not json", b"[1, 2]", b"\xff\xfe"])
    db.execute("UPDATE drainer_rejected_messages SET received_at = :t WHERE id = 1", t=datetime(2026, 1, 1))
    db.execute("UPDATE drainer_rejected_messages SET republished_at = :t WHERE id = 2", t=datetime.utcnow())

    listed = [json.loads(x) for x in drainer("rejected", "list", "--json").stdout.splitlines()]
    assert [r["id"] for r in listed] == [3, 1] and {r["status"] for r in listed} == {"pending"}
    everything = [json.loads(x)["id"] for x in drainer("rejected", "list", "--all", "--json").stdout.splitlines()]
    assert everything == [3, 2, 1]
    since = drainer("rejected", "list", "--since", "2026-06-01", "--all", "--json").stdout.splitlines()
    assert [json.loads(x)["id"] for x in since] == [3, 2]
    by_reason = drainer("rejected", "list", "--reason", "NOT UTF-8", "--json").stdout.splitlines()
    assert [json.loads(x)["id"] for x in by_reason] == [3]
    assert len(drainer("rejected", "list", "--limit", "1", "--json").stdout.splitlines()) == 1
    table = drainer("rejected", "list").stdout.splitlines()
    assert table[0].split() == ["id", "received_at", "queue", "body_size", "status", "reason"] and len(table) == 3


def test_show_writes_the_exact_body_bytes_and_the_properties(rabbit, db, drainer, tmp_path):
    body = b"\xff\x00binary\r\n\x80 tail"
    reject(rabbit, drainer, [body], [PROPS])

    raw = subprocess.run(
        [*_cli(), "rejected", "show", "1", "--body", "--db-url", db.url], capture_output=True, cwd=ROOT, timeout=60
    )
    assert raw.returncode == 0 and raw.stdout == body  # byte for byte, nothing else on stdout
    shown = json.loads(drainer("rejected", "show", "1", "--json").stdout)
    assert shown["properties"]["headers"] == PROPS["headers"] and shown["properties"]["app_id"] == "vitrage-graph"
    assert shown["body_sha256"] == hashlib.sha256(body).hexdigest() and shown["status"] == "pending"
    text = drainer("rejected", "show", "1").stdout
    assert "x-tenant" in text and "reason" in text
    assert drainer("rejected", "show", "99").code == 66


def _cli():
    import sys

    return [sys.executable, "-m", "drainer"]


def test_republish_with_a_fixed_body_keeps_the_properties_and_marks_the_row(rabbit, db, drainer, tmp_path):
    reject(rabbit, drainer, [BAD], [PROPS])
    fixed = tmp_path / "msg.json"
    original = subprocess.run(
        [*_cli(), "rejected", "show", "1", "--body", "--db-url", db.url], capture_output=True, cwd=ROOT, timeout=60
    ).stdout
    fixed.write_bytes(original.replace(b"1,}", b"1}"))

    # No --queue: the row's own queue.
    result = run_cli(
        "rejected", "republish", "1", "--body-file", str(fixed), "--db-url", db.url, "--amqp-url", rabbit.url
    )

    assert result.code == 0, result.stderr
    assert "republished to " + rabbit.queue in result.stdout and rabbit.depth() == 1
    props, body = peek_raw(rabbit)
    assert body == fixed.read_bytes()
    assert props.headers == {**PROPS["headers"], "x-drainer-rejected-id": "1"}  # each header keeps its AMQP type
    assert (props.message_id, props.app_id, props.type, props.priority) == (
        "amqp-fix-me",
        "vitrage-graph",
        "vitrage.alarm.activate",
        3,
    )
    assert props.content_type == "application/json" and props.delivery_mode == 2
    (row,) = rows(db)
    assert row.republished_at is not None and row.republished_to == rabbit.queue
    assert row.republished_sha256 == hashlib.sha256(fixed.read_bytes()).hexdigest()
    drained = drainer("drain")
    assert (drained.summary["stored"], drained.summary["rejected"]) == (1, 0)
    assert db.rows("SELECT message_id FROM drainer_events")[0].message_id == "fix-me"
    report = json.loads(drainer("status", "--json").stdout)
    assert (report["rejected"], report["rejected_republished"]) == (0, 1)


@mysql_only
def test_republish_of_something_already_stored_is_absorbed_by_the_dedupe_key(rabbit, db, drainer, tmp_path):
    stored = oslo_v2({"id": "vm-1"}, message_id="already-there")
    rabbit.publish([stored])
    assert drainer("drain").summary["stored"] == 1
    # The same notification arrived a second time, damaged in transit, and was rejected.
    reject(rabbit, drainer, [stored[:-1]])
    (tmp_path / "fixed.json").write_bytes(stored)

    first = drainer("rejected", "republish", "1", "--body-file", str(tmp_path / "fixed.json"))
    assert first.code == 0 and "a duplicate of event id 1" in first.stdout  # said before it is sent
    assert drainer("rejected", "republish", "1", "--again").code == 65  # the kept body is still damaged
    (tmp_path / "other.json").write_bytes(oslo_v2({"id": "vm-2"}, message_id="already-there"))
    reused = drainer("rejected", "republish", "1", "--again", "--body-file", str(tmp_path / "other.json"))
    assert reused.code == 65 and "different content" in reused.summary["message"]  # the drain would set it aside
    again = drainer("rejected", "republish", "1", "--again", "--body-file", str(tmp_path / "fixed.json"))
    assert again.code == 0 and rabbit.depth() == 2

    drained = drainer("drain")

    assert (drained.summary["stored"], drained.summary["duplicates"], drained.summary["rejected"]) == (0, 2, 0)
    assert [r.message_id for r in db.rows("SELECT message_id FROM drainer_events")] == ["already-there"]


@mysql_only
def test_republish_refuses_a_body_the_drainer_would_reject_again(rabbit, db, drainer):
    reject(rabbit, drainer, [b"not json"])
    result = drainer("rejected", "republish", "1")
    assert result.code == 65 and result.summary["error"] == "not_republishable"
    assert "would be rejected again" in result.summary["message"] and "--body-file" in result.summary["message"]
    assert rabbit.depth() == 0 and rows(db)[0].republished_at is None


@mysql_only
def test_republish_checks_every_row_before_publishing_any(rabbit, db, drainer, tmp_path):
    reject(rabbit, drainer, [oslo_v2({"n": 1})[:-2]])  # truncated JSON
    db.execute("UPDATE drainer_rejected_messages SET body = :b WHERE id = 1", b=oslo_v2({"n": 1}))
    assert drainer("rejected", "republish", "1", "7").code == 66  # 7 does not exist
    assert rabbit.depth() == 0
    assert drainer("rejected", "republish", "1").code == 0
    assert drainer("rejected", "republish", "1").code == 65  # already republished, no --again
    assert rabbit.depth() == 1
    assert drainer("rejected", "republish", "1", "1", "--again").code == 0  # one id named twice: one publish
    assert rabbit.depth() == 2
    body = tmp_path / "b"
    body.write_bytes(oslo_v2({"n": 2}))
    assert drainer("rejected", "republish", "1", "2", "--body-file", str(body)).code == 2  # one body, one row


@mysql_only
def test_republish_to_a_missing_queue_exits_66_and_marks_nothing(rabbit, db, drainer):
    rabbit.publish([b"not json"])
    assert drainer("drain").code == 0
    db.execute("UPDATE drainer_rejected_messages SET body = :b", b=oslo_v2({"n": 1}))
    result = drainer("rejected", "republish", "1", "--queue", f"missing-{uuid.uuid4().hex[:6]}")
    assert result.code == 66 and rows(db)[0].republished_at is None


@mysql_only
def test_an_unconfirmed_publish_exits_75_and_marks_nothing(rabbit, db, drainer):
    full = f"full-{uuid.uuid4().hex[:6]}"
    conn = rabbit.connection()
    conn.channel().queue_declare(full, arguments={"x-max-length": 0, "x-overflow": "reject-publish"})
    conn.close()
    try:
        rabbit.publish([b"not json"])
        assert drainer("drain").code == 0
        db.execute("UPDATE drainer_rejected_messages SET body = :b", b=oslo_v2({"n": 1}))
        result = drainer("rejected", "republish", "1", "--queue", full)
        assert result.code == 75 and result.summary["error"] == "publish_not_confirmed"
        assert rows(db)[0].republished_at is None
    finally:
        conn = rabbit.connection()
        conn.channel().queue_delete(full)
        conn.close()


@mysql_only
def test_a_republished_message_rejected_again_is_a_new_pending_row(rabbit, db, drainer):
    reject(rabbit, drainer, [b"still bad"], [{"message_id": "m-1"}])
    db.execute("UPDATE drainer_rejected_messages SET republished_at = :t", t=datetime.utcnow() - timedelta(1))
    # What `rejected republish 1` would send if the check were skipped: the same bytes, the header.
    rabbit.publish([b"still bad"], [{"message_id": "m-1", "headers": {"x-drainer-rejected-id": 1}}])
    result = drainer("drain")
    assert (result.summary["rejected"], result.summary["duplicates"]) == (1, 0)
    assert json.loads(drainer("status", "--json").stdout)["rejected"] == 1


def test_republish_as_the_drain_account_is_refused_before_anything_is_sent(rabbit, grants_db):  # noqa: F811
    sql, urls = grants_db
    assert run_cli("migrate", "--db-url", urls["owner"]).code == 0
    part2 = sql.split("\n-- PART 3", 1)[0]  # PART 3 is for --history vitrage only
    subprocess.run(["mariadb", "-uroot", "-h127.0.0.1"], input=part2, text=True, check=True, capture_output=True)
    rabbit.publish([b"not json"])
    drain = run_cli("drain", "--db-url", urls["drain"], "--amqp-url", rabbit.url, "--queue", rabbit.queue)
    assert drain.code == 0 and drain.summary["rejected"] == 1
    fixed = oslo_v2({"n": 1})
    run_as = ("--amqp-url", rabbit.url, "--queue", rabbit.queue)

    refused = subprocess.run(
        [*_cli(), "rejected", "republish", "1", "--body-file", "-", "--db-url", urls["drain"], *run_as],
        input=fixed,
        capture_output=True,
        cwd=ROOT,
        timeout=60,
    )
    assert refused.returncode == 77 and rabbit.depth() == 0
    done = subprocess.run(
        [*_cli(), "rejected", "republish", "1", "--body-file", "-", "--db-url", urls["owner"], *run_as],
        input=fixed,
        capture_output=True,
        cwd=ROOT,
        timeout=60,
    )
    assert done.returncode == 0 and rabbit.depth() == 1
