"""The README's Galera claims, on a real three-node cluster (tests/cluster/clusters.py).

The broker is the local RabbitMQ; each test has its own queue and its own database on the cluster.
Every fault (a killed node, a partition) is undone by the `galera_cluster` fixture, which waits until
all three nodes are Synced again.
"""

from __future__ import annotations

import json
import time
import uuid
from contextlib import contextmanager, suppress

import pytest

from tests.cluster import clusters
from tests.cluster.conftest import node_connect
from tests.conftest import oslo_v2, run_cli, start_cli, wait_for
from tests.faults.vip import vip

pytestmark = [pytest.mark.cluster, pytest.mark.integration]


def publish_numbered(rabbit, n):
    ids = [f"m-{i:06d}-{uuid.uuid4().hex[:6]}" for i in range(n)]
    rabbit.publish([oslo_v2({"seq": i}, message_id=m) for i, m in enumerate(ids)])
    return ids


def drain_args(rabbit, db_url, *extra):
    return ("drain", "--db-url", db_url, "--amqp-url", rabbit.url, "--queue", rabbit.queue, *extra)


def finish(proc, timeout=120):
    from tests.conftest import Result

    out, err = proc.communicate(timeout=timeout)
    return Result(proc.returncode, out, err)


def test_two_drainers_through_two_nodes_take_turns_and_keep_queue_order(rabbit, galera_db):
    """Claim 1: started together through nodes 1 and 2, one holds the lease at a time (the other is
    refused by a conditional UPDATE or by a certification conflict), every message is stored once,
    and id order is queue order."""
    ids = publish_numbered(rabbit, 3000)
    procs = [
        start_cli(*drain_args(rabbit, galera_db.url(node), "--batch-size", "100", "--until-empty")) for node in (1, 2)
    ]
    results = [finish(p) for p in procs]
    assert [r.code for r in results] == [0, 0], [r.stderr for r in results]
    assert galera_db.stored_ids(node=3) == ids  # read through the third node: replicated, in order
    assert sum(r.summary["stored"] for r in results) == len(ids)
    assert rabbit.depth() == 0
    held_off = [r for r in results if r.summary["lease_holder"] is not None]
    assert len(held_off) == 1 and held_off[0].summary["fetched"] == 0


def test_overlapping_runs_through_all_three_nodes_keep_queue_order(rabbit, galera_db):
    """Claim 1 under churn: nine short runs started 0.2 s apart, rotating through the three nodes,
    so runs overlap, hand the lease over between nodes and take it after one another's commits."""
    ids = publish_numbered(rabbit, 1800)
    procs = []
    for i in range(9):
        node = 1 + i % 3
        procs.append(start_cli(*drain_args(rabbit, galera_db.url(node), "--batch-size", "50", "--max-batches", "4")))
        time.sleep(0.2)  # a staggered start is the point here (cron ticks, manual runs), not a wait
    results = [finish(p) for p in procs]
    assert all(r.code == 0 for r in results), [r.stderr for r in results if r.code]
    last = run_cli(*drain_args(rabbit, galera_db.url(2), "--until-empty"))
    assert last.code == 0, last.stderr
    assert galera_db.stored_ids(node=3) == ids
    assert sum(r.summary["stored"] for r in [*results, last]) == len(ids)
    spans = sorted((r.summary["first_id"], r.summary["last_id"]) for r in [*results, last] if r.summary["stored"])
    for (_, earlier_last), (later_first, _) in zip(spans, spans[1:], strict=False):
        assert later_first > earlier_last, spans  # runs never interleave: one writer at a time


def test_ids_keep_commit_order_when_the_writer_moves_from_node_to_node(rabbit, galera_db):
    """Claim 2: runs through node 1, then 2, then 3 (a VIP that moved), back to back; every id of a
    later commit is greater than every id of an earlier one, whatever the per-node offsets."""
    ids = publish_numbered(rabbit, 600)
    spans = []
    for node in (1, 2, 3, 1, 3, 2):
        result = run_cli(*drain_args(rabbit, galera_db.url(node), "--batch-size", "50", "--max-batches", "2"))
        assert result.code == 0 and result.summary["stored"] == 100, result.stderr
        spans.append((result.summary["first_id"], result.summary["last_id"]))
    rows = galera_db.rows("SELECT id, message_id FROM drainer_events ORDER BY id")
    assert [m for _, m in rows] == ids
    for (_, earlier_last), (later_first, _) in zip(spans, spans[1:], strict=False):
        assert later_first > earlier_last, spans
    assert rabbit.depth() == 0
    # What a standby replays after a snapshot taken at the end of the second run, read via node 2.
    replay = run_cli("events", "--db-url", galera_db.url(2), "--after-id", str(spans[1][1]))
    assert replay.code == 0, replay.stderr
    assert [json.loads(line)["message_id"] for line in replay.stdout.splitlines()] == ids[200:]


def inserting(node, database) -> int:
    """Sessions on `node` inside a batch's INSERT (waiting behind our lock, or still sending rows)."""
    conn = node_connect(node, autocommit=True, connect_timeout=5, read_timeout=10)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT COUNT(*) FROM information_schema.processlist"
                " WHERE db = %s AND command = 'Query' AND info LIKE 'INSERT INTO drainer_events%%'",
                (database,),
            )
            return int(cur.fetchone()[0])
    finally:
        conn.close()


@contextmanager
def inserts_blocked(db, node):
    """Hold a next-key lock past the last event on `node`, so a batch's INSERT there waits (mid-batch:
    the lease is fenced and the duplicates looked up, the rows not yet written). Locks are local to a
    node in Galera; the other nodes are not blocked."""
    conn = node_connect(node, db.name, autocommit=False)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT id FROM drainer_events WHERE id > (SELECT COALESCE(MAX(id), 0) FROM drainer_events) FOR UPDATE"
            )
        yield conn
    finally:
        with suppress(Exception):  # the node may have been killed with the lock
            conn.rollback()
        with suppress(Exception):
            conn.close()


def wait_blocked_on(node, db, proc, seconds=30):
    def blocked():
        assert proc.poll() is None, finish(proc).stderr  # the run ended before it blocked
        return inserting(node, db.name) > 0

    wait_for(blocked, seconds, f"the batch's INSERT to wait on {node.name}")


def test_the_node_written_through_is_killed_mid_batch_and_a_survivor_stores_each_once(rabbit, galera_db):
    """Claim 3: SIGKILL the node while a batch is being written through it: the run exits 69 or 75,
    nothing of the batch is on the survivors, the messages are back in the queue, and the next run
    through a surviving node stores each exactly once, after the ids already stored."""
    node1 = clusters.galera_node(1)
    ids = publish_numbered(rabbit, 200)
    first = run_cli(*drain_args(rabbit, galera_db.url(1), "--batch-size", "50"))
    assert first.code == 0 and first.summary["stored"] == 50, first.stderr
    with inserts_blocked(galera_db, node1):
        proc = start_cli(*drain_args(rabbit, galera_db.url(1), "--batch-size", "100", "--retry-seconds", "10"))
        try:
            wait_blocked_on(node1, galera_db, proc)
            clusters.kill_galera_node(node1)
            result = finish(proc, timeout=60)
        finally:
            proc.kill()
    assert result.code in (69, 75), result.stderr
    assert result.summary["stored"] == 0 and result.summary["returned"] == 100
    wait_for(lambda: rabbit.depth() == 150, 30, "the batch to be back in the queue")
    assert galera_db.stored_ids(node=2) == ids[:50]  # nothing half-written
    rerun = run_cli(*drain_args(rabbit, galera_db.url(2), "--batch-size", "100", "--until-empty"))
    assert rerun.code == 0, rerun.stderr
    assert any(r.get("event") == "lease_takeover" for r in rerun.records)  # the killed run's lease
    assert galera_db.stored_ids(node=3) == ids
    assert rerun.summary["first_id"] > first.summary["last_id"]
    assert rabbit.depth() == 0


def wsrep_ready(node) -> str | None:
    return node.status().get("wsrep_ready")


def retry_causes(result) -> list[str]:
    return [str(r.get("cause")) for r in result.records if r.get("event") == "retry"]


def test_a_node_not_ready_at_start_is_retried_within_the_budget(rabbit, galera_db):
    """Claim 4, at start: a node cut off from the primary component (wsrep_ready=OFF) answers
    `SELECT 1` but refuses every table (1047). The drainer retries it like an unreachable node:
    it exits 69 when the budget ends first, having fetched nothing, and it drains normally when the
    node rejoins within the budget."""
    node3 = clusters.galera_node(3)
    ids = publish_numbered(rabbit, 40)
    with clusters.galera_partitioned(node3):
        wait_for(lambda: wsrep_ready(node3) == "OFF", 60, "node 3 to leave the primary component")
        refused = run_cli(*drain_args(rabbit, galera_db.url(3), "--retry-seconds", "4"))
        assert refused.code == 69 and refused.summary["error"] == "database_unavailable", refused.stderr
        assert refused.summary["fetched"] == 0 and rabbit.depth() == 40
        assert any("1047" in cause for cause in retry_causes(refused))  # retried, not refused at once
        assert refused.summary["duration_s"] < 4 + 5 + 3  # the budget, one connect timeout, start-up
        waiting = start_cli(*drain_args(rabbit, galera_db.url(3), "--retry-seconds", "60", "--until-empty"))
        wait_for(lambda: waiting.poll() is None and rabbit.depth() == 40, 5, "the run to wait for its node")
    result = finish(waiting)  # healed: node 3 is Synced again
    assert result.code == 0, result.stderr
    assert any("1047" in cause for cause in retry_causes(result))
    assert galera_db.stored_ids(node=1) == ids and rabbit.depth() == 0


def test_partition_with_the_drainer_on_the_minority_side_commits_nothing_and_loses_nothing(rabbit, galera_db):
    """Claims 4 and 6: node 3 is cut off from nodes 1 and 2 while a batch is written through it. Its
    COMMIT cannot reach the primary component (1180); the run retries within its budget, meets a
    node that is not ready (1047), exits 75 or 69, and nothing of the batch is on the majority.
    Once healed, the next run stores each exactly once."""
    node3 = clusters.galera_node(3)
    ids = publish_numbered(rabbit, 100)
    with inserts_blocked(galera_db, node3) as blocker:
        proc = start_cli(
            *drain_args(rabbit, galera_db.url(3), "--batch-size", "100", "--retry-seconds", "10"),
            "--lock-wait-timeout",
            "60",
        )
        try:
            wait_blocked_on(node3, galera_db, proc)
            with clusters.galera_partitioned(node3):
                blocker.rollback()  # the INSERT goes on; the COMMIT meets a node without its peers
                result = finish(proc, timeout=90)
                assert galera_db.stored_ids(node=1) == []  # the majority got nothing
        finally:
            proc.kill()
    assert result.code in (69, 75), result.stderr
    assert result.summary["stored"] == 0 and result.summary["returned"] == 100
    # The failed COMMIT (1180, "not connected to Primary Component") and the node's refusals
    # after it (1047) are retried, as for any node that is not ready, until the budget ends.
    assert any("1180" in cause for cause in retry_causes(result)), result.stderr
    assert any("1047" in cause for cause in retry_causes(result)), result.stderr
    assert result.summary["duration_s"] < 10 + 2 * 30 + 5  # budget, one socket timeout each way, start
    wait_for(lambda: rabbit.depth() == 100, 30, "the batch to be back in the queue")
    rerun = run_cli(*drain_args(rabbit, galera_db.url(3), "--until-empty"))
    assert rerun.code == 0, rerun.stderr
    assert galera_db.stored_ids(node=1) == ids and galera_db.stored_ids(node=3) == ids
    assert rabbit.depth() == 0


def test_a_vip_that_moves_to_a_survivor_lets_the_retry_commit_the_batch(rabbit, galera_db):
    """The README's failover claim: the node behind the VIP dies mid-batch; the VIP moves to a
    survivor once the cluster has dropped the dead node; the batch's retry reconnects through the VIP
    and commits within the budget. Nothing is lost or doubled, ids keep queue order."""
    node1, node2 = clusters.galera_node(1), clusters.galera_node(2)
    ids = publish_numbered(rabbit, 100)
    with vip((node1.ip, node1.port)) as v, inserts_blocked(galera_db, node1):
        url = f"mysql+pymysql://root@127.0.0.1:{v.port}/{galera_db.name}"
        proc = start_cli(*drain_args(rabbit, url, "--batch-size", "100", "--retry-seconds", "30"))
        try:
            wait_blocked_on(node1, galera_db, proc)
            clusters.kill_galera_node(node1)
            wait_for(lambda: node2.synced(cluster_size=2), 30, "the survivors to drop node 1")
            v.move((node2.ip, node2.port))
            result = finish(proc, timeout=90)
        finally:
            proc.kill()
    assert result.code == 0, result.stderr
    assert retry_causes(result)  # the batch was retried, not lucky
    assert galera_db.stored_ids(node=3) == ids and rabbit.depth() == 0
