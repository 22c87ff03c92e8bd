"""How RabbitMQ's channel closes become the drainer's errors (pure: no broker is contacted)."""

from __future__ import annotations

import pika.exceptions as pe

from drainer.broker import Broker
from drainer.config import Settings
from drainer.errors import BrokerUnavailable, QueueNotFound


def broker() -> Broker:
    unconnected = Broker.__new__(Broker)  # only the error mapping is exercised
    unconnected._settings = Settings()
    return unconnected


def test_a_queue_whose_home_node_is_down_is_unavailable_not_missing() -> None:
    # The reply RabbitMQ 3.10.8 sends for a durable classic queue whose node is down (captured on the
    # test cluster, tests/cluster/test_rabbitmq.py).
    text = "NOT_FOUND - home node 'vdrab3@localhost' of durable queue 'q.info' in vhost '/' is down or inaccessible"
    error = broker()._refused("q.info", "basic.get", pe.ChannelClosedByBroker(404, text))
    assert isinstance(error, BrokerUnavailable)
    assert "vdrab3@localhost" in str(error)


def test_a_queue_that_does_not_exist_is_not_found() -> None:
    closed = pe.ChannelClosedByBroker(404, "NOT_FOUND - no queue 'q.info' in vhost '/'")
    error = broker()._refused("q.info", "basic.get", closed)
    assert isinstance(error, QueueNotFound)
