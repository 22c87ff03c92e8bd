"""`verify`, with `--history vitrage`: is every row of Vitrage's `alarms`, `edges` and `changes`
what the stored notifications imply?

The expected rows come from drainer.history's own fold (the projection the drain applies), run
over the notifications whose recorded outcome is `applied`, in the order they were applied: by
`recorded_at` (one value per batch transaction, or per rebuild-history chunk), and within one
transaction in id order, a notification that needs one applied after it (a change redelivered after
its alarm's activation) being tried again once the others are in. Rows the drainer's notifications
do not account for (written by vitrage-persistor before the switch, or whose notifications were
pruned) and rows Vitrage's expirer or `prune --history-older-than` removed (ended alarms) are
information; a row missing, different, doubled, or an `applied` outcome the fold cannot apply, is
a finding. Memory: the history tables and the applied notifications' expected rows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from drainer import history

# Compared columns (created_at / updated_at are the time of application, not the notification's).
ALARM_COLUMNS = (
    "start_timestamp",
    "end_timestamp",
    "name",
    "vitrage_type",
    "vitrage_aggregated_severity",
    "vitrage_operational_severity",
    "project_id",
    "vitrage_resource_type",
    "vitrage_resource_id",
    "vitrage_resource_project_id",
    "payload",
)
EDGE_COLUMNS = ("label", "start_timestamp", "end_timestamp", "payload")
_EPOCH = datetime(1970, 1, 1)
_EXAMPLES = 5


@dataclass(frozen=True)
class Applied:
    """A stored notification whose outcome says `applied`, and when its transaction applied it."""

    id: int
    recorded_at: datetime
    notification: history.Notification


@dataclass
class Expected:
    """Rows the applied notifications imply: full rows for what they created, column updates for
    rows that existed before them (keys as Vitrage's primary keys)."""

    alarms: dict[str, dict[str, Any]] = field(default_factory=dict)
    alarm_updates: dict[str, dict[str, Any]] = field(default_factory=dict)
    edges: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    edge_updates: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    changes: list[dict[str, Any]] = field(default_factory=list)
    unexplained: list[tuple[Applied, str]] = field(default_factory=list)  # applied, but the fold says no


def _merge(expected: Expected, plan: history.Plan) -> None:
    for vid, row in plan.alarm_inserts.items():
        expected.alarms[vid] = row
    for vid, values in plan.alarm_updates.items():
        target = expected.alarms.get(vid)
        (target if target is not None else expected.alarm_updates.setdefault(vid, {})).update(values)
    expected.changes += plan.change_inserts
    for key, row in plan.edge_inserts.items():
        expected.edges[key] = row
    for key, values in plan.edge_updates.items():
        target = expected.edges.get(key)
        (target if target is not None else expected.edge_updates.setdefault(key, {})).update(values)


def expect(applied: Sequence[Applied], alarms: set[str], edges: set[tuple[str, str]]) -> Expected:
    """Fold the applied notifications (any order; sorted here) over the alarms and edges that
    existed before them (`alarms`, `edges`)."""
    known_alarms, known_edges = set(alarms), set(edges)
    expected = Expected()
    groups: dict[datetime, list[Applied]] = {}
    for a in sorted(applied, key=lambda a: (a.recorded_at, a.id)):
        groups.setdefault(a.recorded_at, []).append(a)
    for group in groups.values():
        remaining = group
        while remaining:
            retry: list[tuple[Applied, str]] = []
            for a in remaining:
                plan = history.plan([a.notification], known_alarms, known_edges, _EPOCH)
                (outcome,) = plan.outcomes
                if outcome.outcome != history.APPLIED:
                    retry.append((a, outcome.reason or ""))
                    continue
                _merge(expected, plan)
                known_alarms.update(plan.alarm_inserts)
                known_edges.update(plan.edge_inserts)
            if len(retry) == len(remaining):
                expected.unexplained += retry
                break
            remaining = [a for a, _ in retry]
    return expected


def _same(expected: Any, found: Any) -> bool:
    # Vitrage's DATETIME columns keep whole seconds (MariaDB truncates, MySQL rounds).
    if isinstance(expected, datetime) and isinstance(found, datetime):
        return abs(expected - found) < timedelta(seconds=1)
    return bool(expected == found)


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _finding(check: str, message: str, **details: Any) -> dict[str, Any]:
    return {"check": check, "message": message, **details}


def _compare_rows(
    kind: str,
    expected: dict[Any, dict[str, Any]],
    partial: dict[Any, dict[str, Any]],
    found: dict[Any, dict[str, Any]],
    columns: Iterable[str],
    expired: Counter[str],
    gone_with: Callable[[Any], bool] = lambda _key: False,
) -> list[dict[str, Any]]:
    """Findings for `kind` rows: expected full rows missing or different, partial updates not there.
    A missing row that ended, or `gone_with` an expired alarm, counts as expired instead."""
    out = []
    for key, row in expected.items():
        actual = found.get(key)
        if actual is None:
            if row["end_timestamp"] != history.STILL_ACTIVE or gone_with(key):
                expired[kind] += 1  # an expirer removes ended alarms, with their edges and changes
                continue
            out.append(
                _finding(
                    f"history_{kind}_missing",
                    f"{kind} {key} is active per the stored notifications but is not in Vitrage's table",
                    key=str(key),
                )
            )
            continue
        out += _differences(kind, key, row, actual, columns)
    for key, values in partial.items():
        actual = found.get(key)
        if actual is not None:
            out += _differences(kind, key, values, actual, [c for c in columns if c in values])
    return out


def _differences(
    kind: str, key: Any, row: dict[str, Any], actual: dict[str, Any], columns: Iterable[str]
) -> list[dict[str, Any]]:
    out = []
    for column in columns:
        if not _same(row.get(column), actual.get(column)):
            out.append(
                _finding(
                    f"history_{kind}_differs",
                    f"{kind} {key}: {column} is {_short(actual.get(column))!r}, the stored notifications imply "
                    f"{_short(row.get(column))!r}",
                    key=str(key),
                    column=column,
                )
            )
    return out


def _change_key(row: dict[str, Any]) -> tuple[Any, ...]:
    ts = row["timestamp"]
    return (
        row["vitrage_id"],
        ts.replace(microsecond=0) if isinstance(ts, datetime) else ts,
        row["severity"],
        row["payload"],
    )


def compare(
    expected: Expected,
    alarms: dict[str, dict[str, Any]],
    edges: dict[tuple[str, str], dict[str, Any]],
    changes: Sequence[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(findings, information) for Vitrage's rows against the expected ones."""
    expired: Counter[str] = Counter()
    findings = _compare_rows("alarm", expected.alarms, expected.alarm_updates, alarms, ALARM_COLUMNS, expired)
    findings += _compare_rows(
        "edge",
        expected.edges,
        expected.edge_updates,
        edges,
        EDGE_COLUMNS,
        expired,
        gone_with=lambda key: key[0] not in alarms or key[1] not in alarms,
    )
    want = Counter(_change_key(c) for c in expected.changes)
    have = Counter(_change_key(c) for c in changes)
    for key, n in want.items():
        got = have.get(key, 0)
        if got < n and key[0] not in alarms:
            expired["change"] += n - got  # its alarm was expired with it
        elif got < n:
            findings.append(
                _finding(
                    "history_change_missing",
                    f"alarm {key[0]}: a change at {key[1]} "
                    f"(severity {key[2]}) is stored {n} times, Vitrage's table has {got}",
                    key=key[0],
                )
            )
        elif got > n:
            findings.append(
                _finding(
                    "history_change_doubled",
                    f"alarm {key[0]}: a change at {key[1]} "
                    f"(severity {key[2]}) is stored {n} times, Vitrage's table has {got}",
                    key=key[0],
                )
            )
    if expected.unexplained:
        a, reason = expected.unexplained[0]
        findings.append(
            _finding(
                "history_outcome_unexplained",
                f"{len(expected.unexplained)} notification(s) recorded as applied, but the stored notifications "
                f"before them do not allow it, e.g. {a.notification.message_id} (id {a.id}, "
                f"{a.notification.event_type}): {reason}",
                count=len(expected.unexplained),
                examples=[x.notification.message_id for x, _ in expected.unexplained[:_EXAMPLES]],
            )
        )
    information = []
    activated = set(expected.alarms) | set(expected.alarm_updates)
    others = {
        "alarm": len(set(alarms) - activated),
        "edge": len(set(edges) - set(expected.edges) - set(expected.edge_updates)),
        "change": sum(n for key, n in have.items() if key not in want),
    }
    if any(others.values()):
        information.append(
            _finding(
                "history_rows_not_from_stored_notifications",
                f"{others['alarm']} alarms, {others['edge']} edges and {others['change']} changes in Vitrage's "
                "tables come from no stored notification (written before the drainer, e.g. by vitrage-persistor, "
                "or their notifications were pruned): not checked",
                **{f"{k}s": v for k, v in others.items()},
            )
        )
    if any(expired.values()):
        information.append(
            _finding(
                "history_expired",
                f"{expired['alarm']} ended alarms, {expired['edge']} ended edges and {expired['change']} changes "
                "the stored notifications imply are no longer in Vitrage's tables (expired: "
                "prune --history-older-than, or Vitrage's own expirer)",
                **{f"{k}s": v for k, v in expired.items()},
            )
        )
    return findings, information
