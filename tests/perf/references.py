"""The benchmark's references, each run as its own process so it is timed (and its peak RSS read)
exactly like `python -m drainer drain`: interpreter start-up, imports, connecting, the work, exit.

    python -m tests.perf.references raw-get  AMQP_URL QUEUE COUNT [--hold] [--drainer-imports]
    python -m tests.perf.references persistor AMQP_URL DB_URL TOPIC COUNT

raw-get: the ceiling of any basic_get drainer. Connect, basic_get COUNT messages unacked, one
multiple ack, close; no decoding, no database. `--hold` keeps the bodies (what a batch must hold,
the memory reference); `--drainer-imports` also imports the libraries the drainer imports, so the
interpreter's own footprint is the same on both sides.

persistor: Vitrage's first persistor, rebuilt: an oslo.messaging notification listener (threading
executor, as vitrage/messaging.py set it; oslo's defaults otherwise: one ack per message after the
endpoint returns) storing each event with one ORM insert and commit. COUNT 0 only declares its queue
and table. Prints {"stored": N, "listener_s": seconds from listener start to the last commit} on
stdout, so the benchmark can give the in-process figure beside the whole-process one.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

DRAINER_IMPORTS = "sqlalchemy pymysql tenacity pythonjsonlogger.json".split()


def raw_get(url: str, queue: str, count: int, hold: bool, drainer_imports: bool) -> int:
    import importlib

    import pika

    if drainer_imports:
        for name in DRAINER_IMPORTS:
            importlib.import_module(name)
    conn = pika.BlockingConnection(pika.URLParameters(url))
    channel = conn.channel()
    kept: list[bytes] = []
    last_tag = 0
    for _ in range(count):
        method, _props, body = channel.basic_get(queue, auto_ack=False)
        if method is None:
            print(f"the queue was empty after {len(kept) if hold else last_tag} messages", file=sys.stderr)
            return 1
        last_tag = method.delivery_tag
        if hold:
            kept.append(body)
    if last_tag:
        channel.basic_ack(last_tag, multiple=True)
    conn.process_data_events(0)
    conn.close()
    print(json.dumps({"fetched": count, "held_bytes": sum(map(len, kept))}))
    return 0


class _PersistorEndpoint:
    """VitragePersistorEndpoint's shape: info() builds one ORM row and commits it in its own session."""

    def __init__(self, model: Any, sessions: Any, expected: int) -> None:
        self.model = model
        self.sessions = sessions
        self.expected = expected
        self.stored = 0
        self.lock = threading.Lock()
        self.done = threading.Event()
        if expected == 0:
            self.done.set()

    def info(self, ctxt: Any, publisher_id: str, event_type: str, payload: Any, metadata: Any) -> None:
        # Upstream parsed the payload's vitrage_sample_date with dateutil; some samples lack it, so
        # the envelope's timestamp stands in (the cheaper parse favours the baseline, if anything).
        row = self.model(
            message_id=metadata["message_id"],
            collector_timestamp=datetime.fromisoformat(metadata["timestamp"]),
            event_type=event_type,
            publisher_id=publisher_id,
            payload=json.dumps(payload),  # upstream's JSONEncodedDict column type
        )
        with self.sessions() as session:
            session.add(row)
            session.commit()
        with self.lock:
            self.stored += 1
            if self.stored >= self.expected:
                self.done.set()


def persistor(url: str, db_url: str, topic: str, count: int) -> int:
    import oslo_messaging
    from oslo_config import cfg
    from sqlalchemy import BigInteger, Column, DateTime, String, Text, create_engine
    from sqlalchemy.orm import declarative_base, sessionmaker

    base: Any = declarative_base()

    class PersistedEvent(base):  # type: ignore[misc,valid-type]
        # The 2017 model (id, collector_timestamp, JSON payload), plus the envelope's fields.
        __tablename__ = "persistor_events"
        id = Column(BigInteger, primary_key=True, autoincrement=True)
        message_id = Column(String(255), unique=True, nullable=False)
        collector_timestamp = Column(DateTime(), index=True, nullable=False)
        event_type = Column(String(255))
        publisher_id = Column(String(255))
        payload = Column(Text(), nullable=False)

    engine = create_engine(db_url)
    base.metadata.create_all(engine)
    conf = cfg.ConfigOpts()
    conf([], project="vitrage-drainer-bench")
    rabbit_url = url.replace("amqp://", "rabbit://").replace("%2F", "")  # the default vhost, in oslo terms
    transport = oslo_messaging.get_notification_transport(conf, url=rabbit_url)
    target = oslo_messaging.Target(topic=topic, exchange=topic)
    endpoint = _PersistorEndpoint(PersistedEvent, sessionmaker(engine), count)
    listener = oslo_messaging.get_notification_listener(transport, [target], [endpoint], executor="threading")
    start = time.perf_counter()
    listener.start()  # declares the queue <topic>.info on the exchange <topic>
    finished = endpoint.done.wait(timeout=max(120.0, count * 0.2))
    seconds = time.perf_counter() - start
    listener.stop()
    listener.wait()
    transport.cleanup()
    engine.dispose()
    print(json.dumps({"stored": endpoint.stored, "listener_s": round(seconds, 4)}))
    return 0 if finished else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.perf.references")
    sub = parser.add_subparsers(dest="which", required=True)
    raw = sub.add_parser("raw-get")
    raw.add_argument("url")
    raw.add_argument("queue")
    raw.add_argument("count", type=int)
    raw.add_argument("--hold", action="store_true")
    raw.add_argument("--drainer-imports", action="store_true")
    old = sub.add_parser("persistor")
    old.add_argument("url")
    old.add_argument("db_url")
    old.add_argument("topic")
    old.add_argument("count", type=int)
    args = parser.parse_args(argv)
    if args.which == "raw-get":
        return raw_get(args.url, args.queue, args.count, args.hold, args.drainer_imports)
    return persistor(args.url, args.db_url, args.topic, args.count)


if __name__ == "__main__":
    sys.exit(main())
