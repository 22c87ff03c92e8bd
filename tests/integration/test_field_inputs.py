"""Inputs from the field: what Java/Node producers, kombu's compression and RabbitMQ itself put on
the wire, against the real broker and MariaDB. Hand-built frames where no client can produce them."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Iterator

import pytest

from drainer import amqp_codec
from drainer.broker import Broker
from drainer.config import Settings
from tests import amqp_raw as raw
from tests.conftest import AMQP_URL, Database, Rabbit, Result, oslo_v2, require_module, run_cli

pytestmark = pytest.mark.integration

QUORUM_LIMIT_2 = {"x-queue-type": "quorum", "x-delivery-limit": 2}
TS_MS = 1772000000000  # Date.now() in a timestamp header


@pytest.fixture
def drain(rabbit: Rabbit, mysql_db: Database) -> Callable[..., Result]:
    assert run_cli("migrate", "--db-url", mysql_db.url).code == 0

    def run(*args: str) -> Result:
        command, rest = (args[0], args[1:]) if args and not args[0].startswith("-") else ("drain", args)
        base = ["--db-url", mysql_db.url]
        if command in ("drain", "status"):
            base += ["--amqp-url", rabbit.url, "--queue", rabbit.queue]
        return run_cli(command, *base, *rest)

    return run


def publish_raw(queue: str, body: bytes, props: bytes) -> None:
    with raw.RawPublisher(AMQP_URL) as publisher:
        publisher.publish(queue, body, props)


def fetch_faithfully(queue: str) -> list:
    """Every message of `queue`, read with the drainer's own decoding (stock pika cannot)."""
    broker = Broker.connect(Settings(amqp_urls=(AMQP_URL,)))
    try:
        deliveries, _ = broker.fetch_batch(queue, 1000, 10**9, 10, lambda: False)
        if deliveries:
            broker.ack_through(deliveries[-1].tag)
        return deliveries
    finally:
        broker.close()


def stored_payload_ids(db: Database) -> list[int]:
    return [json.loads(r.payload)["seq"] for r in db.rows("SELECT payload FROM drainer_events ORDER BY id")]


@pytest.mark.parametrize("rabbit", [None, QUORUM_LIMIT_2], ids=["classic", "quorum-delivery-limit-2"], indirect=True)
def test_a_millisecond_timestamp_header_does_not_stop_the_queue(rabbit: Rabbit, mysql_db: Database, drain) -> None:
    rabbit.publish([oslo_v2({"seq": 1})])
    publish_raw(
        rabbit.queue,
        oslo_v2({"seq": 2}),
        raw.properties(headers=raw.table(("sent_at", raw.T(TS_MS))), delivery_mode=b"\x02"),
    )
    rabbit.publish([oslo_v2({"seq": 3})])

    result = drain("--batch-size", "10")

    assert result.code == 0, result.stderr
    assert (result.summary["fetched"], result.summary["stored"], result.summary["returned"]) == (3, 3, 0)
    assert stored_payload_ids(mysql_db) == [1, 2, 3]
    assert rabbit.depth() == 0


def test_a_double_header_is_recorded_exactly_when_rejected_and_when_parked(
    rabbit: Rabbit, mysql_db: Database, drain
) -> None:
    headers = raw.table(("ratio", raw.d(0.75)), ("sent_at", raw.T(TS_MS)))
    props = raw.properties(headers=headers, message_id=raw.shortstr("m-1"), delivery_mode=b"\x02")
    not_utf8 = b'{"payload": "\xff\xfe"}'
    big = b"x" * (5 * 1024 * 1024)
    publish_raw(rabbit.queue, not_utf8, props)
    publish_raw(rabbit.queue, big, props)

    result = drain()

    assert result.code == 0, result.stderr
    assert result.summary["oversize"] == 1  # its record counts among "rejected" too
    rejected = mysql_db.rows("SELECT body, properties FROM drainer_rejected_messages WHERE body IS NOT NULL")
    assert rejected[0].body == not_utf8
    recorded = json.loads(rejected[0].properties)
    assert recorded["headers"] == {"ratio": 0.75, "sent_at": TS_MS}
    assert base64.b64decode(recorded["x-drainer-raw-properties"]) == props
    (parked,) = fetch_faithfully(rabbit.queue + ".oversize")
    assert parked.body == big
    assert parked.properties["headers"]["ratio"] == 0.75 and parked.properties["headers"]["sent_at"] == TS_MS
    assert b"\x05ratio" + raw.d(0.75) + b"\x07sent_at" + raw.T(TS_MS) in parked.raw_properties  # same types


# The field types RabbitMQ accepts in a published header (it refuses the spec's U and L: 541).
ACCEPTED_BY_RABBITMQ = [
    ("bool", raw.t(True)),
    ("i8", raw.b(-128)),
    ("u8", raw.B(255)),
    ("i16", raw.s(-32768)),
    ("u16", raw.u(65535)),
    ("i32", raw.I(-(2**31))),
    ("u32", raw.i(2**32 - 1)),
    ("i64", raw.l(-(2**63))),
    ("float", raw.f(0.75)),
    ("double", raw.d(0.1)),
    ("decimal", raw.D(2, 12345)),
    ("text", raw.S("héllo")),
    ("bytes", raw.x(b"\x00\xff")),
    ("ts-ms", raw.T(TS_MS)),
    ("ts-max", raw.T(2**64 - 1)),
    ("table", raw.F(("a", raw.d(0.5)), ("b", raw.A(raw.I(1), raw.V)))),
    ("array", raw.A(raw.S("a"), raw.d(2.5), raw.T(1))),
    ("void", raw.V),
]


def test_every_field_type_survives_the_oversize_copy_byte_for_byte(rabbit: Rabbit, drain) -> None:
    entries = raw.table(*ACCEPTED_BY_RABBITMQ)
    publish_raw(rabbit.queue, b"y" * 4096, raw.properties(headers=entries))

    result = drain("--max-message-bytes", "1024")

    assert result.code == 0 and result.summary["oversize"] == 1, result.stderr
    (parked,) = fetch_faithfully(rabbit.queue + ".oversize")
    table_bytes = entries[4:]  # the entries, without the table's length
    assert table_bytes in parked.raw_properties  # every original entry, in order, unchanged
    headers = amqp_codec.decode_properties(parked.raw_properties)["headers"]
    assert headers["double"] == 0.1 and headers["ts-max"] == 2**64 - 1 and headers["x-drainer-reason"]


KOMBU_COMPRESSIONS = ["gzip", "zlib", "bzip2", "lzma", "xz", "zstd", "brotli"]


@pytest.fixture
def notifier_topic() -> Iterator[str]:
    topic = f"vitrage_persistor_test_{uuid.uuid4().hex[:8]}"
    yield topic
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    conn.channel().queue_delete(f"{topic}.info")
    conn.close()


@pytest.mark.parametrize("method", KOMBU_COMPRESSIONS)
def test_a_notifier_with_kombu_compression_is_stored_like_any_other(
    method: str, notifier_topic: str, mysql_db: Database, tmp_path
) -> None:
    oslo_messaging = require_module("oslo_messaging")
    from kombu import compression as kombu_compression
    from oslo_config import cfg

    if kombu_compression._aliases.get(method, method) not in kombu_compression.encoders():
        pytest.skip(f"kombu has no {method} encoder here")
    conf_file = tmp_path / "vitrage.conf"
    conf_file.write_text(f"[oslo_messaging_rabbit]\nkombu_compression = {method}\n")
    conf = cfg.ConfigOpts()
    conf(["--config-file", str(conf_file)], project="vitrage-drainer-test")
    oslo_messaging.set_transport_defaults("vitrage")
    url = AMQP_URL.replace("amqp://", "rabbit://").replace("%2F", "")
    transport = oslo_messaging.get_notification_transport(conf, url=url)
    notifier = oslo_messaging.Notifier(
        transport, driver="messagingv2", publisher_id="datasources.events", topics=[notifier_topic]
    )
    payloads = [{"seq": i, "vitrage_entity_type": "nova.host", "text": "é" * 200} for i in range(3)]
    for payload in payloads:
        notifier.info({}, "nova.host", payload)
    transport.cleanup()
    raw_copy = fetch_faithfully_peek(f"{notifier_topic}.info")
    assert raw_copy.properties["headers"]["compression"] == kombu_compression._aliases.get(method, method)

    assert run_cli("migrate", "--db-url", mysql_db.url).code == 0
    result = run_cli("drain", "--db-url", mysql_db.url, "--amqp-url", AMQP_URL, "--topic", notifier_topic)

    assert result.code == 0, result.stderr
    assert (result.summary["stored"], result.summary["rejected"]) == (3, 0)
    assert [json.loads(r.payload) for r in mysql_db.rows("SELECT payload FROM drainer_events ORDER BY id")] == payloads


def fetch_faithfully_peek(queue: str):
    """The first message of `queue`, given back to it."""
    broker = Broker.connect(Settings(amqp_urls=(AMQP_URL,)))
    try:
        deliveries, _ = broker.fetch_batch(queue, 1, 10**9, 10, lambda: False)
        broker.return_unacked()
        return deliveries[0]
    finally:
        broker.close()


@pytest.mark.parametrize(
    ("method", "body", "words"),
    [
        ("application/x-snappy", b"\x00\x01snappy", "'application/x-snappy', which kombu does not define"),
        ("application/x-gzip", b"not zlib at all", "'application/x-gzip' cannot be decompressed"),
        ("application/x-bz2", b"BZh9 truncated", "'application/x-bz2' cannot be decompressed"),
    ],
)
def test_an_unknown_or_corrupt_compression_is_kept_byte_exact_with_its_name(
    method: str, body: bytes, words: str, rabbit: Rabbit, mysql_db: Database, drain
) -> None:
    rabbit.publish([body, oslo_v2({"seq": 9})], [{"headers": {"compression": method}}, {}])

    result = drain()

    assert result.code == 0 and result.summary["rejected"] == 1 and result.summary["stored"] == 1, result.stderr
    (row,) = mysql_db.rows("SELECT body, reason FROM drainer_rejected_messages")
    assert row.body == body and words in row.reason


def test_a_decompression_bomb_is_rejected_not_expanded(rabbit: Rabbit, mysql_db: Database, drain) -> None:
    import zlib

    bomb = zlib.compress(b"{" + b" " * (200 * 1024 * 1024) + b"}", 9)  # 200 MiB of JSON in about 200 KB
    rabbit.publish([bomb], [{"headers": {"compression": "application/x-gzip"}}])

    result = drain("--max-message-bytes", "1048576")

    assert result.code == 0 and result.summary["rejected"] == 1, result.stderr
    (row,) = mysql_db.rows("SELECT body, reason FROM drainer_rejected_messages")
    assert row.body == bomb and "exceeds" in row.reason


@pytest.mark.parametrize(
    ("field", "value"),
    [("event_type", "e" * 300), ("publisher_id", "p" * 300), ("message_id", "m" * 300), ("priority", "P" * 40)],
)
def test_an_envelope_value_wider_than_its_column_is_set_aside_not_nulled(
    field: str, value: str, rabbit: Rabbit, mysql_db: Database, drain
) -> None:
    inner = {"message_id": "m-1", "publisher_id": "datasources.events", "event_type": "nova.instance"}
    inner |= {"priority": "INFO", "payload": {"seq": 1}, field: value}
    body = json.dumps({"oslo.version": "2.0", "oslo.message": json.dumps(inner)}).encode()
    rabbit.publish([body, oslo_v2({"seq": 2})])

    result = drain()

    assert result.code == 0 and (result.summary["stored"], result.summary["rejected"]) == (1, 1), result.stderr
    (row,) = mysql_db.rows("SELECT body, reason FROM drainer_rejected_messages")
    assert row.body == body and field in row.reason
    assert [json.loads(r.payload) for r in mysql_db.rows("SELECT payload FROM drainer_events")] == [{"seq": 2}]


def test_a_body_under_the_limit_whose_row_is_over_it_is_parked_and_its_neighbour_stored(
    rabbit: Rabbit, mysql_db: Database, drain
) -> None:
    count = 7_300_000 // 5
    body = b'{"v":[' + b",".join([b"1e15"] * count) + b"]}"  # 7.3 MB; stored as 1000000000000000.0: 27 MB
    rabbit.publish([body, oslo_v2({"seq": 2})])

    result = drain("--max-message-bytes", "8388608")

    assert result.code == 0, result.stderr
    assert (result.summary["oversize"], result.summary["stored"]) == (1, 1)
    assert [json.loads(r.payload) for r in mysql_db.rows("SELECT payload FROM drainer_events")] == [{"seq": 2}]
    (reason,) = mysql_db.rows("SELECT reason FROM drainer_rejected_messages")
    assert "its row would be" in reason.reason
    (parked,) = fetch_faithfully(rabbit.queue + ".oversize")
    assert parked.body == body


def test_the_same_bad_bytes_from_two_producers_are_two_rejected_rows_each_with_its_properties(rabbit, drain, mysql_db):
    # A body is not a message: two producers (or two compression headers) sending the same bad
    # bytes are two messages, and each one's properties are the evidence.
    body = b"\xff not utf8"
    rabbit.publish(
        [body, body, body, body],
        [
            {"app_id": "A", "headers": {"source": "producer-A"}},
            {"app_id": "B", "headers": {"source": "producer-B"}},
            {"headers": {"compression": "x-snappy"}},
            {"headers": {"compression": "x-unheard-of"}},
        ],
    )
    result = drain()
    assert result.code == 0, result.stderr
    assert result.summary["rejected"] == 4 and result.summary["duplicates"] == 0
    rows = mysql_db.rows("SELECT body, properties FROM drainer_rejected_messages ORDER BY id")
    assert [bytes(r.body) for r in rows] == [body] * 4
    props = [json.loads(r.properties) for r in rows]
    assert [p.get("app_id") for p in props[:2]] == ["A", "B"]
    assert [p["headers"].get("compression") for p in props[2:]] == ["x-snappy", "x-unheard-of"]
    assert rabbit.depth() == 0
