"""The history fold on its own: what Vitrage's persistor would write for a notification sequence."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from drainer import history
from drainer.history import APPLIED, NOT_APPLIED, STILL_ACTIVE, Notification

NOW = datetime(2026, 11, 29, 12, 0, 0)


def alarm(vid: str = "a-1", ts: str = "2026-11-29 10:00:00.5+00:00", **extra: object) -> dict[str, object]:
    return {
        "vitrage_id": vid,
        "vitrage_category": "ALARM",
        "vitrage_type": "prometheus",
        "name": "HighCpu",
        "vitrage_aggregated_severity": "CRITICAL",
        "vitrage_operational_severity": "CRITICAL",
        "project_id": "p",
        "vitrage_resource_type": "nova.host",
        "vitrage_resource_id": "h-1",
        "vitrage_resource_project_id": "rp",
        "update_timestamp": ts,
        **extra,
    }


def n(event_type: str, payload: dict[str, object], message_id: str | None = None) -> Notification:
    return Notification(message_id or f"m-{id(payload)}", event_type, payload)


def outcomes(plan: history.Plan) -> list[tuple[str, str | None]]:
    return [(o.outcome, o.reason) for o in plan.outcomes]


def test_an_activation_inserts_the_row_vitrage_s_persistor_inserts() -> None:
    payload = alarm()
    plan = history.plan([n(history.ACTIVATE_ALARM, payload)], set(), set(), NOW)

    assert outcomes(plan) == [(APPLIED, None)]
    assert plan.alarm_inserts == {
        "a-1": {
            "vitrage_id": "a-1",
            "name": "HighCpu",
            "vitrage_type": "prometheus",
            "vitrage_aggregated_severity": "CRITICAL",
            "vitrage_operational_severity": "CRITICAL",
            "project_id": "p",
            "vitrage_resource_type": "nova.host",
            "vitrage_resource_id": "h-1",
            "vitrage_resource_project_id": "rp",
            "start_timestamp": datetime(2026, 11, 29, 10, 0, 0, 500000),
            "end_timestamp": STILL_ACTIVE,
            "payload": json.dumps(payload),  # JSONEncodedDict: default json.dumps, ASCII escapes
            "created_at": NOW,
            "updated_at": None,
        }
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-29 10:00:00+02:00", datetime(2026, 11, 29, 8, 0, 0)),  # aware: to naive UTC
        ("2026-11-29T10:00:00Z", datetime(2026, 11, 29, 10, 0, 0)),
        ("2026-11-29 10:00:00.123456", datetime(2026, 11, 29, 10, 0, 0, 123456)),  # naive kept
        ("Sun, 29 Nov 2026 10:00:00 GMT", datetime(2026, 11, 29, 10, 0, 0)),  # dateutil, like Vitrage
    ],
)
def test_update_timestamp_is_parsed_as_vitrage_parses_it(text: str, expected: datetime) -> None:
    assert history.event_time({"update_timestamp": text}) == expected


@pytest.mark.parametrize("value", [None, 1764410400, "not a date", ""])
def test_an_unparseable_update_timestamp_is_not_applied(value: object) -> None:
    plan = history.plan([n(history.ACTIVATE_ALARM, alarm(ts=value))], set(), set(), NOW)  # type: ignore[arg-type]

    assert plan.outcomes[0].outcome == NOT_APPLIED and "update_timestamp" in (plan.outcomes[0].reason or "")
    assert plan.alarm_inserts == {}


def test_a_deactivation_in_the_same_plan_is_folded_into_the_insert() -> None:
    plan = history.plan(
        [n(history.ACTIVATE_ALARM, alarm()), n(history.DEACTIVATE_ALARM, alarm(ts="2026-11-29 11:00:00+00:00"))],
        set(),
        set(),
        NOW,
    )

    row = plan.alarm_inserts["a-1"]
    assert (row["end_timestamp"], row["updated_at"]) == (datetime(2026, 11, 29, 11, 0, 0), NOW)
    assert plan.alarm_updates == {}


def test_updates_of_existing_alarms_are_updates() -> None:
    plan = history.plan(
        [
            n(history.DEACTIVATE_ALARM, alarm(ts="2026-11-29 11:00:00")),
            n(history.CHANGE_PROJECT_ID, alarm(vitrage_resource_project_id="new")),
        ],
        {"a-1"},
        set(),
        NOW,
    )

    assert plan.alarm_updates == {
        "a-1": {
            "end_timestamp": datetime(2026, 11, 29, 11, 0, 0),
            "vitrage_resource_project_id": "new",
            "updated_at": NOW,
        }
    }


@pytest.mark.parametrize(
    ("event_type", "payload", "known", "reason"),
    [
        (history.ACTIVATE_ALARM, alarm(), {"a-1"}, "repeated activation"),
        (history.CHANGE_ALARM, alarm(), set(), "names no alarm"),
        (history.DEACTIVATE_ALARM, alarm(), set(), "names no alarm"),
        (history.ACTIVATE_ALARM, alarm(name=None), set(), "name is missing"),
        (history.ACTIVATE_ALARM, alarm(vitrage_operational_severity=None), set(), "NOT NULL"),
        (history.CHANGE_ALARM, alarm(vitrage_operational_severity=None), {"a-1"}, "NOT NULL"),
        (history.ACTIVATE_ALARM, alarm(name="x" * 257), set(), "holds 256"),
        (history.ACTIVATE_ALARM, alarm(project_id="p" * 65), set(), "holds 64"),
        (history.ACTIVATE_ALARM, alarm(name="Disk \U0001f4be"), set(), "4-byte character"),
        (history.ACTIVATE_ALARM, alarm(name={"not": "scalar"}), set(), "not a value"),
        (history.ACTIVATE_ALARM, alarm(blob="x" * 70_000), set(), "TEXT column"),
    ],
)
def test_what_vitrage_s_persistor_would_lose_is_not_applied(
    event_type: str, payload: dict[str, object], known: set[str], reason: str
) -> None:
    plan = history.plan([n(event_type, payload)], known, set(), NOW)

    assert plan.outcomes[0].outcome == NOT_APPLIED
    assert reason in (plan.outcomes[0].reason or "")
    assert (plan.alarm_inserts, plan.alarm_updates, plan.change_inserts) == ({}, {}, [])


def test_three_byte_characters_fit_vitrage_s_utf8_columns() -> None:
    plan = history.plan([n(history.ACTIVATE_ALARM, alarm(name="Überlast – Instanz ✓"))], set(), set(), NOW)

    assert plan.outcomes[0].outcome == APPLIED


def test_a_change_needs_its_alarm_at_that_point_of_the_sequence() -> None:
    change = n(history.CHANGE_ALARM, alarm(vitrage_operational_severity="WARNING"), "change")
    plan = history.plan([change, n(history.ACTIVATE_ALARM, alarm(), "activate")], set(), set(), NOW)

    assert [o.outcome for o in plan.outcomes] == [NOT_APPLIED, APPLIED]
    assert plan.change_inserts == []


def test_a_repeat_of_a_notification_is_applied_once_and_a_failed_one_is_retried_at_its_repeat() -> None:
    change = n(history.CHANGE_ALARM, alarm(vitrage_operational_severity="WARNING"), "change")
    activate = n(history.ACTIVATE_ALARM, alarm(), "activate")

    plan = history.plan([change, activate, change, activate, change], set(), set(), NOW)

    assert [(o.message_id, o.outcome) for o in plan.outcomes] == [("change", APPLIED), ("activate", APPLIED)]
    assert len(plan.change_inserts) == 1 and plan.change_inserts[0]["severity"] == "WARNING"


def test_causal_edges_need_both_alarms_and_are_activated_once() -> None:
    edge = {"source_id": "a-1", "target_id": "a-2", "relationship_type": "causes", "update_timestamp": "2026-11-29"}
    plan = history.plan(
        [
            n(history.ACTIVATE_CAUSAL, edge, "e1"),
            n(history.ACTIVATE_ALARM, alarm("a-2"), "a2"),
            n(history.ACTIVATE_CAUSAL, edge, "e2"),
            n(history.ACTIVATE_CAUSAL, edge, "e3"),
            n(history.DEACTIVATE_CAUSAL, {**edge, "update_timestamp": "2026-11-30"}, "e4"),
            n(history.DEACTIVATE_CAUSAL, {**edge, "source_id": "zz"}, "e5"),
        ],
        {"a-1"},
        set(),
        NOW,
    )

    assert [o.outcome for o in plan.outcomes] == [NOT_APPLIED, APPLIED, APPLIED, NOT_APPLIED, APPLIED, NOT_APPLIED]
    assert plan.edge_inserts[("a-1", "a-2")]["label"] == "causes"
    assert plan.edge_inserts[("a-1", "a-2")]["end_timestamp"] == datetime(2026, 11, 30)
    assert "repeated activation" in (plan.outcomes[3].reason or "")


def test_referenced_names_every_alarm_and_edge_the_plan_depends_on() -> None:
    notifications = [
        n(history.ACTIVATE_ALARM, alarm("a-1")),
        n(history.ACTIVATE_CAUSAL, {"source_id": "a-2", "target_id": "a-3"}),
    ]

    assert history.referenced(notifications) == ({"a-1", "a-2", "a-3"}, {("a-2", "a-3")})


def test_only_the_six_history_types_become_notifications() -> None:
    assert Notification.from_stored("m", "nova.instance", "{}") is None
    assert Notification.from_stored("m", "vitrage.deduced_alarm.activate", "{}") is None
    assert Notification.from_stored("m", history.CHANGE_ALARM, '{"a": 1}') == Notification(
        "m", history.CHANGE_ALARM, {"a": 1}
    )


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-29 10:00:00",
        "2026-11-29T10:00:00",
        "2026-11-29 10:00:00.1",
        "2026-11-29 10:00:00.123456",
        "2026-11-29T10:00:00Z",
        "2026-11-29 10:00:00.000001+00:00",
        "2026-11-29 23:59:59-05:30",
        "0001-01-01 00:00:00+00:00",
    ],
)
def test_the_fast_path_reads_vitrage_s_formats_exactly_as_dateutil_does(text: str) -> None:
    from dateutil import parser

    assert history._PLAIN_ISO.match(text)
    expected = parser.parse(text)
    offset = expected.utcoffset()
    expected = expected if offset is None else expected.replace(tzinfo=None) - offset
    assert history.event_time({"update_timestamp": text}) == expected
