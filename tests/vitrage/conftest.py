"""Vitrage 15.0.1 as the reference: its own venv, its own vitrage-dbsync, its own notifier and persistor.

The venv (`.venv-vitrage` at the repository root, or $DRAINER_TEST_VITRAGE_VENV) is made by .ci/run
with `pip install vitrage==15.0.1`; Vitrage is never a dependency of the drainer itself. Without it
these tests skip, and fail when CI is set.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import AMQP_URL, MYSQL_URL, ROOT, Database, _mysql_admin, _require

VENV = Path(os.environ.get("DRAINER_TEST_VITRAGE_VENV", ROOT / ".venv-vitrage"))
REFERENCE = Path(__file__).parent / "reference.py"


@pytest.fixture(scope="session")
def vitrage_venv() -> Path:
    if (VENV / "bin" / "vitrage-dbsync").exists():
        return VENV
    if os.environ.get("CI"):
        pytest.fail(f"Vitrage's reference venv is missing at {VENV} and CI is set (.ci/run makes it)")
    pytest.skip(
        f"no Vitrage reference venv at {VENV}: python3 -m venv {VENV} && {VENV}/bin/pip install vitrage==15.0.1"
    )


@dataclass
class VitrageSide:
    """One Vitrage database made by vitrage-dbsync, and an oslo config file pointing at it."""

    db: Database
    conf: Path
    venv: Path

    def reference(self, command: str, arg: str, timeout: float = 300) -> dict[str, Any]:
        proc = subprocess.run(
            [str(self.venv / "bin" / "python"), str(REFERENCE), command, str(self.conf), arg],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads(proc.stdout.strip().splitlines()[-1])


def _oslo_url(url: str) -> str:
    return url.replace("amqp://", "rabbit://").replace("%2F", "")


@pytest.fixture
def vitrage_side(vitrage_venv: Path, tmp_path: Path, persistor_topic: str) -> Iterator[Any]:
    """A factory: each call makes a fresh MariaDB database with Vitrage's schema (its own dbsync)."""
    _require(MYSQL_URL, 3306, "MariaDB")
    made: list[str] = []

    def make(label: str) -> VitrageSide:
        name = f"drainer_vitrage_{label}_{uuid.uuid4().hex[:8]}"
        _mysql_admin(f"CREATE DATABASE {name}")
        made.append(name)
        db = Database(f"{MYSQL_URL}/{name}", "mysql")
        conf = tmp_path / f"vitrage-{label}.conf"
        conf.write_text(
            # One listener thread: vitrage-persistor's default of 64 applies notifications
            # concurrently, so an edge can race the alarm it points to and be lost (seen here);
            # the comparison takes upstream at its most careful.
            f"[DEFAULT]\ntransport_url = {_oslo_url(AMQP_URL)}\nexecutor_thread_pool_size = 1\n"
            f"[persistency]\npersistor_topic = {persistor_topic}\n"
            f"[database]\nconnection = {db.url}\n"
        )
        dbsync = subprocess.run(
            [str(vitrage_venv / "bin" / "vitrage-dbsync"), "--config-file", str(conf)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert dbsync.returncode == 0, dbsync.stderr[-2000:]
        return VitrageSide(db, conf, vitrage_venv)

    yield make
    for name in made:
        _mysql_admin(f"DROP DATABASE IF EXISTS {name}")


@pytest.fixture
def persistor_topic() -> Iterator[str]:
    """A topic of this test's own; its queues are deleted afterwards."""
    topic = f"vitrage_persistor_{uuid.uuid4().hex[:8]}"
    yield topic
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    try:
        ch = conn.channel()
        for suffix in (".info", ".drainer", ".capture"):
            ch.queue_delete(topic + suffix)
    finally:
        conn.close()
