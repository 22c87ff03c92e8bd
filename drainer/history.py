"""Vitrage's alarm history, Vitrage's way: what its persistor does with each notification, as a pure fold.

vitrage-graph (Rocky to 15.0.1) publishes `vitrage.alarm.*` and `vitrage.causal_relationship.*`
notifications on `vitrage_persistor`; Vitrage's own persistor (vitrage/persistency/service.py,
`VitragePersistorEndpoint`) turns each into one ORM commit on `alarms`, `edges` or `changes`
(vitrage/storage/sqlalchemy/models.py). This module decides, for a sequence of such notifications
and the rows that already exist, exactly which rows that persistor would write, with the same
values, and says why a notification cannot be applied where the persistor would fail and lose it
(a repeated activation, a change for an unknown alarm, a required field missing, a value its 3-byte
`utf8` columns cannot hold). Nothing here talks to a database (drainer.db.history does).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

ACTIVATE_ALARM = "vitrage.alarm.activate"
DEACTIVATE_ALARM = "vitrage.alarm.deactivate"
CHANGE_ALARM = "vitrage.alarm.change"
CHANGE_PROJECT_ID = "vitrage.alarm.change_project_id"
ACTIVATE_CAUSAL = "vitrage.causal_relationship.activate"
DEACTIVATE_CAUSAL = "vitrage.causal_relationship.deactivate"
TYPES = frozenset(
    {ACTIVATE_ALARM, DEACTIVATE_ALARM, CHANGE_ALARM, CHANGE_PROJECT_ID, ACTIVATE_CAUSAL, DEACTIVATE_CAUSAL}
)

log = logging.getLogger(__name__)

# `2026-11-29 10:00:00.123456+00:00`, `2026-11-29T10:00:00Z`: the forms Vitrage's update_timestamp
# takes, which datetime.fromisoformat and dateutil read alike (tests/unit/test_history.py checks).
_PLAIN_ISO = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})?\Z")

# vitrage.storage.sqlalchemy.models.DEFAULT_END_TIME: "still active".
STILL_ACTIVE = datetime(2222, 2, 22, 22, 22, 22)

APPLIED = "applied"
NOT_APPLIED = "not_applied"

# Vitrage's column widths (characters), from its models and alembic migration 4e44c9414dff.
_ALARM_WIDTHS = {
    "vitrage_id": 128,
    "name": 256,
    "vitrage_type": 64,
    "vitrage_aggregated_severity": 64,
    "vitrage_operational_severity": 64,
    "project_id": 64,
    "vitrage_resource_type": 64,
    "vitrage_resource_id": 64,
    "vitrage_resource_project_id": 64,
}
_ALARM_REQUIRED = ("vitrage_id", "name", "vitrage_type", "vitrage_aggregated_severity", "vitrage_operational_severity")
_TEXT_LIMIT = 65_535  # `payload` is TEXT: bytes


class NotApplicable(ValueError):
    """Vitrage's persistor would fail on this notification (and lose it); the reason says why."""


@dataclass(frozen=True)
class Notification:
    """A stored notification of one of the six history types."""

    message_id: str
    event_type: str
    payload: dict[str, Any]

    @classmethod
    def from_stored(cls, message_id: str, event_type: str | None, payload_json: str) -> Notification | None:
        """None unless `event_type` is one of the six history types and the payload an object."""
        if event_type not in TYPES:
            return None
        payload = json.loads(payload_json)
        return cls(message_id, event_type, payload) if isinstance(payload, dict) else None


@dataclass(frozen=True)
class Outcome:
    """What happened to one notification: applied, or not applied and why."""

    message_id: str
    event_type: str
    vitrage_id: str | None
    outcome: str  # APPLIED or NOT_APPLIED
    reason: str | None = None


@dataclass
class Plan:
    """The rows to write, in the order Vitrage's persistor would have written them.

    alarm_inserts: full `alarms` rows (a later deactivation in the same plan is folded in);
    alarm_updates: (vitrage_id, {column: value}) for alarms that existed before the plan;
    change_inserts: `changes` rows in order; edge_inserts: full `edges` rows;
    edge_updates: ((source_id, target_id), {column: value}) for edges that existed before.
    """

    alarm_inserts: dict[str, dict[str, Any]] = field(default_factory=dict)
    alarm_updates: dict[str, dict[str, Any]] = field(default_factory=dict)
    change_inserts: list[dict[str, Any]] = field(default_factory=list)
    edge_inserts: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    edge_updates: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def applied(self) -> int:
        return sum(o.outcome == APPLIED for o in self.outcomes)

    @property
    def not_applied(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.outcome != APPLIED]


def referenced(notifications: Iterable[Notification]) -> tuple[set[str], set[tuple[str, str]]]:
    """The alarm ids and (source, target) edge keys whose existence the plan depends on."""
    alarms: set[str] = set()
    edges: set[tuple[str, str]] = set()
    for n in notifications:
        for key in ("vitrage_id", "source_id", "target_id"):
            value = n.payload.get(key)
            if isinstance(value, str):
                alarms.add(value)
        source, target = n.payload.get("source_id"), n.payload.get("target_id")
        if isinstance(source, str) and isinstance(target, str):
            edges.add((source, target))
    return alarms, edges


def event_time(payload: dict[str, Any]) -> datetime:
    """`update_timestamp` parsed as Vitrage does: dateutil.parser.parse, then oslo_utils'
    timeutils.normalize_time (aware -> naive UTC; naive kept as it is)."""
    value = payload.get("update_timestamp")
    if not isinstance(value, str):
        raise NotApplicable(f"update_timestamp is {_kind(value)}, not a date string")
    if _PLAIN_ISO.match(value):
        # What Vitrage writes; datetime reads it as dateutil does, 50 times faster (measured).
        parsed = datetime.fromisoformat(value)
    else:
        from dateutil import parser

        try:
            parsed = parser.parse(value)
        except (ValueError, OverflowError) as exc:
            raise NotApplicable(f"update_timestamp {value[:64]!r} is not a date: {exc}") from exc
    offset = parsed.utcoffset()
    try:
        return parsed if offset is None else parsed.replace(tzinfo=None) - offset
    except OverflowError as exc:
        raise NotApplicable(f"update_timestamp {value[:64]!r} is out of range in UTC") from exc


def _kind(value: Any) -> str:
    return "missing" if value is None else type(value).__name__


def _column(payload: dict[str, Any], name: str, width: int, required: bool = False) -> Any:
    """The value Vitrage would bind to a String(width) column of its utf8 (3-byte) tables."""
    value = payload.get(name)
    if value is None:
        if required:
            raise NotApplicable(f"{name} is missing and Vitrage's column is NOT NULL")
        return None
    if isinstance(value, dict | list):
        raise NotApplicable(f"{name} is a JSON {type(value).__name__}, not a value a column can hold")
    text = value if isinstance(value, str) else str(value)
    if len(text) > width:
        raise NotApplicable(f"{name} has {len(text)} characters; Vitrage's column holds {width}")
    if any(ord(c) > 0xFFFF for c in text):
        raise NotApplicable(f"{name} holds a 4-byte character that Vitrage's utf8 (3-byte) column cannot store")
    return value


def payload_text(payload: dict[str, Any]) -> str | None:
    """Vitrage's JSONEncodedDict: json.dumps with default options (ASCII escapes), None if empty."""
    if not payload:
        return None
    text = json.dumps(payload)
    if len(text) > _TEXT_LIMIT:
        raise NotApplicable(f"payload is {len(text)} bytes as JSON; Vitrage's TEXT column holds {_TEXT_LIMIT}")
    return text


class _Fold:
    """Applies notifications one after the other to the known alarms and edges, like the persistor."""

    def __init__(self, alarms: set[str], edges: set[tuple[str, str]], now: datetime) -> None:
        self.alarms = set(alarms)
        self.edges = set(edges)
        self.now = now
        self.plan = Plan()
        self.outcome_at: dict[str, int] = {}  # message_id -> its outcome's index in plan.outcomes

    def apply(self, n: Notification) -> None:
        """Apply one notification; a repeat of one already applied is skipped (never applied twice),
        a repeat of one that could not be applied is tried again and its outcome replaced."""
        earlier = self.outcome_at.get(n.message_id)
        if earlier is not None and self.plan.outcomes[earlier].outcome == APPLIED:
            return
        outcome = self._outcome(n)
        if earlier is None:
            self.outcome_at[n.message_id] = len(self.plan.outcomes)
            self.plan.outcomes.append(outcome)
        else:
            self.plan.outcomes[earlier] = outcome

    def _outcome(self, n: Notification) -> Outcome:
        handler = {
            ACTIVATE_ALARM: self._activate_alarm,
            DEACTIVATE_ALARM: self._deactivate_alarm,
            CHANGE_ALARM: self._change,
            CHANGE_PROJECT_ID: self._change_project_id,
            ACTIVATE_CAUSAL: self._activate_edge,
            DEACTIVATE_CAUSAL: self._deactivate_edge,
        }[n.event_type]
        vitrage_id = n.payload.get("vitrage_id")
        vitrage_id = vitrage_id if isinstance(vitrage_id, str) else None
        try:
            handler(n.payload)
        except NotApplicable as exc:
            return Outcome(n.message_id, n.event_type, vitrage_id, NOT_APPLIED, str(exc))
        return Outcome(n.message_id, n.event_type, vitrage_id, APPLIED)

    def _known_alarm(self, payload: dict[str, Any], key: str = "vitrage_id") -> str:
        alarm = payload.get(key)
        if not isinstance(alarm, str) or alarm not in self.alarms:
            raise NotApplicable(f"{key} {str(alarm)[:128]!r} names no alarm in the history")
        return alarm

    def _update_alarm(self, alarm: str, values: dict[str, Any]) -> None:
        if alarm in self.plan.alarm_inserts:
            self.plan.alarm_inserts[alarm].update(values, updated_at=self.now)
        else:
            self.plan.alarm_updates.setdefault(alarm, {}).update(values, updated_at=self.now)

    def _activate_alarm(self, p: dict[str, Any]) -> None:
        start = event_time(p)
        row = {name: _column(p, name, width, name in _ALARM_REQUIRED) for name, width in _ALARM_WIDTHS.items()}
        if row["vitrage_id"] in self.alarms:
            raise NotApplicable("repeated activation: the alarm is already in the history (primary key)")
        row.update(
            start_timestamp=start,
            end_timestamp=STILL_ACTIVE,
            payload=payload_text(p),
            created_at=self.now,
            updated_at=None,
        )
        self.alarms.add(row["vitrage_id"])
        self.plan.alarm_inserts[row["vitrage_id"]] = row

    def _deactivate_alarm(self, p: dict[str, Any]) -> None:
        end = event_time(p)
        self._update_alarm(self._known_alarm(p), {"end_timestamp": end})

    def _change_project_id(self, p: dict[str, Any]) -> None:
        value = _column(p, "vitrage_resource_project_id", 64)
        self._update_alarm(self._known_alarm(p), {"vitrage_resource_project_id": value})

    def _change(self, p: dict[str, Any]) -> None:
        timestamp = event_time(p)
        severity = _column(p, "vitrage_operational_severity", 64, required=True)
        alarm = self._known_alarm(p)
        self.plan.change_inserts.append(
            {
                "vitrage_id": alarm,
                "timestamp": timestamp,
                "severity": severity,
                "payload": payload_text(p),
                "created_at": self.now,
                "updated_at": None,
            }
        )

    def _activate_edge(self, p: dict[str, Any]) -> None:
        start = event_time(p)
        label = _column(p, "relationship_type", 64, required=True)
        source, target = self._known_alarm(p, "source_id"), self._known_alarm(p, "target_id")
        if (source, target) in self.edges:
            raise NotApplicable("repeated activation: the causal relationship is already in the history")
        self.edges.add((source, target))
        self.plan.edge_inserts[(source, target)] = {
            "source_id": source,
            "target_id": target,
            "label": label,
            "start_timestamp": start,
            "end_timestamp": STILL_ACTIVE,
            "payload": payload_text(p),
            "created_at": self.now,
            "updated_at": None,
        }

    def _deactivate_edge(self, p: dict[str, Any]) -> None:
        end = event_time(p)
        key = (p.get("source_id"), p.get("target_id"))
        if key not in self.edges:
            raise NotApplicable(f"no causal relationship {str(key[0])[:128]!r} -> {str(key[1])[:128]!r} in the history")
        edge = (str(key[0]), str(key[1]))
        if edge in self.plan.edge_inserts:
            self.plan.edge_inserts[edge].update(end_timestamp=end, updated_at=self.now)
        else:
            self.plan.edge_updates.setdefault(edge, {}).update(end_timestamp=end, updated_at=self.now)


def plan(
    notifications: Sequence[Notification],
    alarms: set[str],
    edges: set[tuple[str, str]],
    now: datetime,
) -> Plan:
    """The writes Vitrage's persistor would make for `notifications`, applied in order, given the
    alarm ids and edge keys that already exist; `now` (naive UTC) fills created_at/updated_at.
    A notification repeated in the sequence (same message id) is applied at most once; the plan
    has one outcome per message id."""
    fold = _Fold(alarms, edges, now)
    for notification in notifications:
        fold.apply(notification)
    return fold.plan


def report(outcomes: Iterable[Outcome]) -> tuple[int, int]:
    """(applied, not applied); each one not applied is logged with its reason (a
    `history_not_applied` record), once its transaction has committed."""
    applied = not_applied = 0
    for outcome in outcomes:
        if outcome.outcome == APPLIED:
            applied += 1
            continue
        not_applied += 1
        log.warning(
            "alarm-history notification not applied",
            extra={
                "event": "history_not_applied",
                "message_id": outcome.message_id,
                "event_type": outcome.event_type,
                "vitrage_id": outcome.vitrage_id,
                "reason": outcome.reason,
            },
        )
    return applied, not_applied
