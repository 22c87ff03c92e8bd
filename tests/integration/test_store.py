"""The store on its own: one batch is one transaction — it commits whole, or rolls back whole."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from drainer import schema
from drainer.config import Settings
from drainer.db import lease as leases
from drainer.db.batch import BatchHooks, write_batch
from drainer.db.engine import Store
from drainer.db.lease import Lease
from drainer.envelope import rejection
from drainer.errors import BatchNotCommitted, DatabaseLocked, LeaseLost
from drainer.model import Delivery, Event
from tests.conftest import wait_for

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 25, 12, 0, 0, 123456)


def event(key: str) -> Event:
    return Event(
        key, NOW, "nova.instance", "datasources.events", "INFO", "nova.instance", key, "update", f'{{"id": "{key}"}}'
    )


@pytest.fixture
def store(db):
    s = Store.open(db.url, Settings(db_url=db.url, retry_seconds=2), create=True)
    schema.migrate(s)
    yield s
    s.dispose()


def poison() -> object:
    return rejection(Delivery(7, b"\xffnot json", "vitrage", "q.info", False, {}), "body is not UTF-8", NOW)


def test_a_batch_commits_its_events_and_rejections_together(store, db):
    result = write_batch(store, "q.info", [event("a"), event("b")], [poison()], None, BatchHooks())
    assert (result.stored, result.rejected, result.duplicates) == (2, 1, 0)
    assert [r.message_id for r in db.rows("SELECT message_id FROM drainer_events ORDER BY id")] == ["a", "b"]
    assert bytes(db.rows("SELECT body FROM drainer_rejected_messages")[0].body) == b"\xffnot json"


def test_a_stored_key_is_a_duplicate_not_a_second_row(store, db):
    write_batch(store, "q.info", [event("a")], [poison()], None, BatchHooks())
    again = write_batch(store, "q.info", [event("a"), event("c")], [poison()], None, BatchHooks())
    assert (again.stored, again.duplicates, again.rejected) == (1, 2, 0)
    assert (
        len(db.rows("SELECT id FROM drainer_events")) == 2
        and len(db.rows("SELECT id FROM drainer_rejected_messages")) == 1
    )


def test_a_failure_just_before_commit_rolls_the_whole_batch_back(store, db):
    def refuse() -> None:
        raise BatchNotCommitted("broker gone")

    with pytest.raises(BatchNotCommitted):
        write_batch(store, "q.info", [event("a"), event("b")], [poison()], None, BatchHooks(before_commit=refuse))
    assert db.rows("SELECT id FROM drainer_events") == [] and db.rows("SELECT id FROM drainer_rejected_messages") == []


def test_a_batch_without_the_lease_is_not_committed(store, db):
    assert leases.acquire(store, "q.info", "other:1:x:1", 60) is None
    with pytest.raises(LeaseLost):
        write_batch(store, "q.info", [event("a")], [], Lease("q.info", "me:2:y:1", 60), BatchHooks())
    assert db.rows("SELECT id FROM drainer_events") == []


def test_the_holder_commits_and_renews_its_lease(store, db):
    lease = Lease("q.info", "me:2:y:1", 60)
    assert leases.acquire(store, lease.name, lease.holder, lease.ttl_s) is None
    before = db.rows("SELECT expires_at FROM drainer_leases")[0].expires_at
    leases.renew(store, lease)
    assert write_batch(store, "q.info", [event("a")], [], lease, BatchHooks()).stored == 1
    after = db.rows("SELECT expires_at FROM drainer_leases")[0].expires_at
    assert str(after) >= str(before)
    assert leases.acquire(store, "q.info", "someone:3:z:1", 60).holder == lease.holder


def test_a_write_that_outlasts_its_lease_is_not_committed(store, db):
    lease = Lease("q.info", "me:2:y:1", 1.0)
    assert leases.acquire(store, lease.name, lease.holder, lease.ttl_s) is None

    def slow_database(conn, written) -> None:
        # This attempt's first fence extended the lease by 1 s; the database then takes longer.
        lapsed = store.now(conn) + timedelta(seconds=1.2)
        wait_for(lambda: store.clock() > lapsed, 10, "the lease to lapse during the write")

    with pytest.raises(LeaseLost):
        write_batch(store, "q.info", [event("a")], [poison()], lease, BatchHooks(in_transaction=slow_database))
    assert db.rows("SELECT id FROM drainer_events") == [] and db.rows("SELECT id FROM drainer_rejected_messages") == []


# On SQLite every writer takes the whole database (BEGIN IMMEDIATE): the row lock is the MySQL case.
@pytest.mark.parametrize("db", ["mysql"], indirect=True)
def test_the_lease_row_stays_locked_while_a_batch_is_written(store, db):
    lease = Lease("q.info", "me:2:y:1", 3.0)
    assert leases.acquire(store, lease.name, lease.holder, lease.ttl_s) is None
    taken = store.clock()
    # Start the write near the end of the committed lease: only the write's own fence covers it.
    wait_for(lambda: store.clock() > taken + timedelta(seconds=2), 10, "the lease to near its end")
    contender = Store.open(db.url, Settings(db_url=db.url, retry_seconds=1, lock_wait_timeout=1))
    answers = []

    def second_drainer(conn, written) -> None:
        wait_for(lambda: store.clock() > taken + timedelta(seconds=3.3), 10, "the committed lease to lapse")
        try:
            answers.append(leases.acquire(contender, lease.name, "other:3:z:1", 60))
        except DatabaseLocked as exc:  # it waited for the row within its budget, and gave up
            answers.append(exc)

    try:
        result = write_batch(store, "q.info", [event("a")], [], lease, BatchHooks(in_transaction=second_drainer))
    finally:
        contender.dispose()
    (held,) = answers
    assert held is not None  # found held, or waited out its budget: never taken
    assert result.stored == 1 and [r.message_id for r in db.rows("SELECT message_id FROM drainer_events")] == ["a"]
    assert db.rows("SELECT holder FROM drainer_leases")[0].holder == lease.holder
