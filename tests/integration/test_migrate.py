"""`migrate`: applies files in order, is a no-op when up to date, refuses a changed applied file."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from drainer.schema import migrations
from tests.conftest import ROOT, run_cli

pytestmark = pytest.mark.integration


def files(kind: str) -> list[str]:
    from drainer import schema

    return [m.name for m in schema.migrations(kind)]


def test_migrate_creates_the_tables_and_is_idempotent(db):
    first = run_cli("migrate", "--db-url", db.url)
    assert first.code == 0, first.stderr
    files = [m.name for m in migrations(db.kind)]
    assert files[0] == "001_drainer_tables.sql"
    assert first.summary["applied"] == files
    second = run_cli("migrate", "--db-url", db.url)
    assert second.code == 0 and second.summary["applied"] == []
    names = {r.name for r in db.rows("SELECT name FROM drainer_schema_migrations")}
    assert names == set(files)
    assert db.rows("SELECT COUNT(*) AS n FROM drainer_events")[0].n == 0


def test_migrate_refuses_a_file_changed_after_it_was_applied(db):
    assert run_cli("migrate", "--db-url", db.url).code == 0
    db.execute("UPDATE drainer_schema_migrations SET checksum = :c", c="0" * 64)
    result = run_cli("migrate", "--db-url", db.url)
    assert result.code == 78
    assert "changed after it was applied" in result.stderr


def test_wheel_carries_the_sql_files_and_migrates_when_installed(tmp_path: Path):
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("vitrage_drainer-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "drainer/sql/mysql/001_drainer_tables.sql" in names and "drainer/sql/sqlite/001_drainer_tables.sql" in names
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    db_file = tmp_path / "w.sqlite"
    proc = subprocess.run(
        [sys.executable, "-m", "drainer", "migrate", "--db-url", f"sqlite:///{db_file}"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr
    assert (
        str(target)
        in subprocess.run(
            [sys.executable, "-c", "import drainer; print(drainer.__file__)"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env={"PYTHONPATH": str(target)},
        ).stdout
    )


LEGACY = ROOT / "tests" / "fixtures" / "legacy-0.1"
VITRAGE_EVENTS = {  # Vitrage's own `events` table since Rocky (vitrage/storage/sqlalchemy/models.py)
    "mysql": "CREATE TABLE events (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, payload TEXT NOT NULL,"
    " is_vertex BOOLEAN NOT NULL, created_at DATETIME, updated_at DATETIME) ENGINE=InnoDB",
    "sqlite": "CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, payload TEXT NOT NULL,"
    " is_vertex BOOLEAN NOT NULL, created_at DATETIME, updated_at DATETIME)",
}


def _legacy_migrate(db, *, vitrage_events: bool = False) -> None:
    """What vitrage-drainer 0.1's `migrate` left behind, rows included."""
    import hashlib

    from drainer.schema import Migration

    path = LEGACY / db.kind / "001_events.sql"
    text = path.read_text(encoding="utf-8")
    if vitrage_events:
        db.execute(VITRAGE_EVENTS[db.kind])
        db.execute("INSERT INTO events (payload, is_vertex) VALUES ('{\"vitrage\": 1}', 1)")
    for statement in Migration("001_events.sql", "", text).statements():
        db.execute(statement)
    db.execute(
        "CREATE TABLE schema_migrations (name VARCHAR(255) NOT NULL PRIMARY KEY, checksum CHAR(64) NOT NULL,"
        " applied_at DATETIME NOT NULL)"
    )
    db.execute(
        "INSERT INTO schema_migrations VALUES ('001_events.sql', :c, '2026-11-01 00:00:00')",
        c=hashlib.sha256(text.encode()).hexdigest(),
    )


def _tables(db) -> set[str]:
    if db.kind == "mysql":
        return {r[0] for r in db.rows("SHOW TABLES")}
    return {r[0] for r in db.rows("SELECT name FROM sqlite_master WHERE type = 'table'")} - {"sqlite_sequence"}


def test_a_database_migrated_by_0_1_upgrades_without_losing_a_row(db, rabbit):
    _legacy_migrate(db)
    for i in (1, 2, 3):
        db.execute(
            "INSERT INTO events (message_id, collector_timestamp, payload, stored_at) VALUES (:m, :t, '{}', :t)",
            m=f"old-{i}",
            t="2026-11-01 00:00:00",
        )
    db.execute("DELETE FROM events WHERE message_id = 'old-3'")  # the counter must survive, not the max id
    db.execute(
        "INSERT INTO rejected_messages (dedupe_key, received_at, queue, reason, body, body_sha256)"
        " VALUES ('sha256:x', '2026-11-01 00:00:00', 'q', 'not json', :b, 'x')",
        b=b"\xff\x00kept",
    )

    result = run_cli("migrate", "--db-url", db.url)

    assert result.code == 0, result.stderr
    tables = _tables(db)
    assert {"drainer_events", "drainer_rejected_messages", "drainer_leases", "drainer_schema_migrations"} <= tables
    assert not tables & {"events", "rejected_messages", "schema_migrations"}
    assert all(t.startswith("drainer_") for t in tables)
    assert [(r.id, r.message_id) for r in db.rows("SELECT id, message_id FROM drainer_events ORDER BY id")] == [
        (1, "old-1"),
        (2, "old-2"),
    ]
    assert bytes(db.rows("SELECT body FROM drainer_rejected_messages")[0].body) == b"\xff\x00kept"
    names = {r.name for r in db.rows("SELECT name FROM drainer_schema_migrations")}
    assert names == {m.name for m in migrations(db.kind)}
    # The next drain continues after the old ids, never reusing one a standby may have replayed.
    from tests.conftest import oslo_v2

    rabbit.publish([oslo_v2({"id": "new"}, message_id="new-1")])
    drained = run_cli("drain", "--db-url", db.url, "--amqp-url", rabbit.url, "--queue", rabbit.queue)
    assert drained.code == 0, drained.stderr
    assert db.rows("SELECT id FROM drainer_events WHERE message_id = 'new-1'")[0].id == 4
    assert run_cli("migrate", "--db-url", db.url).summary["applied"] == []


def test_vitrage_s_own_events_table_is_left_alone_and_ours_is_created(mysql_db):
    # MySQL only: on SQLite 0.1's migrate failed outright over such a table (its CREATE INDEX).
    db = mysql_db
    _legacy_migrate(db, vitrage_events=True)

    result = run_cli("migrate", "--db-url", db.url)

    assert result.code == 0, result.stderr
    assert {"events", "drainer_events", "drainer_rejected_messages"} <= _tables(db)
    assert "rejected_messages" not in _tables(db) and "schema_migrations" not in _tables(db)
    rows = db.rows("SELECT id, payload, is_vertex FROM events")
    assert [(r.id, r.payload, bool(r.is_vertex)) for r in rows] == [(1, '{"vitrage": 1}', True)]
    assert any(r.get("event") == "legacy_table_kept" and r["table"] == "events" for r in result.records)


def test_migrate_refuses_a_table_of_another_shape_and_creates_nothing(db):
    db.execute("CREATE TABLE drainer_events (id INTEGER PRIMARY KEY, payload TEXT, is_vertex BOOLEAN)")

    result = run_cli("migrate", "--db-url", db.url)

    assert result.code == 78
    assert result.summary["error"] == "schema_conflict"
    assert "drainer_events" in result.summary["message"] and "is_vertex" in result.summary["message"]
    assert _tables(db) == {"drainer_events"}


def test_drain_refuses_tables_without_the_columns_it_writes(db, rabbit):
    assert run_cli("migrate", "--db-url", db.url).code == 0
    db.execute("ALTER TABLE drainer_events DROP COLUMN action")
    rabbit.publish([b'{"id": "x"}'])

    result = run_cli("drain", "--db-url", db.url, "--amqp-url", rabbit.url, "--queue", rabbit.queue)

    assert result.code == 78
    assert "drainer_events" in result.summary["detail"] and "action" in result.summary["detail"]
    assert rabbit.depth() == 1
