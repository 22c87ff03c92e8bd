"""Every pika failure leaves broker.py as the drainer's own error, and every broker refusal is named
for what it is, with queue and vhost: against the real RabbitMQ."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator

import pytest

from drainer.broker import Broker
from drainer.config import Settings
from drainer.errors import DrainerError
from drainer.model import Delivery
from tests.conftest import AMQP_URL, Database, Rabbit, Result, oslo_v2, run_cli, wait_for
from tests.faults.support import close_broker_connections

pytestmark = pytest.mark.integration


@pytest.fixture
def drain(rabbit: Rabbit, mysql_db: Database) -> Callable[..., Result]:
    assert run_cli("migrate", "--db-url", mysql_db.url).code == 0

    def run(*args: str) -> Result:
        command, rest = (args[0], args[1:]) if args and not args[0].startswith("-") else ("drain", args)
        base = ["--db-url", mysql_db.url, "--amqp-url", rabbit.url, "--queue", rabbit.queue]
        return run_cli(command, *base, *rest)

    return run


def test_every_broker_call_on_a_connection_the_broker_closed_raises_a_drainer_error(rabbit: Rabbit) -> None:
    rabbit.publish([oslo_v2({"seq": 1})])
    queue = f"boundary-{uuid.uuid4().hex[:8]}"
    broker = Broker.connect(Settings(amqp_urls=(AMQP_URL,), queue=queue))
    deliveries, _ = broker.fetch_batch(rabbit.queue, 10, 10**6, 5, lambda: False)
    assert len(deliveries) == 1
    wait_for(lambda: close_broker_connections(f"vitrage-drainer {queue}") == 1, 30, "the broker to close it")

    calls: dict[str, Callable[[], object]] = {
        "ensure_open": broker.ensure_open,
        "depth": lambda: broker.depth(rabbit.queue),
        "fetch_batch": lambda: broker.fetch_batch(rabbit.queue, 10, 10**6, 5, lambda: False),
        "ack_through": lambda: broker.ack_through(deliveries[-1].tag),
        "park_oversize": lambda: broker.park_oversize(
            rabbit.queue + ".oversize", Delivery(1, b"x", "", rabbit.queue, False), "r", "d"
        ),
        "probe_readable": lambda: broker.probe_readable(rabbit.queue),
    }
    for name, call in [*calls.items(), *calls.items()]:  # twice: a second call meets pika's closed timers
        try:
            call()
        except DrainerError:
            continue
        except BaseException as exc:  # noqa: BLE001 - the point of the test
            pytest.fail(f"{name} let {exc!r} out of broker.py")
        pytest.fail(f"{name} succeeded on a closed connection")
    for quiet in (broker.keepalive, broker.return_unacked, broker.close):
        quiet()  # best effort by contract: no exception at all
    wait_for(lambda: rabbit.depth() == 1, 10, "the unacked message back in the queue")


@pytest.fixture
def stream_queue() -> Iterator[Rabbit]:
    r = Rabbit(AMQP_URL, f"test-stream-{uuid.uuid4().hex[:8]}.info")
    conn = r.connection()
    conn.channel().queue_declare(r.queue, durable=True, arguments={"x-queue-type": "stream"})
    conn.close()
    yield r
    conn = r.connection()
    conn.channel().queue_delete(r.queue)
    conn.close()


def test_a_stream_queue_is_named_with_what_to_do_and_status_does_not_report_success(
    stream_queue: Rabbit, mysql_db: Database
) -> None:
    assert run_cli("migrate", "--db-url", mysql_db.url).code == 0
    base = ["--db-url", mysql_db.url, "--amqp-url", AMQP_URL, "--queue", stream_queue.queue]

    # A queue reporting no ready message (as RabbitMQ 3.10 does for a stream at times) is checked
    # with a basic.get, which takes nothing from a queue that is empty.
    status = run_cli("status", "--json", *base)
    stream_queue.publish([oslo_v2({"seq": i}) for i in range(3)])
    drained = run_cli("drain", *base)

    assert drained.code == 76, drained.stderr
    assert drained.summary["error"] == "queue_not_supported" and drained.summary["fetched"] == 0
    assert f"'{stream_queue.queue}' in vhost '/' is a stream queue" in drained.summary["detail"]
    report = json.loads(status.stdout)
    assert status.code == 76 and report["queue_type"] == "stream" and report["queue_depth"] is None
    assert report["errors"][0]["error"] == "queue_not_supported"


def test_an_exclusive_queue_of_another_connection_is_a_refusal_named_with_its_code(mysql_db: Database) -> None:
    assert run_cli("migrate", "--db-url", mysql_db.url).code == 0
    owner = Rabbit(AMQP_URL, f"test-excl-{uuid.uuid4().hex[:8]}").connection()
    queue = owner.channel().queue_declare("", exclusive=True).method.queue
    try:
        result = run_cli("drain", "--db-url", mysql_db.url, "--amqp-url", AMQP_URL, "--queue", queue)
    finally:
        owner.close()
    assert result.code == 76, result.stderr
    assert result.summary["error"] == "broker_refused" and "405 RESOURCE_LOCKED" in result.summary["detail"]
    assert f"'{queue}' in vhost '/'" in result.summary["detail"]


@pytest.mark.parametrize("rabbit", [None], indirect=True)
def test_a_full_oversize_queue_says_so_and_loses_nothing(rabbit: Rabbit, drain) -> None:
    conn = rabbit.connection()
    channel = conn.channel()
    target = rabbit.queue + ".oversize"
    channel.queue_declare(target, durable=True, arguments={"x-max-length": 1, "x-overflow": "reject-publish"})
    channel.confirm_delivery()
    channel.basic_publish("", target, b"already parked")
    conn.close()
    rabbit.publish([b"z" * 4096, oslo_v2({"seq": 1})])

    result = drain("--max-message-bytes", "1024")

    assert result.code == 75, result.stderr
    assert result.summary["error"] == "oversize_queue_full"
    assert "is full" in result.summary["detail"] and target in result.summary["detail"]
    assert (result.summary["returned"], result.summary["queue_remaining"]) == (2, 2)
    assert rabbit.depth() == 2 and rabbit.depth(target) == 1
