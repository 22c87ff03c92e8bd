"""`verify` against real drains: consistent histories exit 0, damaged ones exit 1 naming the damage."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from tests.conftest import oslo_v2

pytestmark = pytest.mark.integration

# The dialect does not matter here (the SQL is tested on both elsewhere): MariaDB only, for CI time.
mysql_only = pytest.mark.parametrize("db", ["mysql"], indirect=True)


def drain_some(rabbit, drainer, n, start=0, **payload):
    rabbit.publish([oslo_v2({"n": start + i, **payload}, message_id=f"v-{start + i:05d}") for i in range(n)])
    result = drainer("drain", "--batch-size", "10", "--until-empty")
    assert result.code == 0, result.stderr
    return result


def verify(drainer, *args):
    result = drainer("verify", "--json", *args)
    assert result.code in (0, 1), result.stderr
    return result.code, json.loads(result.stdout)


def checks(report, key="findings"):
    return [f["check"] for f in report[key]]


def test_a_drained_history_is_consistent_with_duplicates_rejections_and_backwards_timestamps(rabbit, db, drainer):
    # Stored before the ledger existed (0.1's rows after an upgrade): information, not a finding.
    db.execute(
        "INSERT INTO drainer_events (message_id, collector_timestamp, payload, stored_at) VALUES ('old', :t, '{}', :t)",
        t=datetime(2026, 1, 1),
    )
    drain_some(rabbit, drainer, 25, vitrage_sample_date="2026-11-24T10:00:00Z")
    rabbit.publish([oslo_v2({"n": 0}, message_id="v-00000"), b"not json"])  # a redelivery and a poison
    rabbit.publish([oslo_v2({"vitrage_sample_date": "2026-11-24T09:00:00Z"}, message_id="late")])
    assert drainer("drain").code == 0

    code, report = verify(drainer)

    assert code == 0 and report["consistent"] and report["findings"] == []
    assert set(checks(report, "information")) == {"predates_ledger", "timestamps_backwards"}
    assert report["checked"] == {
        "after_id": None,
        "rows": 27,
        "first_id": 1,
        "last_id": 27,
        "runs": 2,
        "history": False,
    }
    assert drainer("verify").stdout.strip().endswith("consistent")


@mysql_only
def test_a_gap_in_id_is_information_not_an_error(rabbit, db, drainer):
    drain_some(rabbit, drainer, 3)
    # What a rolled-back or retried batch leaves: ids taken, never committed.
    if db.kind == "mysql":
        db.execute("ALTER TABLE drainer_events AUTO_INCREMENT = 100")
    else:
        db.execute("UPDATE sqlite_sequence SET seq = 99 WHERE name = 'drainer_events'")
    drain_some(rabbit, drainer, 3, start=3)
    code, report = verify(drainer)
    assert code == 0 and checks(report, "information") == ["id_gaps"]
    assert report["information"][0]["unused"] == 96


def test_a_deleted_row_is_a_finding_naming_its_run(rabbit, db, drainer):
    first = drain_some(rabbit, drainer, 20)
    drain_some(rabbit, drainer, 20, start=20)
    db.execute("DELETE FROM drainer_events WHERE id = 7")

    code, report = verify(drainer)

    assert code == 1 and not report["consistent"]
    (finding,) = report["findings"]
    assert finding["check"] == "ledger_balance" and finding["runs"] == [first.summary["run_id"]]
    assert (finding["expected"], finding["found"]) == (20, 19)
    text = drainer("verify")
    assert text.code == 1 and "1 missing" in text.stdout and "NOT consistent" in text.stdout
    # A standby replaying after id 20 does not need run one: its window is complete.
    assert verify(drainer, "--after-id", "20")[0] == 0


@mysql_only
def test_a_row_written_by_something_else_is_a_finding(rabbit, db, drainer):
    drain_some(rabbit, drainer, 5)
    db.execute(
        "INSERT INTO drainer_events (message_id, collector_timestamp, payload, stored_at) VALUES ('x', :t, '{}', :t)",
        t=datetime(2026, 11, 24),
    )
    code, report = verify(drainer)
    assert code == 1 and checks(report) == ["unaccounted_rows"] and report["findings"][0]["examples"] == [6]


@mysql_only
def test_runs_that_committed_out_of_id_order_are_a_finding(rabbit, db, drainer):
    drain_some(rabbit, drainer, 5)
    drain_some(rabbit, drainer, 5, start=5)
    # As if the second run had committed first: what two writers without the lease would leave.
    db.execute(
        "UPDATE drainer_runs SET first_commit_at = :t WHERE first_id = 6", t=datetime.utcnow() - timedelta(days=1)
    )
    code, report = verify(drainer)
    assert code == 1 and checks(report) == ["commit_order"]


def test_a_message_id_stored_twice_is_a_finding(rabbit, mysql_db):
    from tests.conftest import run_cli

    db = mysql_db
    assert run_cli("migrate", "--db-url", db.url).code == 0
    rabbit.publish([oslo_v2({"n": 1}, message_id="twice")])
    assert run_cli("drain", "--db-url", db.url, "--amqp-url", rabbit.url, "--queue", rabbit.queue).code == 0
    # A restore that lost the unique key, then a hand-made copy.
    db.execute("ALTER TABLE drainer_events DROP INDEX uq_drainer_events_message_id")
    columns = "message_id, collector_timestamp, event_type, payload, stored_at"
    db.execute(f"INSERT INTO drainer_events (id, {columns}) SELECT 2, {columns} FROM drainer_events WHERE id = 1")
    db.execute("UPDATE drainer_runs SET stored = 2, last_id = 2")
    result = run_cli("verify", "--json", "--db-url", db.url)
    report = json.loads(result.stdout)
    assert result.code == 1 and checks(report) == ["repeated_message_id"]
    assert report["findings"][0]["message_id"] == "twice" and report["findings"][0]["times"] == 2


def test_pruned_histories_stay_consistent(rabbit, db, drainer):
    old = "2026-01-01T00:00:00Z"
    rabbit.publish([oslo_v2({"vitrage_sample_date": old if i % 3 == 0 else "2099-01-01T00:00:00Z"}) for i in range(30)])
    assert drainer("drain", "--batch-size", "10", "--until-empty").code == 0
    assert drainer("prune", "--older-than", "30d").summary["deleted"] == 10  # every third row, across runs
    assert drainer("prune", "--before-id", "15").summary["deleted"] == 9
    code, report = verify(drainer)
    assert code == 0, report
