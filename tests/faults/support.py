"""Fault injection against the real services: table locks, killed connections, silent peers."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
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


class LiveRun:
    """A drainer started in the background whose JSON records are read while it runs."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        from tests.conftest import start_cli

        self.proc = start_cli(*args, env=env)
        self._lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._lines.append(line)

    def saw(self, event: str) -> bool:
        """True once the run has logged a record with this `event` field."""
        for line in list(self._lines):
            try:
                if json.loads(line).get("event") == event:
                    return True
            except ValueError:
                continue
        return False

    def finish(self, timeout: float = 60) -> Any:
        """Wait for the exit (killing the run if it outlives `timeout`) and return its Result."""
        from tests.conftest import Result

        try:
            self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(10)
        self._reader.join(10)
        stdout = self.proc.stdout.read() if self.proc.stdout else ""
        return Result(self.proc.returncode, stdout, "".join(self._lines))


# AMQP 0-9-1 Confirm.Select (class 85, method 10): only the oversize path puts a channel in confirm mode.
CONFIRM_SELECT = (85, 10)
# AMQP 0-9-1 Basic.Get (class 60, method 70): the drain's fetch.
BASIC_GET = (60, 70)


class BrokerProxy:
    """A TCP proxy in front of RabbitMQ that can slow the broker's replies down, stop passing them
    on once the client sends a given AMQP method (a broker that never answers, with the connection
    up), or cut every connection (a network failure). Nothing on the broker itself is stopped."""

    def __init__(self, upstream_url: str) -> None:
        parts = urlsplit(upstream_url)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 5672)
        self.url = upstream_url.replace(parts.netloc.rpartition("@")[2], "127.0.0.1:{port}")
        self.delay = 0.0  # seconds added before each chunk the broker sends
        self.freeze_after: tuple[int, int] | None = None  # (class id, method id) the client sends
        self.frozen = threading.Event()
        self._server = socket.socket()
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(16)
        self.url = self.url.format(port=self._server.getsockname()[1])
        self._sockets: list[socket.socket] = []
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self._server.settimeout(0.2)
        while not self._stop.is_set():
            try:
                client = self._server.accept()[0]
            except OSError:
                continue
            broker = socket.create_connection(self.upstream, timeout=5)
            broker.settimeout(None)
            self._sockets += [client, broker]
            threading.Thread(target=self._client_to_broker, args=(client, broker), daemon=True).start()
            threading.Thread(target=self._broker_to_client, args=(broker, client), daemon=True).start()

    def _client_to_broker(self, client: socket.socket, broker: socket.socket) -> None:
        pending = b""
        header_seen = False
        try:
            while chunk := client.recv(65536):
                broker.sendall(chunk)
                if self.freeze_after is None or self.frozen.is_set():
                    continue
                pending += chunk
                if not header_seen and len(pending) >= 8:  # "AMQP\x00\x00\x09\x01"
                    pending, header_seen = pending[8:], True
                while header_seen and len(pending) >= 7:
                    size = int.from_bytes(pending[3:7], "big")
                    if len(pending) < 8 + size:
                        break
                    frame, pending = pending[: 7 + size], pending[8 + size :]
                    method = (int.from_bytes(frame[7:9], "big"), int.from_bytes(frame[9:11], "big"))
                    if frame[0] == 1 and method == self.freeze_after:
                        self.frozen.set()
        except OSError:
            pass
        finally:
            self._close(client, broker)  # the client went away: so does its broker connection

    def _broker_to_client(self, broker: socket.socket, client: socket.socket) -> None:
        try:
            while chunk := broker.recv(65536):
                if self.frozen.is_set():
                    continue  # swallowed: the client waits for a reply that never comes
                if self.delay:
                    time.sleep(self.delay)
                client.sendall(chunk)
        except OSError:
            pass
        finally:
            self._close(client, broker)

    @staticmethod
    def _close(*sockets: socket.socket) -> None:
        for s in sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def cut(self) -> None:
        """Drop every proxied connection at once, both ways."""
        self._close(*self._sockets)

    def close(self) -> None:
        self._stop.set()
        self.cut()
        self._server.close()


@contextmanager
def broker_proxy(upstream_url: str) -> Iterator[BrokerProxy]:
    proxy = BrokerProxy(upstream_url)
    try:
        yield proxy
    finally:
        proxy.close()


def rejection_key(body: bytes) -> str:
    """The key the drainer gives `body` rejected, as `Rabbit.publish` sends it (its properties count)."""
    from drainer import envelope
    from drainer.model import Delivery, utcnow

    sent = {"content_type": "application/json", "delivery_mode": 2}
    return envelope.rejection(Delivery(0, body, "", "q", False, sent), "test", utcnow()).dedupe_key
