"""verify's pure logic: runs merged into clusters, the walk over ids, commit order."""

from __future__ import annotations

from datetime import datetime, timedelta

from drainer.verify import Walk, balance, clusters, commit_order, information

T0 = datetime(2026, 11, 24, 12)


def run(name, first, last, stored=None, pruned=0, queue="q.info", first_at=None, last_at=None):
    return {
        "run_id": name,
        "queue": queue,
        "first_id": first,
        "last_id": last,
        "stored": last - first + 1 if stored is None else stored,
        "pruned": pruned,
        "first_commit_at": first_at or T0 + timedelta(seconds=first),
        "last_commit_at": last_at or T0 + timedelta(seconds=last),
    }


def walk(runs, ids, ledger_start=None, stamps=None):
    w = Walk(clusters(runs), ledger_start if ledger_start is not None else min(r["first_id"] for r in runs))
    for i in ids:
        w.see(i, (stamps or {}).get(i, T0 + timedelta(seconds=i)))
    return w


def test_runs_of_shards_whose_ranges_overlap_are_balanced_together():
    merged = clusters([run("a", 1, 10, stored=5), run("b", 2, 12, stored=6), run("c", 20, 21)])
    assert [(c.first_id, c.last_id, c.expected) for c in merged] == [(1, 12, 11), (20, 21, 2)]


def test_a_complete_history_with_gaps_has_no_finding_only_information():
    w = walk([run("a", 1, 5, stored=4), run("b", 8, 9)], [1, 2, 3, 5, 8, 9])
    assert balance(w) == []
    info = {i["check"]: i for i in information(w)}
    assert info["id_gaps"]["gaps"] == 2 and info["id_gaps"]["unused"] == 3


def test_a_missing_row_and_an_extra_row_are_findings_naming_the_run():
    missing = balance(walk([run("a", 1, 5), run("b", 6, 7)], [1, 2, 4, 5, 6, 7]))
    assert [(f["check"], f["runs"], f["expected"], f["found"]) for f in missing] == [("ledger_balance", ["a"], 5, 4)]
    assert "1 missing" in missing[0]["message"]
    stray = balance(walk([run("a", 1, 3)], [1, 2, 3, 4, 5]))
    assert [(f["check"], f["count"], f["examples"]) for f in stray] == [("unaccounted_rows", 2, [4, 5])]


def test_pruned_rows_are_not_missing():
    assert balance(walk([run("a", 1, 10, pruned=7)], [8, 9, 10])) == []


def test_rows_below_the_ledger_predate_it():
    w = walk([run("a", 5, 6)], [1, 2, 5, 6], ledger_start=5)
    assert balance(w) == [] and information(w)[0]["check"] == "predates_ledger" and information(w)[0]["count"] == 2


def test_timestamps_going_backwards_are_information_with_the_largest_step():
    stamps = {2: T0 - timedelta(minutes=3), 4: T0 - timedelta(seconds=10)}
    (info,) = [
        i for i in information(walk([run("a", 1, 5)], [1, 2, 3, 4, 5], stamps=stamps)) if i["check"] != "id_gaps"
    ]
    assert info["check"] == "timestamps_backwards" and info["count"] == 2 and info["at_id"] == 2


def test_runs_of_one_queue_that_interleave_or_commit_out_of_order_are_findings():
    assert commit_order([run("a", 1, 10), run("b", 11, 20)]) == []
    assert commit_order([run("a", 1, 10), run("b", 5, 20, queue="other.info")]) == []  # shards may
    (overlap,) = commit_order([run("a", 1, 10), run("b", 8, 20)])
    assert overlap["check"] == "commit_order" and "interleave" in overlap["message"]
    late = run("a", 1, 10, last_at=T0 + timedelta(hours=1))
    (order,) = commit_order([late, run("b", 11, 20)])
    assert order["runs"] == ["a", "b"] and "before run a committed" in order["message"]
