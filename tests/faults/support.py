"""Fault injection against the real services: table locks, killed connections, silent peers."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

from tests.conftest import MYSQL_URL, wait_for


def mysql_connect(database: str | None = None):
    import pymysql

    parts = urlsplit(MYSQL_URL.replace("mysql+pymysql", "mysql"))
    return pymysql.connect(
        host=parts.hostname,
        port=parts.port or 3306,
        user=parts.username or "root",
        password=parts.password or "",
        database=database,
        autocommit=True,
    )


def db_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


@contextmanager
def table_locked(db_url: str, table: str = "drainer_events") -> Iterator[None]:
    """Hold LOCK TABLES <table> WRITE from another session for the length of the block."""
    conn = mysql_connect(db_name(db_url))
    try:
        with conn.cursor() as cur:
            cur.execute(f"LOCK TABLES {table} WRITE")
        yield
        with conn.cursor() as cur:
            cur.execute("UNLOCK TABLES")
    finally:
        conn.close()


def waiting_sessions(db_url: str) -> int:
    """Sessions of the database blocked on a lock (the drainer's INSERT or SELECT)."""
    conn = mysql_connect()
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT COUNT(*) FROM information_schema.processlist WHERE db = %s AND state LIKE %s",
                (db_name(db_url), "Waiting for%"),
            )
            return int(cur.fetchone()[0])
    finally:
        conn.close()


def sessions(db_url: str) -> int:
    conn = mysql_connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM information_schema.processlist WHERE db = %s", (db_name(db_url),))
            return int(cur.fetchone()[0])
    finally:
        conn.close()


def wait_blocked(db_url: str, timeout: float = 30) -> None:
    wait_for(lambda: waiting_sessions(db_url) > 0, timeout, "the drainer to block on the table lock")


def close_broker_connections(name_contains: str) -> int:
    """Close, from the broker side, every AMQP connection whose connection_name contains the text."""

    def ctl(*args: str) -> str:
        return subprocess.run(["rabbitmqctl", *args], capture_output=True, text=True, timeout=60, check=True).stdout

    listed = json.loads(ctl("list_connections", "name", "client_properties", "--formatter", "json", "-q") or "[]")
    names = {
        c["name"]
        for c in listed
        if name_contains in str({p[0]: p[2] for p in c.get("client_properties", [])}.get("connection_name", ""))
    }
    # The JSON formatter prints pids in a form close_connection does not accept; the table form does.
    closed = 0
    for line in ctl("list_connections", "pid", "name", "-q", "--no-table-headers").splitlines():
        pid, _, name = line.partition("\t")
        if name.strip() in names:
            ctl("close_connection", pid.strip(), "fault test")
            closed += 1
    return closed


@dataclass
class SilentPeer:
    """A TCP port that accepts connections and never answers (a hung peer)."""

    port: int
    accepted: list[socket.socket]


@contextmanager
def silent_listener() -> Iterator[SilentPeer]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    peer = SilentPeer(server.getsockname()[1], [])
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                peer.accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield peer
    finally:
        stop.set()
        thread.join(2)
        for s in peer.accepted:
            s.close()
        server.close()
