"""`verify`: is the stored history complete and consistent, before a standby replays it?

Checks, on one snapshot of the database:
- every run of the ledger that stored rows has exactly its rows: the rows in its id range are
  its `stored` minus what `prune` deleted since (overlapping ranges, from shards of other queues,
  are checked together);
- no row after the ledger's first one belongs to no run;
- no message_id is stored twice;
- on each queue, ids increase with commit order: runs do not interleave, and a run with higher
  ids committed after the one before it.
Information, never a finding: rows that predate the ledger, collector timestamps that go
backwards in id order, and gaps in id (a failed batch leaves one).
With history="vitrage", also Vitrage's alarms, edges and changes against the stored notifications
(drainer.verify_history).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from drainer.db import verify as db
from drainer.db.engine import Store

_EXAMPLES = 5  # ids quoted per kind of finding or information
_REPEATS = 20  # repeated message_ids listed


@dataclass
class Cluster:
    """Runs whose id ranges overlap (or one run alone), and the rows found in their range."""

    first_id: int
    last_id: int
    expected: int
    runs: list[dict[str, Any]]
    seen: int = 0


def clusters(runs: Sequence[dict[str, Any]]) -> list[Cluster]:
    """Merge runs (sorted by first_id) whose id ranges overlap."""
    merged: list[Cluster] = []
    for run in runs:
        expected = run["stored"] - run["pruned"]
        if merged and run["first_id"] <= merged[-1].last_id:
            c = merged[-1]
            c.last_id, c.expected = max(c.last_id, run["last_id"]), c.expected + expected
            c.runs.append(run)
        else:
            merged.append(Cluster(run["first_id"], run["last_id"], expected, [run]))
    return merged


def counted(n: int, one: str, many: str | None = None) -> str:
    """`1 row`, `2 rows`: the words of a finding match its figure."""
    return f"{n} {one if n == 1 else many or one + 's'}"


def _finding(check: str, message: str, **details: Any) -> dict[str, Any]:
    return {"check": check, "message": message, **details}


def ledger_sanity(runs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for run in runs:
        if run["last_id"] < run["first_id"] or run["stored"] - run["pruned"] < 0:
            out.append(
                _finding(
                    "ledger",
                    f"run {run['run_id']} has an impossible ledger row (ids {run['first_id']}..{run['last_id']}, "
                    f"stored {run['stored']}, pruned {run['pruned']})",
                    run_id=run["run_id"],
                )
            )
    return out


def commit_order(runs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per queue: runs must not interleave, and higher ids must have been committed later."""
    by_queue: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        by_queue[run["queue"]].append(run)
    out = []
    for queue, queue_runs in by_queue.items():
        ordered = sorted(queue_runs, key=lambda r: (r["first_id"], r["last_id"]))
        for a, b in zip(ordered, ordered[1:], strict=False):
            if b["first_id"] <= a["last_id"]:
                out.append(
                    _finding(
                        "commit_order",
                        f"on queue {queue}, runs {a['run_id']} (ids {a['first_id']}..{a['last_id']}) and "
                        f"{b['run_id']} (ids {b['first_id']}..{b['last_id']}) interleave: two writers at once",
                        queue=queue,
                        runs=[a["run_id"], b["run_id"]],
                    )
                )
            elif a["last_commit_at"] and b["first_commit_at"] and b["first_commit_at"] < a["last_commit_at"]:
                out.append(
                    _finding(
                        "commit_order",
                        f"on queue {queue}, run {b['run_id']} stored higher ids ({b['first_id']}..) but committed "
                        f"at {b['first_commit_at']:%Y-%m-%d %H:%M:%S.%f}, before run {a['run_id']} committed its "
                        f"last batch (..{a['last_id']}) at {a['last_commit_at']:%Y-%m-%d %H:%M:%S.%f}",
                        queue=queue,
                        runs=[a["run_id"], b["run_id"]],
                    )
                )
    return out


@dataclass
class Walk:
    """One pass over (id, collector_timestamp) in id order, in constant memory."""

    clusters: list[Cluster]
    ledger_start: int | None
    rows: int = 0
    first: int | None = None
    last: int | None = None
    predate: list[int] = field(default_factory=lambda: [0, 0, 0])  # count, first id, last id
    unaccounted: list[int] = field(default_factory=list)
    unaccounted_count: int = 0
    backwards: int = 0
    largest_back: tuple[timedelta, int] | None = None
    gaps: int = 0
    unused_ids: int = 0
    _previous: tuple[int, datetime] | None = None
    _i: int = 0

    def see(self, row_id: int, ts: datetime) -> None:
        self.rows += 1
        self.first = row_id if self.first is None else self.first
        self.last = row_id
        if self._previous is not None:
            prev_id, prev_ts = self._previous
            if row_id > prev_id + 1:
                self.gaps += 1
                self.unused_ids += row_id - prev_id - 1
            if ts < prev_ts:
                self.backwards += 1
                if self.largest_back is None or prev_ts - ts > self.largest_back[0]:
                    self.largest_back = (prev_ts - ts, row_id)
        self._previous = (row_id, ts)
        self._place(row_id)

    def _place(self, row_id: int) -> None:
        while self._i < len(self.clusters) and self.clusters[self._i].last_id < row_id:
            self._i += 1
        if self._i < len(self.clusters) and self.clusters[self._i].first_id <= row_id:
            self.clusters[self._i].seen += 1
        elif self.ledger_start is None or row_id < self.ledger_start:
            p = self.predate
            p[0], p[1], p[2] = p[0] + 1, p[1] or row_id, row_id
        else:
            self.unaccounted_count += 1
            if len(self.unaccounted) < _EXAMPLES:
                self.unaccounted.append(row_id)


def balance(walk: Walk) -> list[dict[str, Any]]:
    out = []
    for c in walk.clusters:
        if c.seen == c.expected:
            continue
        names = ", ".join(r["run_id"] for r in c.runs)
        stored = sum(r["stored"] for r in c.runs)
        pruned = sum(r["pruned"] for r in c.runs)
        how = f"{c.expected - c.seen} missing" if c.seen < c.expected else f"{c.seen - c.expected} more"
        out.append(
            _finding(
                "ledger_balance",
                f"run{'s' if len(c.runs) > 1 else ''} {names} (ids {c.first_id}..{c.last_id}): the ledger accounts "
                f"for {c.expected} rows ({stored} stored, {pruned} pruned since), the table holds {c.seen} ({how})",
                runs=[r["run_id"] for r in c.runs],
                first_id=c.first_id,
                last_id=c.last_id,
                expected=c.expected,
                found=c.seen,
            )
        )
    if walk.unaccounted_count:
        ids = ", ".join(map(str, walk.unaccounted))
        example = f"id {ids}" if walk.unaccounted_count == 1 else f"e.g. ids {ids}"
        out.append(
            _finding(
                "unaccounted_rows",
                f"{counted(walk.unaccounted_count, 'row belongs', 'rows belong')} to no run of the ledger "
                f"({example}): written by something other than a drain, or by a run "
                "whose ledger row was deleted",
                count=walk.unaccounted_count,
                examples=walk.unaccounted,
            )
        )
    return out


def information(walk: Walk) -> list[dict[str, Any]]:
    out = []
    count, lo, hi = walk.predate
    if count:
        out.append(
            _finding(
                "predates_ledger",
                f"{counted(count, 'row')} (ids {lo}..{hi}) predate the run ledger (stored before migration 003): "
                "not checked against it",
                count=count,
            )
        )
    if walk.backwards and walk.largest_back is not None:
        step, at = walk.largest_back
        out.append(
            _finding(
                "timestamps_backwards",
                f"collector_timestamp goes backwards {counted(walk.backwards, 'time')} in id order (largest step back "
                f"{step} at id {at}): a replay follows id order, which is queue order",
                count=walk.backwards,
                largest_step_s=step.total_seconds(),
                at_id=at,
            )
        )
    if walk.gaps:
        out.append(
            _finding(
                "id_gaps",
                f"{counted(walk.unused_ids, 'id')} unused in {counted(walk.gaps, 'gap')}: a rolled-back or retried "
                "batch leaves one; "
                "not an error",
                gaps=walk.gaps,
                unused=walk.unused_ids,
            )
        )
    return out


def verify(store: Store, after_id: int | None, history: str | None = None) -> dict[str, Any]:
    """The report: `consistent`, `findings` (each with `check` and `message`), `information`,
    and what was checked. With history="vitrage" the whole alarm history is checked too (whatever
    `after_id`). Raises DatabaseUnavailable, DatabaseAccessDenied, SchemaOutdated (history tables)."""
    history_tables = None
    if history == "vitrage":
        from drainer.db import history as db_history

        history_tables = db_history.build()
        db_history.check_tables(store, history_tables)
    history_findings: list[dict[str, Any]] = []
    history_information: list[dict[str, Any]] = []
    with db.snapshot(store) as conn:
        runs = db.ledger(store, conn, after_id)
        start = after_id
        if runs and after_id is not None:
            start = min(after_id, runs[0]["first_id"] - 1)  # a run reaching past after_id: all of it
        walk = Walk(clusters(runs), db.first_ledger_id(store, conn))
        for row_id, ts in db.event_ids(store, conn, start):
            walk.see(row_id, ts)
        repeats = db.repeated_message_ids(store, conn, after_id, _REPEATS)
        if history_tables is not None:
            history_findings, history_information = _history(store, conn, history_tables)
    findings = ledger_sanity(runs) + balance(walk) + commit_order(runs)
    findings += [
        _finding("repeated_message_id", f"message_id {m!r} is stored {n} times", message_id=m, times=n)
        for m, n in repeats
    ]
    findings += history_findings
    return {
        "consistent": not findings,
        "findings": findings,
        "information": information(walk) + history_information,
        "checked": {
            "after_id": after_id,
            "rows": walk.rows,
            "first_id": walk.first,
            "last_id": walk.last,
            "runs": len(runs),
            "history": history_tables is not None,
        },
    }


def _history(store: Store, conn: Any, ht: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Vitrage's history tables against the stored notifications (drainer.verify_history)."""
    from drainer import history
    from drainer import verify_history as vh

    applied = [
        vh.Applied(row_id, at, n)
        for row_id, message_id, event_type, payload, at in db.history_applied(store, conn, ht)
        if (n := history.Notification.from_stored(message_id, event_type, payload)) is not None
    ]
    alarms, edges, changes = db.history_rows(conn, ht)
    created_alarms = {
        a.notification.payload.get("vitrage_id") for a in applied if a.notification.event_type == history.ACTIVATE_ALARM
    }
    created_edges = {
        (a.notification.payload.get("source_id"), a.notification.payload.get("target_id"))
        for a in applied
        if a.notification.event_type == history.ACTIVATE_CAUSAL
    }
    expected = vh.expect(applied, set(alarms) - created_alarms, set(edges) - created_edges)
    findings, information = vh.compare(expected, alarms, edges, changes)
    not_applied, no_outcome = db.history_unapplied(store, conn, ht)
    if not_applied:
        information.append(
            _finding(
                "history_not_applied",
                f"{counted(not_applied, 'stored notification')} could not be applied to the history (what Vitrage's "
                "persistor would have lost; each reason is in drainer_history_outcomes)",
                count=not_applied,
            )
        )
    if no_outcome:
        information.append(
            _finding(
                "history_never_applied",
                f"{counted(no_outcome, 'stored notification')} never applied (stored before --history vitrage): "
                "run `vitrage-drainer rebuild-history`",
                count=no_outcome,
            )
        )
    return findings, information
