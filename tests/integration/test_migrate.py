"""`migrate`: applies files in order, is a no-op when up to date, refuses a changed applied file."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli

pytestmark = pytest.mark.integration


def test_migrate_creates_the_tables_and_is_idempotent(db):
    first = run_cli("migrate", "--db-url", db.url)
    assert first.code == 0, first.stderr
    assert first.summary["applied"] == ["001_events.sql"]
    second = run_cli("migrate", "--db-url", db.url)
    assert second.code == 0 and second.summary["applied"] == []
    names = {r.name for r in db.rows("SELECT name FROM schema_migrations")}
    assert names == {"001_events.sql"}
    assert db.rows("SELECT COUNT(*) AS n FROM events")[0].n == 0


def test_migrate_refuses_a_file_changed_after_it_was_applied(db):
    assert run_cli("migrate", "--db-url", db.url).code == 0
    db.execute("UPDATE schema_migrations SET checksum = :c", c="0" * 64)
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
    assert "drainer/sql/mysql/001_events.sql" in names and "drainer/sql/sqlite/001_events.sql" in names
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
