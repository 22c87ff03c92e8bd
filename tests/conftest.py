"""Fixtures that know how to reach the real services; tests only ask for a queue or a database."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

AMQP_URL = os.environ.get("DRAINER_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
MYSQL_URL = os.environ.get("DRAINER_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306")
FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).parent.parent


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=2):
            return True
    except OSError:
        return False


def _require(url: str, port: int, name: str) -> None:
    if _reachable(url, port):
        return
    if os.environ.get("CI"):
        pytest.fail(f"{name} is not answering at {urlsplit(url).hostname}:{port} and CI is set")
    pytest.skip(f"{name} not reachable")


def require_module(name: str) -> Any:
    """Import a test dependency; skip without it on a laptop, FAIL when `CI` is set (pytest's
    importorskip skips either way, so a dependency missing from the test extra went unnoticed)."""
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"test dependency {name!r} is missing and CI is set: add it to the test extra ({exc})")
        pytest.skip(f"{name} is not installed", allow_module_level=True)


def fixture_payloads() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in sorted(FIXTURES.glob("*.json"))}


def oslo_v2(
    payload: dict[str, Any],
    message_id: str | None = None,
    event_type: str = "nova.instance",
    timestamp: str = "2026-11-24 21:19:37.666931",
) -> bytes:
    """Exactly what oslo.messaging's messagingv2 driver puts on the wire."""
    inner = {
        "message_id": message_id or str(uuid.uuid4()),
        "publisher_id": "datasources.events",
        "event_type": event_type,
        "priority": "INFO",
        "payload": payload,
        "timestamp": timestamp,
        "_unique_id": uuid.uuid4().hex,
    }
    return json.dumps({"oslo.version": "2.0", "oslo.message": json.dumps(inner)}).encode()


@dataclass
class Rabbit:
    """A fresh queue on the real broker, deleted afterwards."""

    url: str
    queue: str

    def connection(self) -> Any:
        import pika

        return pika.BlockingConnection(pika.URLParameters(self.url))

    def publish(self, bodies: list[bytes], properties: list[dict[str, Any]] | None = None) -> None:
        import pika

        conn = self.connection()
        try:
            ch = conn.channel()
            ch.confirm_delivery()
            for i, body in enumerate(bodies):
                props = pika.BasicProperties(
                    content_type="application/json", delivery_mode=2, **((properties or [{}] * len(bodies))[i])
                )
                ch.basic_publish("", self.queue, body, props)
        finally:
            conn.close()

    def depth(self, queue: str | None = None) -> int:
        conn = self.connection()
        try:
            return conn.channel().queue_declare(queue or self.queue, passive=True).method.message_count
        finally:
            conn.close()

    def get_all(self, queue: str) -> list[tuple[Any, bytes]]:
        conn = self.connection()
        try:
            ch = conn.channel()
            out = []
            while True:
                method, props, body = ch.basic_get(queue, auto_ack=True)
                if method is None:
                    return out
                out.append((props, body))
        finally:
            conn.close()


@pytest.fixture
def rabbit(request: pytest.FixtureRequest) -> Iterator[Rabbit]:
    _require(AMQP_URL, 5672, "RabbitMQ")
    r = Rabbit(AMQP_URL, f"test-{uuid.uuid4().hex[:10]}.info")
    arguments = getattr(request, "param", None)
    conn = r.connection()
    conn.channel().queue_declare(r.queue, durable=True, arguments=arguments)
    conn.close()
    yield r
    conn = r.connection()
    ch = conn.channel()
    for q in (r.queue, r.queue + ".oversize"):
        ch.queue_delete(q)
    conn.close()


@dataclass
class Database:
    """A fresh database (MariaDB) or file (SQLite), dropped afterwards."""

    url: str
    kind: str

    def engine(self) -> Any:
        from sqlalchemy import create_engine

        return create_engine(self.url)

    def rows(self, sql: str, **params: Any) -> list[Any]:
        from sqlalchemy import text

        engine = self.engine()
        try:
            with engine.connect() as conn:
                return list(conn.execute(text(sql), params).all())
        finally:
            engine.dispose()

    def execute(self, sql: str, **params: Any) -> None:
        from sqlalchemy import text

        engine = self.engine()
        try:
            with engine.begin() as conn:
                conn.execute(text(sql), params)
        finally:
            engine.dispose()


def _mysql_admin(sql: str) -> None:
    import pymysql

    parts = urlsplit(MYSQL_URL.replace("mysql+pymysql", "mysql"))
    conn = pymysql.connect(
        host=parts.hostname,
        port=parts.port or 3306,
        user=parts.username or "root",
        password=parts.password or "",
        autocommit=True,
    )
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


@pytest.fixture
def mysql_db() -> Iterator[Database]:
    _require(MYSQL_URL, 3306, "MariaDB")
    name = f"drainer_test_{uuid.uuid4().hex[:10]}"
    _mysql_admin(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
    yield Database(f"{MYSQL_URL}/{name}", "mysql")
    _mysql_admin(f"DROP DATABASE IF EXISTS {name}")


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Database:
    return Database(f"sqlite:///{tmp_path / 'events.sqlite'}", "sqlite")


@pytest.fixture(params=["mysql", "sqlite"])
def db(request: pytest.FixtureRequest) -> Database:
    return request.getfixturevalue(f"{request.param}_db")


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def records(self) -> list[dict[str, Any]]:
        out = []
        for line in self.stderr.splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    @property
    def summary(self) -> dict[str, Any]:
        found = [r for r in self.records if "exit_code" in r]  # every command ends with one such record
        assert found, f"no summary record in stderr:\n{self.stderr}"
        return found[-1]


def _env(extra: dict[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRAINER_")}
    env.update(extra or {})
    return env


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> Result:
    """Run `python -m drainer ARGS` as operators do: a real process, its exit code and stderr."""
    proc = subprocess.run(
        [sys.executable, "-m", "drainer", *args],
        capture_output=True,
        text=True,
        env=_env(env),
        timeout=timeout,
        cwd=ROOT,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


@dataclass
class Screen:
    """What a person at a terminal saw: the screen's lines once the command exited (trailing
    spaces and blank lines dropped), and its exit code."""

    code: int
    lines: list[str]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def run_in_terminal(
    *args: str,
    env: dict[str, str] | None = None,
    answer: str | None = None,
    columns: int = 1000,
    timeout: float = 120,
    argv: list[str] | None = None,
    cwd: Path = ROOT,
) -> Screen:
    """Run `python -m drainer ARGS` (or `argv`) in a pseudo-terminal, as in a terminal window of
    `columns` (wide, so a record is one screen line), type `answer` when a [y/N] question shows,
    and return the screen as a terminal emulator (pyte) renders it: carriage returns, the progress
    bar's redraws and the echo of the answer included."""
    import fcntl
    import select
    import struct
    import termios

    import pyte

    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    command = argv or [sys.executable, "-m", "drainer", *args]
    proc = subprocess.Popen(command, stdin=slave, stdout=slave, stderr=slave, env=_env(env), cwd=cwd)
    os.close(slave)
    output = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while True:
            if time.monotonic() > deadline:
                raise AssertionError(f"{command} still running after {timeout}s:\n{output.decode(errors='replace')}")
            ready, _, _ = select.select([master], [], [], 0.1)
            if not ready:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the command exited and closed the terminal
                break
            if not chunk:
                break
            output += chunk
            if answer is not None and b"[y/N] " in output:
                os.write(master, answer.encode() + b"\n")
                answer = None
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    screen = pyte.Screen(columns, 1000)
    pyte.ByteStream(screen).feed(bytes(output))
    lines = [line.rstrip() for line in screen.display]
    while lines and not lines[-1]:
        lines.pop()
    return Screen(code, lines)


def start_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "drainer", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(env),
        cwd=ROOT,
    )


def wait_for(condition: Callable[[], bool], timeout: float = 30, what: str = "condition") -> None:
    """Poll instead of sleeping; fail with a message when the bound passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


NESTED_COMMANDS = ("rejected", "oversize", "lease")
# Commands that talk to the broker: the fixture gives them this test's broker and queue.
BROKER_COMMANDS = ("drain", "status", "peek", "oversize list", "oversize requeue", "rejected republish")


@pytest.fixture
def drainer(rabbit: Rabbit, db: Database) -> Callable[..., Result]:
    """Run a drainer command against this test's queue and database (migrated first)."""
    migrated = run_cli("migrate", "--db-url", db.url)
    assert migrated.code == 0, migrated.stderr

    def run(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> Result:
        # `rejected list`, `oversize requeue`, `lease show`: the options follow the verb.
        words = 2 if args and args[0] in NESTED_COMMANDS else 1
        command = list(args[:words]) if args else ["drain"]
        rest = list(args[words:])
        base = ["--db-url", db.url]
        if " ".join(command) in BROKER_COMMANDS:
            base += ["--amqp-url", rabbit.url]
            if "--queue" not in rest:
                base += ["--queue", rabbit.queue]
        return run_cli(*command, *base, *rest, env=env, timeout=timeout)

    return run
