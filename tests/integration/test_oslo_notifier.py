"""Round trip through a real oslo.messaging Notifier set up the way Vitrage's collector sets it up."""

from __future__ import annotations

import json
import uuid
from datetime import datetime

import pytest

from tests.conftest import AMQP_URL, _require, fixture_payloads, require_module, run_cli

pytestmark = pytest.mark.integration


@pytest.fixture
def notifier_topic():
    _require(AMQP_URL, 5672, "RabbitMQ")
    topic = f"vitrage_persistor_test_{uuid.uuid4().hex[:8]}"
    yield topic
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    conn.channel().queue_delete(f"{topic}.info")
    conn.close()


def test_oslo_notifier_events_are_stored_in_publish_order_with_exact_timestamps(notifier_topic, db):
    oslo_messaging = require_module("oslo_messaging")
    from oslo_config import cfg

    conf = cfg.ConfigOpts()
    conf([], project="vitrage-drainer-test")
    oslo_messaging.set_transport_defaults("vitrage")  # control exchange "vitrage", as Vitrage does
    rabbit_url = AMQP_URL.replace("amqp://", "rabbit://").replace("%2F", "")
    transport = oslo_messaging.get_notification_transport(conf, url=rabbit_url)
    notifier = oslo_messaging.Notifier(
        transport, driver="messagingv2", publisher_id="datasources.events", topics=[notifier_topic]
    )
    payloads = []
    for i, (_name, payload) in enumerate(sorted(fixture_payloads().items()) * 3):
        payload = dict(payload, vitrage_sample_date=f"2026-11-24 21:19:{i % 60:02d}.{i:06d}", seq=i)
        payloads.append(payload)
        notifier.info({}, payload.get("vitrage_entity_type", "unknown"), payload)
    transport.cleanup()

    assert run_cli("migrate", "--db-url", db.url).code == 0
    result = run_cli(
        "drain",
        "--db-url",
        db.url,
        "--amqp-url",
        AMQP_URL,
        "--topic",
        notifier_topic,
        "--until-empty",
        "--batch-size",
        "20",
    )
    assert result.code == 0, result.stderr
    assert result.summary["queue"] == f"{notifier_topic}.info"
    rows = db.rows("SELECT id, collector_timestamp, event_type, publisher_id, payload FROM drainer_events ORDER BY id")
    assert [json.loads(r.payload) for r in rows] == payloads  # equal payloads, id order = publish order
    for row, payload in zip(rows, payloads, strict=True):
        ts = row.collector_timestamp
        ts = ts if isinstance(ts, datetime) else datetime.fromisoformat(ts)
        assert ts == datetime.fromisoformat(payload["vitrage_sample_date"])
        assert row.publisher_id == "datasources.events"
