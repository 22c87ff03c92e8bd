"""envelope: bytes -> Event | Rejection, the dedupe key and the collector timestamp; pure, no services."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from drainer import envelope
from drainer.model import Delivery, Event, Rejection

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
NOW = datetime(2030, 1, 2, 3, 4, 5, 678901)  # the clock handed to decode(); never a real "now"

# Exactly the body captured from oslo.messaging's messagingv2 notifier (docs: oslo-wire.md).
OSLO_WIRE_BODY = (
    b'{"oslo.version": "2.0", "oslo.message": "{\\"message_id\\": \\"5e4a024e-8cf6-4fcb-9eb9-c76c153fe98e\\", '
    b'\\"publisher_id\\": \\"datasources.events\\", \\"event_type\\": \\"nova.instance\\", \\"priority\\": '
    b'\\"INFO\\", \\"payload\\": {\\"vitrage_entity_type\\": \\"nova.instance\\", \\"vitrage_datasource_action\\": '
    b'\\"update\\", \\"vitrage_sample_date\\": \\"2026-11-24 21:19:37.666880\\", \\"id\\": \\"vm-0\\", \\"name\\": '
    b'\\"test-vm-0\\"}, \\"timestamp\\": \\"2026-11-24 21:19:37.666931\\", \\"_unique_id\\": '
    b'\\"a9fdc5e989c34e35ad3e4354940a9afc\\"}"}'
)


def delivery(body: bytes, **properties: Any) -> Delivery:
    return Delivery(
        tag=7,
        body=body,
        exchange="vitrage",
        routing_key="vitrage_persistor.info",
        redelivered=False,
        properties=properties,
    )


def oslo_v2(payload: Any, **notification: Any) -> bytes:
    """A messagingv2 body: the notification is a JSON string inside the outer object."""
    inner = {"publisher_id": "datasources.events", "priority": "INFO", **notification, "payload": payload}
    return json.dumps({"oslo.version": "2.0", "oslo.message": json.dumps(inner)}).encode()


def decoded_event(body: bytes, **properties: Any) -> Event:
    item = envelope.decode(delivery(body, **properties), NOW)
    assert isinstance(item, Event), item
    return item


def decoded_rejection(body: bytes, **properties: Any) -> Rejection:
    item = envelope.decode(delivery(body, **properties), NOW)
    assert isinstance(item, Rejection), item
    return item


def nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def sha256_key(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


# --- the three accepted shapes ---------------------------------------------------------------------


def test_oslo_v2_wire_body_becomes_an_event_with_every_column() -> None:
    event = decoded_event(OSLO_WIRE_BODY)

    assert event == Event(
        message_id="5e4a024e-8cf6-4fcb-9eb9-c76c153fe98e",
        collector_timestamp=datetime(2026, 11, 24, 21, 19, 37, 666880),
        event_type="nova.instance",
        publisher_id="datasources.events",
        priority="INFO",
        entity_type="nova.instance",
        entity_id="vm-0",
        action="update",
        payload=event.payload,
    )
    assert json.loads(event.payload) == {
        "vitrage_entity_type": "nova.instance",
        "vitrage_datasource_action": "update",
        "vitrage_sample_date": "2026-11-24 21:19:37.666880",
        "id": "vm-0",
        "name": "test-vm-0",
    }


def test_oslo_v1_unwrapped_notification_uses_its_payload_and_message_id() -> None:
    notification = {
        "message_id": "v1-message",
        "publisher_id": "datasources.events",
        "event_type": "cinder.volume",
        "priority": "INFO",
        "timestamp": "2017-12-13 11:24:02.598358",
        "payload": {"vitrage_entity_type": "cinder.volume", "vitrage_id": "vol-1", "size": 1},
    }

    event = decoded_event(json.dumps(notification).encode())

    assert event.message_id == "v1-message"
    assert event.event_type == "cinder.volume"
    assert event.publisher_id == "datasources.events"
    assert event.entity_id == "vol-1"
    assert event.collector_timestamp == datetime(2017, 12, 13, 11, 24, 2, 598358)
    assert json.loads(event.payload) == notification["payload"]


def test_plain_json_object_is_itself_the_payload() -> None:
    payload = {
        "vitrage_entity_type": "nagios",
        "vitrage_datasource_action": "snapshot",
        "vitrage_sample_date": "2015-12-01T12:46:41Z",
        "id": "host-1",
        "payload": "a key named payload without message_id is just data",
    }
    body = json.dumps(payload).encode()

    event = decoded_event(body)

    assert json.loads(event.payload) == payload
    assert event.message_id == sha256_key(body)
    assert event.event_type == "nagios"  # no notification: the entity type names the event
    assert event.publisher_id is None
    assert event.priority is None
    assert event.entity_type == "nagios"
    assert event.entity_id == "host-1"
    assert event.action == "snapshot"


def test_vitrage_id_names_the_entity_before_id() -> None:
    event = decoded_event(oslo_v2({"vitrage_id": "v-1", "id": "native-1"}, message_id="m"))

    assert event.entity_id == "v-1"


@pytest.mark.parametrize(
    ("payload", "envelope_fields", "column"),
    [
        ({}, {"event_type": "e" * 300}, "event_type"),
        ({}, {"publisher_id": "p" * 256}, "publisher_id"),
        ({}, {"priority": "P" * 33}, "priority"),
        ({"vitrage_entity_type": "t" * 256}, {"event_type": "short"}, "entity_type"),
        ({"id": "x" * 256}, {}, "entity_id"),
        ({"vitrage_id": {"nested": 1}}, {}, "entity_id"),
        ({"vitrage_datasource_action": "a" * 65}, {}, "action"),
    ],
)
def test_a_value_wider_than_its_column_sets_the_message_aside_never_nulled_or_cut(
    payload: dict[str, Any], envelope_fields: dict[str, Any], column: str
) -> None:
    inner = {"message_id": "m", "publisher_id": "p", "event_type": "e", "priority": "INFO", "payload": payload}
    body = json.dumps({"oslo.version": "2.0", "oslo.message": json.dumps({**inner, **envelope_fields})}).encode()

    rejected = decoded_rejection(body)

    assert column in rejected.reason and rejected.body == body


def test_values_exactly_as_wide_as_their_columns_are_kept() -> None:
    widths = envelope.COLUMN_WIDTHS
    inner = {
        "message_id": "m" * widths["message_id"],
        "publisher_id": "p" * widths["publisher_id"],
        "event_type": "e" * widths["event_type"],
        "priority": "P" * widths["priority"],
        "payload": {
            "vitrage_entity_type": "t" * widths["entity_type"],
            "vitrage_id": "i" * widths["entity_id"],
            "vitrage_datasource_action": "a" * widths["action"],
        },
    }
    event = decoded_event(json.dumps({"oslo.version": "2.0", "oslo.message": json.dumps(inner)}).encode())

    assert (event.publisher_id, event.priority, event.action) == (inner["publisher_id"], inner["priority"], "a" * 64)


def test_column_widths_are_the_schema_s() -> None:
    import re
    from pathlib import Path

    sql = (Path(__file__).parents[2] / "sql" / "mysql").glob("0*.sql")
    text = "\n".join(p.read_text() for p in sorted(sql))
    table = text[text.index("CREATE TABLE IF NOT EXISTS drainer_events") :]
    for column, width in envelope.COLUMN_WIDTHS.items():
        assert re.search(rf"\b{column} VARCHAR\({width}\)", table), column


# --- values that must survive exactly ----------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("alarm 🔥 on host 🖥️", id="4-byte-utf8-emoji"),
        pytest.param("before\u0000after", id="nul-in-string"),
        pytest.param(123456789012345678901234567890, id="big-integer"),
        pytest.param(-98765432109876543210, id="big-negative-integer"),
        pytest.param("ünïcödé ≠ ascii", id="non-ascii"),
        pytest.param(0.1, id="float"),
    ],
)
def test_value_survives_into_the_payload_exactly(value: Any) -> None:
    event = decoded_event(oslo_v2({"id": "vm-1", "value": value}, message_id="m"))

    stored = json.loads(event.payload)
    assert stored["value"] == value
    assert type(stored["value"]) is type(value)


def test_big_integer_is_stored_with_every_digit() -> None:
    event = decoded_event(b'{"n": 123456789012345678901234567890}')

    assert "123456789012345678901234567890" in event.payload


def test_emoji_is_stored_as_utf8_text_not_as_escapes() -> None:
    event = decoded_event('{"s": "🔥"}'.encode())

    assert "🔥" in event.payload
    assert "\\ud83d" not in event.payload


def test_deep_but_reasonable_nesting_is_accepted() -> None:
    event = decoded_event(nested(200).encode())

    assert json.loads(event.payload) == json.loads(nested(200))


def test_deep_nesting_inside_an_oslo_envelope_is_accepted() -> None:
    inner = '{"message_id": "deep", "payload": ' + nested(200) + "}"
    body = json.dumps({"oslo.version": "2.0", "oslo.message": inner}).encode()

    assert decoded_event(body).message_id == "deep"


# --- rejections ---------------------------------------------------------------------------------------

TOO_DEEP = nested(100_000)

REJECTED_BODIES = [
    pytest.param(b"", "empty body", id="empty-body"),
    pytest.param(b'{"s": "caf\xe9"}', "not UTF-8", id="latin-1-body"),
    pytest.param(b'{"s": "\xed\xa0\x80"}', "not UTF-8", id="cesu-encoded-surrogate"),
    pytest.param(b"\xff\xfe{\x00}\x00", "not UTF-8", id="utf-16-body"),
    pytest.param(b'{"id": "vm-1",', "body is not valid JSON", id="truncated-json"),
    pytest.param(b"   ", "body is not valid JSON", id="whitespace-only"),
    pytest.param(b"\xef\xbb\xbf{}", "body is not valid JSON", id="utf-8-bom"),
    pytest.param(b"[1, 2, 3]", "JSON list, not an object", id="json-list"),
    pytest.param(b'"just a string"', "JSON str, not an object", id="json-string"),
    pytest.param(b"42", "JSON int, not an object", id="json-number"),
    pytest.param(b"null", "JSON NoneType, not an object", id="json-null"),
    pytest.param(b'{"a": NaN}', "non-standard JSON number NaN", id="nan"),
    pytest.param(b'{"a": Infinity}', "non-standard JSON number Infinity", id="infinity"),
    pytest.param(b'{"a": [-Infinity]}', "non-standard JSON number -Infinity", id="minus-infinity"),
    pytest.param(b'{"a": "\\ud800"}', "lone UTF-16 surrogate", id="lone-surrogate-value"),
    pytest.param(b'{"\\udc00": 1}', "lone UTF-16 surrogate", id="lone-surrogate-key"),
    pytest.param(TOO_DEEP.encode(), "nested too deeply", id="100000-levels-of-objects"),
    pytest.param(b"[" * 100_000 + b"]" * 100_000, "nested too deeply", id="100000-levels-of-lists"),
    pytest.param(
        b'{"oslo.version": "2.0", "oslo.message": "{\\"message_id\\": "}',
        "oslo.message is not valid JSON",
        id="oslo-inner-not-json",
    ),
    pytest.param(
        b'{"oslo.version": "2.0", "oslo.message": "[1, 2]"}',
        "oslo.message is not a JSON object",
        id="oslo-inner-list",
    ),
    pytest.param(
        b'{"oslo.version": "2.0", "oslo.message": "\\"text\\""}',
        "oslo.message is not a JSON object",
        id="oslo-inner-string",
    ),
    pytest.param(
        b'{"oslo.version": "2.0", "oslo.message": {"payload": {}}}',
        "oslo.message is not a JSON string",
        id="oslo-inner-already-decoded",
    ),
    pytest.param(
        json.dumps({"oslo.version": "2.0", "oslo.message": '{"message_id": "m", "payload": {"a": NaN}}'}).encode(),
        "non-standard JSON number NaN",
        id="oslo-inner-nan",
    ),
    pytest.param(
        json.dumps(
            {"oslo.version": "2.0", "oslo.message": '{"message_id": "m", "payload": {"a": "\\ud800"}}'}
        ).encode(),
        "lone UTF-16 surrogate",
        id="oslo-inner-lone-surrogate",
    ),
    pytest.param(
        json.dumps({"oslo.version": "2.0", "oslo.message": '{"payload": ' + TOO_DEEP + "}"}).encode(),
        "oslo.message is nested too deeply",
        id="oslo-inner-100000-levels",
    ),
    pytest.param(oslo_v2([1, 2], message_id="m"), "payload is list, not an object", id="oslo-payload-list"),
    pytest.param(oslo_v2("text", message_id="m"), "payload is str, not an object", id="oslo-payload-string"),
    pytest.param(
        json.dumps({"oslo.version": "2.0", "oslo.message": '{"message_id": "m"}'}).encode(),
        "payload is NoneType, not an object",
        id="oslo-payload-missing",
    ),
    pytest.param(b'{"message_id": "m", "payload": 3}', "payload is int, not an object", id="oslo-v1-payload-number"),
]


@pytest.mark.parametrize(("body", "reason"), REJECTED_BODIES)
def test_undecodable_body_is_rejected_with_its_reason(body: bytes, reason: str) -> None:
    rejected = decoded_rejection(body)

    assert reason in rejected.reason


@pytest.mark.parametrize(("body", "reason"), REJECTED_BODIES)
def test_rejection_keeps_the_body_byte_exact(body: bytes, reason: str) -> None:
    rejected = decoded_rejection(body)

    assert rejected.body == body
    assert rejected.body_size == len(body)
    assert rejected.body_sha256 == hashlib.sha256(body).hexdigest()


def test_rejection_records_where_and_when_the_message_came_from() -> None:
    item = envelope.decode(
        Delivery(tag=3, body=b"not json", exchange="vitrage", routing_key="rk", redelivered=True, properties={}),
        NOW,
    )

    assert isinstance(item, Rejection)
    assert (item.exchange, item.routing_key, item.redelivered, item.received_at) == ("vitrage", "rk", True, NOW)
    assert item.dedupe_key == sha256_key(b"not json")
    assert json.loads(item.properties) == {}


def test_two_different_bad_bodies_sharing_a_message_id_are_both_kept() -> None:
    first = decoded_rejection(b"not json", message_id="amqp-1")
    second = decoded_rejection(b"other garbage", message_id="amqp-1")

    assert first.dedupe_key != second.dedupe_key


def test_the_same_bad_body_with_two_message_ids_is_kept_twice_and_a_redelivery_once() -> None:
    one = decoded_rejection(b"not json", message_id="amqp-1")
    again = decoded_rejection(b"not json", message_id="amqp-1")
    other = decoded_rejection(b"not json", message_id="amqp-2")

    assert one.dedupe_key == again.dedupe_key != other.dedupe_key


def test_a_republished_message_rejected_again_is_a_new_row_not_a_duplicate_of_its_origin() -> None:
    original = decoded_rejection(b"still not json", message_id="amqp-1")
    header = {envelope.REJECTED_ROW_HEADER: 12}
    again = decoded_rejection(b"still not json", message_id="amqp-1", headers=header)
    redelivered = decoded_rejection(b"still not json", message_id="amqp-1", headers=dict(header))
    from_another_row = decoded_rejection(
        b"still not json", message_id="amqp-1", headers={envelope.REJECTED_ROW_HEADER: 13}
    )

    assert again.dedupe_key != original.dedupe_key
    assert again.dedupe_key == redelivered.dedupe_key != from_another_row.dedupe_key


def test_the_same_bad_body_from_two_producers_is_two_rows_and_a_redelivery_one() -> None:
    # What a body alone cannot tell apart: the properties and headers the producer set.
    first = decoded_rejection(b"\xff not utf8", app_id="A", headers={"source": "producer-A"})
    other = decoded_rejection(b"\xff not utf8", app_id="B", headers={"source": "producer-B"})
    # RabbitMQ adds these itself when it redelivers (quorum queues) or dead-letters: same message.
    redelivered = decoded_rejection(
        b"\xff not utf8", app_id="A", headers={"source": "producer-A", "x-delivery-count": 2, "x-death": [{}]}
    )
    assert first.dedupe_key == redelivered.dedupe_key != other.dedupe_key
    compressed = [decoded_rejection(b'{"a": 1}', headers={"compression": c}) for c in ("x-snappy", "5", "zz")]
    assert len({r.dedupe_key for r in compressed}) == 3
    # A message without any properties keeps the plain body digest.
    assert decoded_rejection(b"x").dedupe_key == sha256_key(b"x")


def test_an_oversize_record_does_not_shadow_the_same_bytes_rejected_later() -> None:
    delivery = Delivery(1, b"\xff" * 10, "", "q", False, {})
    parked = envelope.rejection(delivery, "oversize", NOW, keep_body=False)
    kept = envelope.rejection(delivery, "not UTF-8", NOW)

    assert parked.dedupe_key != kept.dedupe_key and kept.body == b"\xff" * 10


@pytest.mark.parametrize("body", [b'{"x": 1e400}', b'{"payload": {"x": -1e999}, "message_id": "m"}'])
def test_a_number_beyond_the_float_range_is_rejected_not_a_crash(body: bytes) -> None:
    item = envelope.decode(Delivery(1, body, "", "q", False, {}), NOW)

    assert isinstance(item, Rejection) and "float range" in item.reason and item.body == body


@pytest.mark.parametrize("key", ["k1 ", " k1", "k\t1", "k\n"])
def test_a_message_id_with_spaces_or_controls_sets_the_message_aside(key: str) -> None:
    body = json.dumps({"message_id": key, "payload": {}}).encode()
    item = envelope.decode(Delivery(1, body, "", "q", False, {}), NOW)

    assert isinstance(item, Rejection) and "cannot be the key" in item.reason and item.body == body


def test_rejection_keeps_properties_json_cannot_hold_in_a_json_form() -> None:
    rejected = decoded_rejection(b"[]", headers={"raw": b"\x00\xff"}, delivery_mode=2)

    assert json.loads(rejected.properties) == {"delivery_mode": 2, "headers": {"raw": {"base64": "AP8="}}}


def test_rejection_without_body_keeps_size_and_digest() -> None:
    body = b"x" * 10
    rejected = envelope.rejection(delivery(body), "oversize", NOW, keep_body=False)

    assert rejected.body is None
    assert rejected.body_size == 10
    assert rejected.body_sha256 == hashlib.sha256(body).hexdigest()


def test_very_long_reason_is_cut_to_fit_its_column() -> None:
    rejected = envelope.rejection(delivery(b"x"), "r" * 5000, NOW)

    assert len(rejected.reason) == 1000


# --- dedupe key ---------------------------------------------------------------------------------------


def test_oslo_message_id_is_the_dedupe_key() -> None:
    event = decoded_event(oslo_v2({"id": "vm-1"}, message_id="oslo-1"), message_id="amqp-1")

    assert event.message_id == "oslo-1"


def test_amqp_message_id_is_the_dedupe_key_without_an_oslo_one() -> None:
    event = decoded_event(b'{"id": "vm-1"}', message_id="amqp-1")

    assert event.message_id == "amqp-1"


def test_body_digest_is_the_dedupe_key_without_any_message_id() -> None:
    body = oslo_v2({"id": "vm-1"})

    assert decoded_event(body).message_id == sha256_key(body)


def test_redelivered_message_gets_the_same_dedupe_key() -> None:
    body = b'{"id": "vm-1", "state": "ACTIVE"}'

    first = decoded_event(body)
    again = envelope.decode(
        Delivery(tag=99, body=body, exchange="vitrage", routing_key="x", redelivered=True, properties={}), NOW
    )

    assert isinstance(again, Event)
    assert again.message_id == first.message_id


@pytest.mark.parametrize("absent", [pytest.param("", id="empty"), pytest.param(None, id="null")])
def test_an_absent_message_id_falls_back_to_the_next_key(absent: Any) -> None:
    body = oslo_v2({"id": "vm-1"}, message_id=absent)

    assert decoded_event(body, message_id="amqp-1").message_id == "amqp-1"
    assert decoded_event(body).message_id == sha256_key(body)
    assert (
        decoded_rejection(b"[]", message_id=absent).dedupe_key == decoded_rejection(b"[]", message_id=absent).dedupe_key
    )


@pytest.mark.parametrize(
    "unusable",
    [
        pytest.param("m" * 256, id="longer-than-the-column"),
        pytest.param("\ud800", id="lone-surrogate"),
        pytest.param("idé-1", id="non-ascii"),
        pytest.param(True, id="boolean"),
    ],
)
def test_a_message_id_that_cannot_be_the_key_sets_the_message_aside(unusable: Any) -> None:
    body = oslo_v2({"id": "vm-1"}, message_id=unusable)

    rejected = decoded_rejection(body, message_id="amqp-1")

    assert "oslo message_id" in rejected.reason and "cannot be the key" in rejected.reason
    assert rejected.body == body
    # Rejected for what it is, with a key that tells it from the same bytes under another message id.
    again = decoded_rejection(b"[]", message_id=unusable)
    assert again.dedupe_key == decoded_rejection(b"[]", message_id=unusable).dedupe_key
    assert again.dedupe_key != decoded_rejection(b"[]", message_id="other").dedupe_key


def test_a_numeric_message_id_is_kept_as_its_digits() -> None:
    assert decoded_event(oslo_v2({"id": "vm-1"}, message_id=12345)).message_id == "12345"


def test_message_id_of_255_characters_is_kept() -> None:
    assert decoded_event(oslo_v2({}, message_id="m" * 255)).message_id == "m" * 255


@pytest.mark.parametrize(
    ("notification", "properties", "expected"),
    [
        ({"message_id": "oslo"}, {"message_id": "amqp"}, "oslo"),
        ({}, {"message_id": "amqp"}, "amqp"),
        ({"message_id": ""}, {}, sha256_key(b"body")),
        ({}, {}, sha256_key(b"body")),
    ],
)
def test_dedupe_key_order(notification: dict[str, Any], properties: dict[str, Any], expected: str) -> None:
    assert envelope.dedupe_key(notification, properties, b"body") == expected


# --- timestamps ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2015-12-01T12:46:41Z", datetime(2015, 12, 1, 12, 46, 41)),
        ("2017-12-13 11:24:02.598358+00:00", datetime(2017, 12, 13, 11, 24, 2, 598358)),
        ("2026-11-24 21:19:37.666880", datetime(2026, 11, 24, 21, 19, 37, 666880)),
        ("2018-10-01 12:50:00.000000+00:00", datetime(2018, 10, 1, 12, 50)),
        ("2017-12-13 13:24:02.598358+02:00", datetime(2017, 12, 13, 11, 24, 2, 598358)),
        ("2017-12-13T00:30:00-05:30", datetime(2017, 12, 13, 6, 0)),
        ("2017-12-31T23:30:00-01:00", datetime(2018, 1, 1, 0, 30)),
        ("  2015-12-01T12:46:41Z\n", datetime(2015, 12, 1, 12, 46, 41)),
        (1700000000, datetime(2023, 11, 14, 22, 13, 20)),
        (1700000000.25, datetime(2023, 11, 14, 22, 13, 20, 250000)),
        (datetime(2020, 1, 1, 12, tzinfo=timezone(timedelta(hours=2))), datetime(2020, 1, 1, 10)),
        (datetime(2020, 1, 1, 12, 0, 0, 1), datetime(2020, 1, 1, 12, 0, 0, 1)),
    ],
)
def test_timestamp_is_parsed_to_naive_utc_with_microseconds(value: Any, expected: datetime) -> None:
    parsed = envelope.parse_timestamp(value)

    assert parsed == expected
    assert parsed is not None and parsed.tzinfo is None


@pytest.mark.parametrize(
    "value",
    [
        "2016-08-2515:23:23.150274+00:00",  # the malformed date in driver_stack_update_dynamic.json
        "not a date",
        "",
        "2015-13-01T00:00:00Z",
        "0001-01-01T00:00:00+01:00",  # before datetime.min once moved to UTC
        "9999-12-31T23:59:59-01:00",  # after datetime.max once moved to UTC
        None,
        True,
        float("nan"),
        float("inf"),
        10**30,
        ["2015-12-01T12:46:41Z"],
        {"date": "2015-12-01T12:46:41Z"},
    ],
)
def test_unparseable_timestamp_gives_none(value: Any) -> None:
    assert envelope.parse_timestamp(value) is None


GOOD = "2015-12-01T12:46:41Z"
MALFORMED = "2016-08-2515:23:23.150274+00:00"


@pytest.mark.parametrize(
    ("payload", "notification", "properties", "expected"),
    [
        pytest.param(
            {"vitrage_sample_date": GOOD, "vitrage_sample_timestamp": "2016-01-01 00:00:00"},
            {"timestamp": "2017-01-01 00:00:00"},
            {"timestamp": 1700000000},
            datetime(2015, 12, 1, 12, 46, 41),
            id="sample-date-first",
        ),
        pytest.param(
            {"vitrage_sample_timestamp": "2016-01-01 00:00:00"},
            {"timestamp": "2017-01-01 00:00:00"},
            {"timestamp": 1700000000},
            datetime(2016, 1, 1),
            id="then-sample-timestamp",
        ),
        pytest.param(
            {"vitrage_sample_date": MALFORMED, "vitrage_sample_timestamp": "2016-01-01 00:00:00"},
            {},
            {},
            datetime(2016, 1, 1),
            id="malformed-sample-date-skipped",
        ),
        pytest.param(
            {"vitrage_sample_date": MALFORMED},
            {"timestamp": "2017-01-01 00:00:00.000001"},
            {"timestamp": 1700000000},
            datetime(2017, 1, 1, 0, 0, 0, 1),
            id="then-envelope-timestamp",
        ),
        pytest.param(
            {"vitrage_sample_date": MALFORMED},
            {"timestamp": "garbage"},
            {"timestamp": 1700000000},
            datetime(2023, 11, 14, 22, 13, 20),
            id="then-amqp-timestamp-property",
        ),
        pytest.param({}, {}, {}, NOW, id="then-now"),
        pytest.param(
            {"vitrage_sample_date": MALFORMED, "vitrage_sample_timestamp": None},
            {"timestamp": ""},
            {"timestamp": "soon"},
            NOW,
            id="all-malformed-then-now",
        ),
    ],
)
def test_collector_timestamp_fallback_chain(
    payload: dict[str, Any], notification: dict[str, Any], properties: dict[str, Any], expected: datetime
) -> None:
    assert envelope.collector_timestamp(payload, notification, properties, NOW) == expected


def test_amqp_timestamp_property_dates_a_plain_json_body() -> None:
    event = decoded_event(b'{"id": "vm-1"}', timestamp=1700000000)

    assert event.collector_timestamp == datetime(2023, 11, 14, 22, 13, 20)


def test_sample_date_out_of_range_in_utc_falls_back_instead_of_crashing() -> None:
    body = oslo_v2({"vitrage_sample_date": "0001-01-01T00:00:00+01:00"}, timestamp="2017-01-01 00:00:00")

    assert decoded_event(body).collector_timestamp == datetime(2017, 1, 1)


def test_message_without_any_date_is_dated_now() -> None:
    assert decoded_event(b'{"id": "vm-1"}').collector_timestamp == NOW


# --- every real Vitrage driver sample -----------------------------------------------------------------

ENVELOPE_TIMESTAMP = "2026-11-24 21:19:37.666931"
FROM_ENVELOPE = datetime(2026, 11, 24, 21, 19, 37, 666931)
DEC_2015 = datetime(2015, 12, 1, 12, 46, 41)
OCT_2018 = datetime(2018, 10, 1, 12, 50)

# The collector_timestamp each sample must get, worked out by hand from its vitrage_sample_date.
EXPECTED_TIMESTAMPS = {
    "driver_aodh_update_dynamic.json": FROM_ENVELOPE,  # no sample date
    "driver_collectd_update_dynamic.json": FROM_ENVELOPE,
    "driver_consistency_update_dynamic.json": DEC_2015,
    "driver_doctor_update_dynamic.json": FROM_ENVELOPE,
    "driver_host_snapshot_dynamic.json": DEC_2015,
    "driver_inst_snapshot_dynamic.json": DEC_2015,
    "driver_inst_update_legacy_dynamic.json": DEC_2015,
    "driver_inst_update_versioned_dynamic.json": DEC_2015,
    "driver_kapacitor_update_dynamic.json": FROM_ENVELOPE,
    "driver_kubernetes_snapshot_dynamic.json": DEC_2015,
    "driver_nagios_snapshot_dynamic.json": DEC_2015,
    "driver_prometheus_update_dynamic.json": FROM_ENVELOPE,
    "driver_stack_snapshot_dynamic.json": datetime(2017, 12, 13, 11, 24, 2, 598358),
    "driver_stack_update_dynamic.json": FROM_ENVELOPE,  # malformed 2016-08-2515:23:23.150274+00:00
    "driver_static_snapshot_dynamic.json": DEC_2015,
    "driver_trove_cluster_snapshot_dynamic.json": OCT_2018,
    "driver_trove_instance_snapshot_dynamic.json": OCT_2018,
    "driver_volume_snapshot_dynamic.json": DEC_2015,
    "driver_volume_update_dynamic.json": DEC_2015,
    "driver_zabbix_snapshot_dynamic.json": DEC_2015,
    "driver_zone_snapshot_dynamic.json": DEC_2015,
}

SAMPLES = sorted(FIXTURES.glob("*.json"))


def test_every_driver_sample_has_an_expected_timestamp() -> None:
    assert SAMPLES, f"no samples found in {FIXTURES}"
    assert {p.name for p in SAMPLES} == set(EXPECTED_TIMESTAMPS)


@pytest.mark.parametrize("sample", SAMPLES, ids=[p.stem for p in SAMPLES])
def test_driver_sample_in_an_oslo_envelope_decodes_to_an_event(sample: Path) -> None:
    payload = json.loads(sample.read_text(encoding="utf-8"))
    body = oslo_v2(payload, message_id=f"msg-{sample.stem}", event_type="x", timestamp=ENVELOPE_TIMESTAMP)

    event = envelope.decode(delivery(body), NOW)

    assert isinstance(event, Event)
    assert event.message_id == f"msg-{sample.stem}"
    assert json.loads(event.payload) == payload
    assert event.collector_timestamp == EXPECTED_TIMESTAMPS[sample.name]


def test_decoding_is_pure_and_repeatable() -> None:
    first = envelope.decode(delivery(OSLO_WIRE_BODY), NOW)

    assert envelope.decode(delivery(OSLO_WIRE_BODY), NOW) == first
