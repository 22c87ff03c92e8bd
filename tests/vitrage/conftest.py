"""Vitrage 15.0.1 as the reference: its own venv, its own vitrage-dbsync, its own notifier and persistor.

The venv (`.venv-vitrage` at the repository root, or $DRAINER_TEST_VITRAGE_VENV) is made by .ci/run
with `pip install vitrage==15.0.1`; Vitrage is never a dependency of the drainer itself. Without it
these tests skip, and fail when CI is set.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import AMQP_URL, MYSQL_URL, ROOT, _require
from tests.vitrage.support import VitrageSide, make_side

VENV = Path(os.environ.get("DRAINER_TEST_VITRAGE_VENV", ROOT / ".venv-vitrage"))


@pytest.fixture(scope="session")
def vitrage_venv() -> Path:
    if (VENV / "bin" / "vitrage-dbsync").exists():
        return VENV
    if os.environ.get("CI"):
        pytest.fail(f"Vitrage's reference venv is missing at {VENV} and CI is set (.ci/run makes it)")
    pytest.skip(
        f"no Vitrage reference venv at {VENV}: python3 -m venv {VENV} && {VENV}/bin/pip install vitrage==15.0.1"
    )


@pytest.fixture
def vitrage_side(vitrage_venv: Path, tmp_path: Path, persistor_topic: str) -> Iterator[Any]:
    """A factory: each call makes a fresh MariaDB database with Vitrage's schema (its own dbsync)."""
    _require(MYSQL_URL, 3306, "MariaDB")
    made: list[VitrageSide] = []

    def make(label: str) -> VitrageSide:
        # One listener thread: vitrage-persistor's default of 64 applies notifications concurrently,
        # so an edge can race the alarm it points to and be lost (seen here); the comparison takes
        # upstream at its most careful.
        side = make_side(vitrage_venv, tmp_path, label, persistor_topic, threads=1)
        made.append(side)
        return side

    yield make
    for side in made:
        side.drop()


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
