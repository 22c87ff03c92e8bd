"""`oversize list|requeue` and `peek` against the real broker: nothing taken for good, bytes and
properties kept, confirms before acks, the lease held while messages are out."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime, timedelta

import pytest

from tests.conftest import oslo_v2, run_cli

pytestmark = pytest.mark.integration

# The dialect does not matter here (the SQL is tested on both elsewhere): MariaDB only, for CI time.
mysql_only = pytest.mark.parametrize("db", ["mysql"], indirect=True)

SMALL_LIMIT = {"DRAINER_MAX_MESSAGE_BYTES": "2048"}


def big(n: int, size: int, message_id: str | None = None) -> bytes:
    return oslo_v2({"n": n, "pad": "x" * size}, message_id=message_id or f"big-{n}-{uuid.uuid4().hex[:6]}")


def park(rabbit, drainer, bodies, properties=None):
    rabbit.publish(bodies, properties)
    result = drainer("drain", "--max-message-bytes", "2048")
    assert result.code == 0, result.stderr
    return result


def lines(result):
    assert result.code == 0, result.stderr
    return [json.loads(x) for x in result.stdout.splitlines()]


def test_oversize_list_shows_parked_messages_and_takes_nothing(rabbit, db, drainer):
    bodies = [big(1, 3000), big(2, 9000)]
    park(rabbit, drainer, [*bodies, oslo_v2({"n": 3})])
    oversize = rabbit.queue + ".oversize"
    assert rabbit.depth(oversize) == 2

    listed = lines(drainer("oversize", "list", "--json"))

    assert [e["sha256"] for e in listed] == [hashlib.sha256(b).hexdigest() for b in bodies]
    assert [e["bytes"] for e in listed] == [len(b) for b in bodies]
    assert all(e["intact"] and e["routing_key"] == rabbit.queue for e in listed)
    assert all(e["parked_at"].endswith("Z") and 0 <= e["age_s"] < 120 for e in listed)
    assert rabbit.depth(oversize) == 2  # given back
    assert len(lines(drainer("oversize", "list", "--json", "--count", "1"))) == 1
    report = json.loads(drainer("status", "--json").stdout)
    assert report["oversize_queue_depth"] == 2 and report["oversize_queue"] == oversize
    table = drainer("oversize", "list").stdout.splitlines()
    assert table[0].split()[:3] == ["n", "bytes", "sha256"] and len(table) == 3


@mysql_only
def test_status_and_oversize_list_when_nothing_was_ever_parked(rabbit, db, drainer):
    assert json.loads(drainer("status", "--json").stdout)["oversize_queue_depth"] is None
    result = drainer("oversize", "list")
    assert result.code == 66 and result.summary["error"] == "queue_not_found"
    assert "nothing has been parked from this queue" in result.summary["message"]
    assert "Vitrage's notifier declares it" not in result.stderr  # the drainer declares this one


@pytest.fixture
def quorum_oversize(rabbit):
    conn = rabbit.connection()
    conn.channel().queue_declare(rabbit.queue + ".oversize", durable=True, arguments={"x-queue-type": "quorum"})
    conn.close()
    return rabbit.queue + ".oversize"


def test_listing_a_quorum_oversize_queue_grows_the_delivery_count(rabbit, mysql_db, quorum_oversize):
    assert run_cli("migrate", "--db-url", mysql_db.url).code == 0
    rabbit.publish([big(1, 3000)])
    base = ("--db-url", mysql_db.url, "--amqp-url", rabbit.url, "--queue", rabbit.queue)
    assert run_cli("drain", *base, "--max-message-bytes", "2048").code == 0

    counts = [lines(run_cli("oversize", "list", "--json", *base))[0]["delivery_count"] for _ in range(3)]

    assert counts[0] in (None, 0) and counts[1:] == [1, 2]  # the cost --help states: each return is a delivery
    assert rabbit.depth(quorum_oversize) == 1


@mysql_only
def test_oversize_requeue_sends_back_what_fits_now_and_keeps_the_rest(rabbit, db, drainer):
    fits, too_big = big(1, 3000, "fits-1"), big(2, 9000, "too-big-2")
    park(rabbit, drainer, [fits, too_big], [{"headers": {"x-tenant": "t-1"}, "app_id": "vitrage-graph"}] * 2)
    oversize = rabbit.queue + ".oversize"

    result = drainer("oversize", "requeue", "--max-message-bytes", "4096")

    assert result.code == 0, result.stderr
    assert (result.summary["requeued"], result.summary["still_oversize"]) == (1, 1)
    assert (rabbit.depth(), rabbit.depth(oversize)) == (1, 1)
    records = db.rows("SELECT body_sha256, republished_to, republished_at FROM drainer_rejected_messages ORDER BY id")
    marked = {r.body_sha256: (r.republished_to, r.republished_at is not None) for r in records}
    assert marked == {
        hashlib.sha256(fits).hexdigest(): (rabbit.queue, True),
        hashlib.sha256(too_big).hexdigest(): (None, False),
    }
    ((props, body),) = rabbit.get_all(rabbit.queue)
    assert body == fits and props.app_id == "vitrage-graph" and props.headers["x-tenant"] == "t-1"
    assert props.headers["x-drainer-sha256"] == hashlib.sha256(fits).hexdigest()  # where it has been
    rabbit.publish([body], [{"headers": props.headers, "app_id": props.app_id}])
    drained = drainer("drain", "--max-message-bytes", "4096")
    assert drained.summary["stored"] == 1
    assert json.loads(db.rows("SELECT payload FROM drainer_events")[0].payload)["pad"] == "x" * 3000
    assert json.loads(drainer("status", "--json").stdout)["rejected"] == 1  # the one still parked


@mysql_only
def test_oversize_requeue_into_a_missing_source_queue_exits_66_and_moves_nothing(rabbit, db, drainer):
    park(rabbit, drainer, [big(1, 3000)])
    result = drainer("oversize", "requeue", "--queue", "nowhere.info", "--oversize-queue", rabbit.queue + ".oversize")
    assert result.code == 66 and rabbit.depth(rabbit.queue + ".oversize") == 1


@mysql_only
def test_peek_shows_each_outcome_in_queue_order_and_takes_nothing(rabbit, db, drainer):
    rabbit.publish([oslo_v2({"id": "vm-0"}, message_id="stored-0")])
    assert drainer("drain").code == 0
    first = oslo_v2({"id": "vm-1", "vitrage_entity_type": "nova.instance"}, message_id="new-1")
    queued = [
        first,
        oslo_v2({"id": "vm-0"}, message_id="stored-0"),
        b"not json",
        big(4, 3000),
        first,  # the same message again: a duplicate
        oslo_v2({"id": "vm-1"}, message_id="new-1"),  # the same id, other content: set aside
    ]
    rabbit.publish(queued)

    result = drainer("peek", "--json", env=SMALL_LIMIT)

    found = lines(result)
    assert [f["outcome"] for f in found] == ["event", "duplicate", "rejected", "oversize", "duplicate", "rejected"]
    assert found[0]["message_id"] == "new-1" and found[0]["entity_type"] == "nova.instance"
    assert found[0]["payload"] == {"id": "vm-1", "vitrage_entity_type": "nova.instance"}
    assert found[1]["detail"] == "already stored as id 1"
    assert "not valid JSON" in found[2]["detail"] and found[3]["detail"].startswith(f"{len(queued[3])} bytes")
    assert "different content" in found[5]["detail"]
    assert rabbit.depth() == 6
    lease = db.rows("SELECT holder FROM drainer_leases")
    assert [r.holder for r in lease] == [None]  # taken while the messages were out, then released
    drained = drainer("drain", env=SMALL_LIMIT)  # what peek said, in the same order
    assert (drained.summary["stored"], drained.summary["duplicates"], drained.summary["rejected"]) == (1, 2, 3)
    table = drainer("peek").stdout.splitlines()
    assert table[0].split()[:4] == ["n", "bytes", "delivery_count", "outcome"]


@mysql_only
def test_peek_refuses_while_a_drainer_holds_the_lease(rabbit, db, drainer):
    rabbit.publish([oslo_v2({"n": 1})])
    db.execute(
        "INSERT INTO drainer_leases (name, holder, acquired_at, expires_at) VALUES (:n, 'ctl-2:77:abc:1', :a, :e)",
        n=rabbit.queue,
        a=datetime.utcnow(),
        e=datetime.utcnow() + timedelta(minutes=5),
    )
    result = drainer("peek")
    assert (
        result.code == 75 and result.summary["error"] == "lease_held" and "ctl-2:77:abc:1" in result.summary["message"]
    )
    assert rabbit.depth() == 1
    assert db.rows("SELECT holder FROM drainer_leases")[0].holder == "ctl-2:77:abc:1"


@mysql_only
def test_peek_on_a_missing_queue_exits_66_and_leaves_no_lease_row(rabbit, db, drainer):
    result = drainer("peek", "--queue", f"missing-{uuid.uuid4().hex[:6]}")
    assert result.code == 66 and db.rows("SELECT name FROM drainer_leases") == []


@pytest.mark.parametrize("rabbit", [{"x-queue-type": "quorum"}], indirect=True)
def test_peeking_a_quorum_queue_grows_the_delivery_count(rabbit, mysql_db):
    assert run_cli("migrate", "--db-url", mysql_db.url).code == 0
    rabbit.publish([oslo_v2({"n": 1})])
    base = ("--db-url", mysql_db.url, "--amqp-url", rabbit.url, "--queue", rabbit.queue)

    counts = [lines(run_cli("peek", "--json", *base))[0]["delivery_count"] for _ in range(3)]

    assert counts[0] in (None, 0) and counts[1:] == [1, 2]
    assert rabbit.depth() == 1
