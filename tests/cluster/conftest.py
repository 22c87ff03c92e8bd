"""Fixtures for the clustered engines: a database on the Galera cluster, queues on the RabbitMQ cluster.

The clusters are brought up by `python -m tests.cluster.clusters up` (.ci/run does it). Without them
the `cluster` tests are skipped, unless CI or DRAINER_TEST_CLUSTERS is set: then they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.cluster import clusters
from tests.conftest import Rabbit, run_cli


def _require(up: bool, name: str) -> None:
    if up:
        return
    message = f"the {name} test cluster is not up: run `python -m tests.cluster.clusters up`"
    if os.environ.get("CI") or os.environ.get("DRAINER_TEST_CLUSTERS"):
        pytest.fail(message)
    pytest.skip(message)


def node_connect(node: clusters.GaleraNode, database: str | None = None, **kwargs: Any) -> Any:
    import pymysql

    return pymysql.connect(host=node.ip, port=node.port, user="root", password="", database=database, **kwargs)


@dataclass
class GaleraDatabase:
    """One test database, created on the cluster (DDL replicates to every node) and migrated."""

    name: str

    def url(self, node: int) -> str:
        return clusters.galera_node(node).url(self.name)

    def rows(self, sql: str, node: int = 1, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        conn = node_connect(clusters.galera_node(node), self.name, autocommit=True)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return list(cur.fetchall())
        finally:
            conn.close()

    def stored_ids(self, node: int = 1) -> list[str]:
        return [r[0] for r in self.rows("SELECT message_id FROM drainer_events ORDER BY id", node)]


@pytest.fixture
def galera_cluster() -> Iterator[tuple[clusters.GaleraNode, ...]]:
    """The three nodes, and a promise: after the test every node runs again, healed and Synced."""
    _require(clusters.galera_is_up(), "Galera")
    yield clusters.galera_nodes()
    clusters.heal_galera()
    for node in clusters.galera_nodes():
        if not node.running():
            clusters.start_galera_node(node)
    clusters.wait_galera_healthy()


@pytest.fixture
def galera_db(galera_cluster: tuple[clusters.GaleraNode, ...]) -> Iterator[GaleraDatabase]:
    name = f"drainer_test_{uuid.uuid4().hex[:10]}"
    first = galera_cluster[0]
    conn = node_connect(first, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
    finally:
        conn.close()
    db = GaleraDatabase(name)
    migrated = run_cli("migrate", "--db-url", db.url(1))
    assert migrated.code == 0, migrated.stderr
    yield db
    import pymysql

    for node in galera_cluster:  # whichever node is up after the test drops it for all
        try:
            conn = node_connect(node, autocommit=True, connect_timeout=5)
        except pymysql.err.OperationalError:  # a node the test left down: try the next
            continue
        try:
            with conn.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS {name}")
            break
        finally:
            conn.close()


@dataclass
class RabbitCluster:
    """The three RabbitMQ nodes and one test queue, declared through a chosen node."""

    queue: str

    def url(self, *nodes: int) -> str:
        """An oslo transport_url listing the nodes in this order (the drainer fails over in order)."""
        hosts = ",".join(f"guest:guest@127.0.0.1:{clusters.rabbit_node(n).port}" for n in nodes)
        return f"rabbit://{hosts}/"

    def on(self, node: int) -> Rabbit:
        """The conftest's Rabbit helper (publish, depth, get_all) bound to one node."""
        return Rabbit(clusters.rabbit_node(node).url(), self.queue)

    def declare(self, node: int, arguments: dict[str, Any] | None = None) -> None:
        conn = self.on(node).connection()
        try:
            conn.channel().queue_declare(self.queue, durable=True, arguments=arguments)
        finally:
            conn.close()


@pytest.fixture
def rabbit_cluster() -> Iterator[RabbitCluster]:
    """A fresh queue name; afterwards every node runs again and the queue is deleted."""
    _require(clusters.rabbit_is_up(), "RabbitMQ")
    cluster = RabbitCluster(f"test-{uuid.uuid4().hex[:10]}.info")
    yield cluster
    for node in clusters.rabbit_nodes():
        if not node.running():
            clusters.start_rabbit_node(node)
    clusters.wait_rabbit_healthy()
    conn = cluster.on(1).connection()
    try:
        ch = conn.channel()
        for q in (cluster.queue, cluster.queue + ".oversize"):
            ch.queue_delete(q)
    finally:
        conn.close()
