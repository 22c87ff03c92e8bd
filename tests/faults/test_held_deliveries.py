"""Deliveries the broker still holds for a run that froze or lost its connection silently: no other
run may fetch past them before RabbitMQ requeues them (invariant 4, ids in queue order), and a broker
that stops answering basic.get ends the run within the fetch bound (invariant 5)."""

from __future__ import annotations

import os
import signal
import time
from datetime import timedelta

import pytest

from tests.conftest import run_cli, wait_for
from tests.faults.support import BASIC_GET, LiveRun, broker_proxy
from tests.faults.test_guarantees import drain_args, lease_row, migrated, publish_numbered, stored_ids  # noqa: F401

pytestmark = [pytest.mark.faults, pytest.mark.integration]

# ttl = --retry-seconds + 2 x --socket-timeout + 2 x --heartbeat + 10 = 1 + 2 + 6 + 10 = 19 s; without the
# broker's two heartbeats it would be 13 s, and a second run 14 s after the freeze took the lease.
SHORT = ("--retry-seconds", "1", "--socket-timeout", "1", "--heartbeat", "3", "--connect-timeout", "1")


def test_a_run_frozen_while_fetching_keeps_later_runs_from_storing_past_its_batch(rabbit, migrated):  # noqa: F811
    db = migrated
    ids = publish_numbered(rabbit, 60)
    with broker_proxy(rabbit.url) as proxy:
        proxy.delay = 0.05  # each reply of the broker comes late: fetching a batch of 20 takes a second
        frozen = LiveRun(*drain_args(rabbit, db, *SHORT, "--batch-size", "20", amqp_url=proxy.url))
        try:
            wait_for(lambda: rabbit.depth() < 60, 30, "the first run to be fetching")
            os.kill(frozen.proc.pid, signal.SIGSTOP)  # a paused VM, a cgroup freeze, a swap storm
            time.sleep(14)  # the freeze's length is the scenario: past the lease without the broker's share
            second = run_cli(*drain_args(rabbit, db, *SHORT, "--until-empty"))
            assert second.code == 0, second.stderr
            assert second.summary["fetched"] == 0 and second.summary["lease_holder"], second.stderr
        finally:
            os.kill(frozen.proc.pid, signal.SIGCONT)
        first = frozen.finish(60)
    # The broker closed the frozen run's connection (missed heartbeats) and requeued its batch.
    assert first.code in (69, 75), first.stderr
    assert first.summary["acked"] == 0

    def drained() -> bool:
        run_cli(*drain_args(rabbit, db, *SHORT, "--until-empty"))
        return rabbit.depth() == 0 and len(stored_ids(db)) == 60

    wait_for(drained, 60, "the lease to lapse and a run to store everything")
    assert stored_ids(db) == ids  # each once, in queue order


def test_a_broker_that_stops_answering_basic_get_ends_the_run_in_the_fetch_bound_and_keeps_the_lease(
    rabbit,
    migrated,  # noqa: F811
):
    db = migrated
    ids = publish_numbered(rabbit, 50)
    with broker_proxy(rabbit.url) as proxy:
        proxy.freeze_after = BASIC_GET  # the connection stays up (heartbeats flow); no reply comes
        args = ("--socket-timeout", "2", "--connect-timeout", "1", "--heartbeat", "30")
        started = time.monotonic()
        result = run_cli(*drain_args(rabbit, db, *args, amqp_url=proxy.url), timeout=120)
        elapsed = time.monotonic() - started
        assert proxy.frozen.is_set()
    assert result.code == 69 and result.summary["error"] == "broker_unavailable", result.stderr
    assert "did not answer basic.get" in result.stderr
    # The fetch bound (10 s) and one socket timeout, the close deadline, start-up; not two heartbeats (60 s).
    assert elapsed < 10 + 2 + 1 + 8, f"took {elapsed:.1f}s"
    # The broker may still hold the run's deliveries on that connection: the lease is kept for two
    # heartbeats and the margin, under a holder no run takes over as a dead process.
    row = lease_row(db, rabbit.queue)
    assert row.holder.endswith(":awaiting-broker-requeue")
    assert row.expires_at - row.renewed_at == timedelta(seconds=2 * 30 + 10)
    nxt = run_cli(*drain_args(rabbit, db, "--until-empty"))
    assert nxt.code == 0 and nxt.summary["fetched"] == 0 and nxt.summary["lease_holder"] == row.holder
    wait_for(lambda: rabbit.depth() == 50, 30, "the broker to requeue what was fetched")
    assert stored_ids(db) == []
    assert run_cli("lease", "release", rabbit.queue, "--force", "--db-url", db.url).code == 0
    assert run_cli(*drain_args(rabbit, db, "--until-empty")).code == 0
    assert stored_ids(db) == ids
