"""Demo: publish Vitrage's sample driver events the way Vitrage does, migrate, drain, show the rows.

    .venv/bin/python tests/demo.py                 # its own topic, into ./demo.sqlite
    .venv/bin/python tests/demo.py --db-url 'mysql+pymysql://root@127.0.0.1/demo'
    .venv/bin/python tests/demo.py --from-env      # DRAINER_AMQP_URL, DRAINER_DB_URL, DRAINER_TOPIC

Publishes with a real oslo.messaging Notifier (messagingv2, exchange `vitrage`, publisher
`datasources.events`) on the topic `vitrage_drainer_demo` (queue `vitrage_drainer_demo.info`), never
on Vitrage's own `vitrage_persistor` unless told to, to the local RabbitMQ's guest account. No
DRAINER_* variable of the environment is used unless --from-env says so. A rerun appends.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))

from drainer.cli import main  # noqa: E402

DEMO_TOPIC = "vitrage_drainer_demo"
LOCAL_AMQP = "amqp://guest:guest@127.0.0.1:5672/%2F"


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


def stored(db_url: str, after_id: int = 0) -> tuple[int, int, list[object]]:
    """(events stored, the last id, the rows with id > after_id); (0, 0, []) before the first run."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError, ProgrammingError

    if db_url.startswith("sqlite:///") and not Path(db_url.removeprefix("sqlite:///")).exists():
        return 0, 0, []
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            total, last = conn.execute(text("SELECT COUNT(*), COALESCE(MAX(id), 0) FROM drainer_events")).one()
            rows = conn.execute(
                text(
                    "SELECT id, collector_timestamp, event_type, entity_id, action, length(payload) AS bytes "
                    "FROM drainer_events WHERE id > :after ORDER BY id LIMIT 25"
                ),
                {"after": after_id},
            ).all()
    except (OperationalError, ProgrammingError):  # no drainer_events yet (SQLite, MySQL 1146): not migrated
        return 0, 0, []
    finally:
        engine.dispose()
    return total, last, list(rows)


def show(rows: list[object]) -> None:
    print(f"\n{'id':>5}  {'collector_timestamp':<26}  {'event_type':<24}  {'action':<9}  {'bytes':>5}  entity_id")
    for r in rows:
        print(
            f"{r.id:>5}  {str(r.collector_timestamp):<26}  {str(r.event_type):<24}  {str(r.action):<9}  "  # type: ignore[attr-defined]
            f"{r.bytes:>5}  {str(r.entity_id)[:40]}"  # type: ignore[attr-defined]
        )


def _command() -> str:
    """How to start vitrage-drainer from here: the venv's script, relative when it is below cwd."""
    script = Path(sys.executable).with_name("vitrage-drainer")
    if not script.exists():
        return f"{sys.executable} -m drainer"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--amqp-url", default=LOCAL_AMQP, help="default: the local broker's guest account")
    parser.add_argument("--db-url", default=f"sqlite:///{Path.cwd() / 'demo.sqlite'}", help="default: ./demo.sqlite")
    parser.add_argument("--topic", default=DEMO_TOPIC, help=f"default: {DEMO_TOPIC}")
    parser.add_argument(
        "--from-env", action="store_true", help="take DRAINER_AMQP_URL, DRAINER_DB_URL and DRAINER_TOPIC when set"
    )
    args = parser.parse_args(argv)
    if args.from_env:
        args.amqp_url = os.environ.get("DRAINER_AMQP_URL", args.amqp_url)
        args.db_url = os.environ.get("DRAINER_DB_URL", args.db_url)
        args.topic = os.environ.get("DRAINER_TOPIC", args.topic)
    before, last_id, _ = stored(args.db_url)
    print(f"published {publish(args.amqp_url, args.topic)} Vitrage driver events on topic {args.topic}")
    # The drainer sees only what the demo says: no DRAINER_* of this shell reaches it.
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRAINER_")}
    common = ["--db-url", args.db_url, "--log-format", "text"]
    steps = (
        ["migrate", *common],
        ["drain", *common, "--amqp-url", args.amqp_url, "--topic", args.topic, "--until-empty", "--no-progress"],
    )
    for step in steps:
        code = main(step, env)
        if code != 0:
            return code
    total, _, rows = stored(args.db_url, last_id)
    show(rows)
    where = args.db_url.removeprefix("sqlite:///") if args.db_url.startswith("sqlite:///") else args.db_url
    from drainer.config import mask_url

    where, new = mask_url(where), total - before
    if before:
        print(f"\nappended {new} events to {where}: it now holds {total} ({before} from earlier runs)")
    else:
        print(f"\nstored {new} events in {where}")
    print(f"look at them with:\n  {_command()} events --db-url '{mask_url(args.db_url)}' --limit 3")
    return 0


if __name__ == "__main__":
    sys.exit(run())
