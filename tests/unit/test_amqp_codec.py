"""AMQP 0-9-1 content headers, hand-built byte by byte, decoded faithfully and re-encoded exactly."""

from __future__ import annotations

import base64
import json
import struct
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from drainer import amqp_codec, envelope
from drainer.broker import _decode_content_headers_faithfully, parked_properties
from drainer.model import Delivery
from tests import amqp_raw as raw

NOW = datetime(2026, 11, 25, 12, 0, 0)

# (field type, encoded value, natural value): every AMQP 0-9-1 field type, at its edges.
FIELD_TYPES = [
    ("t", raw.t(True), True),
    ("t", raw.t(False), False),
    ("b", raw.b(-128), -128),
    ("B", raw.B(255), 255),
    ("s", raw.s(-32768), -32768),
    ("U", b"U" + struct.pack(">h", -2), -2),
    ("u", raw.u(65535), 65535),
    ("I", raw.I(-(2**31)), -(2**31)),
    ("i", raw.i(2**32 - 1), 2**32 - 1),
    ("l", raw.l(-(2**63)), -(2**63)),
    ("L", b"L" + struct.pack(">q", 2**63 - 1), 2**63 - 1),
    ("f", raw.f(0.75), 0.75),
    ("d", raw.d(0.75), 0.75),
    ("d", raw.d(-1e300), -1e300),
    ("D", raw.D(2, 12345), Decimal("123.45")),
    ("D", raw.D(0, -7), Decimal("-7")),
    ("S", raw.S("héllo"), "héllo"),
    ("S", raw.S(b"\xff\xfe"), b"\xff\xfe"),  # not UTF-8: the bytes, not a replacement
    ("x", raw.x(b"\x00\x01\xff"), b"\x00\x01\xff"),
    ("T", raw.T(1772000000000), 1772000000000),  # a millisecond epoch, what Date.now() writes
    ("T", raw.T(2**64 - 1), 2**64 - 1),
    ("T", raw.T(1772000000), 1772000000),
    ("F", raw.F(("a", raw.I(1)), ("b", raw.F(("c", raw.d(0.5))))), {"a": 1, "b": {"c": 0.5}}),
    ("A", raw.A(raw.I(1), raw.S("two"), raw.d(0.25), raw.A(raw.V)), [1, "two", 0.25, [None]]),
    ("V", raw.V, None),
]


@pytest.mark.parametrize(
    ("kind", "encoded", "expected"), FIELD_TYPES, ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(FIELD_TYPES)]
)
def test_every_field_type_decodes_to_the_value_sent(kind: str, encoded: bytes, expected: Any) -> None:
    value, end = amqp_codec.decode_value(encoded, 0)
    assert value == expected and type(value) is type(expected)
    assert end == len(encoded)


@pytest.mark.parametrize(
    ("kind", "encoded", "expected"), FIELD_TYPES, ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(FIELD_TYPES)]
)
def test_every_field_type_in_a_header_frame_reaches_the_delivery(kind: str, encoded: bytes, expected: Any) -> None:
    props = raw.properties(
        headers=raw.table(("h", encoded)), message_id=raw.shortstr("m-1"), timestamp=struct.pack(">Q", 7)
    )
    header = _read_header_frame(props)
    assert header.properties.headers == {"h": expected}
    assert header.properties.message_id == "m-1" and header.properties.timestamp == 7
    assert header.properties.drainer_raw == props and header.properties.drainer_error is None


def test_all_basic_properties_decode_with_their_types() -> None:
    props = raw.properties(
        content_type=raw.shortstr("application/json"),
        content_encoding=raw.shortstr("utf-8"),
        headers=raw.table(("x", raw.S("y"))),
        delivery_mode=b"\x02",
        priority=b"\x09",
        correlation_id=raw.shortstr("c"),
        reply_to=raw.shortstr("r"),
        expiration=raw.shortstr("60000"),
        message_id=raw.shortstr("m"),
        timestamp=struct.pack(">Q", 1772000000000),
        type=raw.shortstr("t"),
        user_id=raw.shortstr("guest"),
        app_id=raw.shortstr("a"),
        cluster_id=raw.shortstr("k"),
    )
    assert amqp_codec.decode_properties(props) == {
        "content_type": "application/json",
        "content_encoding": "utf-8",
        "headers": {"x": "y"},
        "delivery_mode": 2,
        "priority": 9,
        "correlation_id": "c",
        "reply_to": "r",
        "expiration": "60000",
        "message_id": "m",
        "timestamp": 1772000000000,
        "type": "t",
        "user_id": "guest",
        "app_id": "a",
        "cluster_id": "k",
    }


@pytest.mark.parametrize(
    ("props", "words"),
    [
        (raw.properties(headers=raw.table(("k", b"Z\x00"))), "unknown field type 'Z'"),
        (raw.properties(headers=raw.table(("k", b"S\x00\x00\x00\x09abc"))), "runs past the end"),
        (raw.properties(headers=b"\x00\x00\x00\x09" + b"\x01k" + b"V"), "runs past the end"),
        (raw.properties(headers=raw.table(("k", raw.A(b"I\x00")))), "runs past"),
        (raw.properties(message_id=b"\x05ab"), "property message_id"),
        (b"\x80", "property flags"),
    ],
)
def test_undecodable_properties_name_what_and_where(props: bytes, words: str) -> None:
    with pytest.raises(amqp_codec.FieldDecodeError, match=words):
        amqp_codec.decode_properties(props)


def test_undecodable_properties_reach_the_delivery_as_an_error_not_a_dropped_connection() -> None:
    props = raw.properties(headers=raw.table(("k", b"Z\x00")), message_id=raw.shortstr("m"))
    header = _read_header_frame(props)
    assert header.properties.drainer_raw == props
    assert "unknown field type 'Z'" in header.properties.drainer_error
    delivery = Delivery(1, b'{"a": 1}', "ex", "rk", False, {}, props, header.properties.drainer_error)
    rejected = envelope.decode(delivery, NOW)
    assert rejected.reason.startswith("AMQP properties cannot be decoded: ")
    assert rejected.body == b'{"a": 1}'
    assert base64.b64decode(json.loads(rejected.properties)["x-drainer-raw-properties"]) == props


def test_a_parked_copy_keeps_every_header_byte_for_byte_and_adds_its_own() -> None:
    entries = [(f"h{i}", encoded) for i, (_, encoded, _) in enumerate(FIELD_TYPES)]
    entries.append((b"\xffkey", raw.S("non-UTF-8 name")))
    entries.append(("h0", raw.S("a repeated name")))
    props = raw.properties(
        content_type=raw.shortstr("application/json"),
        headers=raw.table(*entries),
        delivery_mode=b"\x01",
        expiration=raw.shortstr("60000"),
        message_id=raw.shortstr("m"),
        timestamp=struct.pack(">Q", 1772000000000),
        user_id=raw.shortstr("producer"),
    )
    delivery = Delivery(1, b"x", "vitrage", "vitrage_persistor.info", False, amqp_codec.decode_properties(props), props)
    added = [
        ("x-drainer-reason", raw.S("too big")),
        ("x-drainer-sha256", raw.S("abc")),
        ("x-original-exchange", raw.S("vitrage")),
        ("x-original-routing-key", raw.S("vitrage_persistor.info")),
    ]
    expected = raw.properties(
        content_type=raw.shortstr("application/json"),
        headers=raw.table(
            *entries,
            ("x-original-expiration", raw.S("60000")),
            ("x-original-user-id", raw.S("producer")),
            *added,
        ),
        delivery_mode=b"\x02",
        message_id=raw.shortstr("m"),
        timestamp=struct.pack(">Q", 1772000000000),
    )
    assert parked_properties(delivery, "too big", "abc") == expected


def test_a_parked_copy_of_undecodable_properties_carries_their_bytes() -> None:
    props = raw.properties(headers=raw.table(("k", b"Z\x00")))
    delivery = Delivery(1, b"x", "", "q", False, {}, props, "unknown field type 'Z'")
    decoded = amqp_codec.decode_properties(parked_properties(delivery, "r", "d"))
    assert base64.b64decode(decoded["headers"]["x-drainer-raw-properties"]) == props
    assert decoded["delivery_mode"] == 2 and decoded["headers"]["x-drainer-reason"] == "r"


class _FakeImpl:
    """Stands in for pika's SelectConnection: a frame buffer and pika's own frame reader."""

    def __init__(self, data: bytes) -> None:
        from pika import frame

        self._frame_buffer = data
        self._read_frame = lambda: frame.decode_frame(self._frame_buffer)


class _FakeConnection:
    def __init__(self, data: bytes) -> None:
        self._impl = _FakeImpl(data)


def _read_header_frame(props: bytes) -> Any:
    payload = struct.pack(">HHQ", 60, 0, 42) + props
    data = struct.pack(">BHI", 2, 1, len(payload)) + payload + b"\xce"
    conn = _FakeConnection(data)
    _decode_content_headers_faithfully(conn)  # type: ignore[arg-type]
    conn._impl._frame_buffer = data[:10]
    assert conn._impl._read_frame() == (0, None)  # a partial frame waits for the rest
    conn._impl._frame_buffer = data
    consumed, header = conn._impl._read_frame()
    assert consumed == len(data) and header.body_size == 42 and header.channel_number == 1
    return header


def test_method_and_body_frames_stay_with_pika() -> None:
    body = struct.pack(">BHI", 3, 1, 3) + b"abc" + b"\xce"
    conn = _FakeConnection(body)
    _decode_content_headers_faithfully(conn)  # type: ignore[arg-type]
    consumed, frame = conn._impl._read_frame()
    assert consumed == len(body) and frame.fragment == b"abc"
