"""Demo: publish Vitrage's sample driver events the way Vitrage does, migrate, drain, show the rows.

    python tests/demo.py            # into demo.sqlite, or into $DRAINER_DB_URL when set

Publishes with a real oslo.messaging Notifier (messagingv2, exchange `vitrage`, topic
`vitrage_persistor`, queue `vitrage_persistor.info`) to the RabbitMQ at $DRAINER_AMQP_URL
(default the local guest account).
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))

from drainer.cli import main  # noqa: E402


def publish(amqp_url: str, topic: str) -> int:
    import warnings

    warnings.filterwarnings("ignore")  # oslo's eventlet deprecation notice is not the demo's concern
    import oslo_messaging
    from oslo_config import cfg

    conf = cfg.ConfigOpts()
    conf([], project="vitrage-drainer-demo")
    oslo_messaging.set_transport_defaults("vitrage")
    transport = oslo_messaging.get_notification_transport(
        conf, url=amqp_url.replace("amqps://", "rabbit://").replace("amqp://", "rabbit://").replace("%2F", "")
    )
    notifier = oslo_messaging.Notifier(
        transport, driver="messagingv2", publisher_id="datasources.events", topics=[topic]
    )
    count = 0
    for path in sorted((HERE / "fixtures").glob("*.json")):
        payload = json.loads(path.read_text())
        payload.setdefault("vitrage_sample_date", datetime.now(UTC).isoformat())
        payload["demo_run"] = uuid.uuid4().hex[:8]
        notifier.info({}, payload.get("vitrage_entity_type", "unknown"), payload)
        count += 1
    transport.cleanup()
    return count


def show(db_url: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT id, collector_timestamp, event_type, entity_id, action, length(payload) AS bytes "
                "FROM drainer_events ORDER BY id DESC LIMIT 25"
            )
        ).all()
        total = conn.execute(text("SELECT COUNT(*) FROM drainer_events")).scalar_one()
    engine.dispose()
    print(f"\n{'id':>5}  {'collector_timestamp':<26}  {'event_type':<24}  {'action':<9}  {'bytes':>5}  entity_id")
    for r in reversed(rows):
        print(
            f"{r.id:>5}  {str(r.collector_timestamp):<26}  {str(r.event_type):<24}  {str(r.action):<9}  "
            f"{r.bytes:>5}  {str(r.entity_id)[:40]}"
        )
    print(f"\n{total} events stored in {db_url.split('://')[0]}")


def run() -> int:
    amqp_url = os.environ.get("DRAINER_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
    db_url = os.environ.get("DRAINER_DB_URL", f"sqlite:///{Path.cwd() / 'demo.sqlite'}")
    topic = os.environ.get("DRAINER_TOPIC", "vitrage_persistor")
    print(f"published {publish(amqp_url, topic)} Vitrage driver events on topic {topic}")
    env = dict(os.environ, DRAINER_DB_URL=db_url, DRAINER_AMQP_URL=amqp_url, DRAINER_LOG_FORMAT="text")
    for argv in (["migrate"], ["drain", "--topic", topic, "--until-empty"]):
        code = main(argv, env)
        if code != 0:
            return code
    show(db_url)
    return 0


if __name__ == "__main__":
    sys.exit(run())
