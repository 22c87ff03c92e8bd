"""Apply sql/<dialect>/*.sql in name order, recording each file's name and checksum."""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

from drainer.errors import SchemaConflict, SchemaOutdated
from drainer.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Migration:
    name: str
    checksum: str
    sql: str

    def statements(self) -> list[str]:
        # Statements end with ';' at a line end; the files keep semicolons out of comments.
        body = "\n".join(line for line in self.sql.splitlines() if not line.lstrip().startswith("--"))
        return [s.strip() for s in re.split(r";\s*(?:\n|$)", body) if s.strip()]


def _sql_root() -> Traversable:
    # Installed wheel: drainer/sql (mapped from the top-level sql/ at build time);
    # a source checkout or editable install: the repository's sql/.
    packaged = resources.files("drainer").joinpath("sql")
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "sql"


def migrations(dialect: str) -> list[Migration]:
    """The dialect's migration files, in name order."""
    folder = _sql_root().joinpath(dialect)
    found = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".sql") and re.match(r"^\d+_", entry.name):
            text = entry.read_text(encoding="utf-8")
            found.append(Migration(entry.name, hashlib.sha256(text.encode()).hexdigest(), text))
    return found


def _check_applied(applied: dict[str, str], files: list[Migration]) -> list[Migration]:
    for migration in files:
        checksum = applied.get(migration.name)
        if checksum is not None and checksum != migration.checksum:
            raise SchemaConflict(f"migration {migration.name} changed after it was applied; add a new file instead")
    return [m for m in files if m.name not in applied]


def migrate(store: Store) -> list[str]:
    """Apply every pending file; return the names applied (empty when up to date)."""
    files = migrations(store.dialect)
    pending = _check_applied(store.applied_migrations() or {}, files)
    for migration in pending:
        store.apply_migration(migration.name, migration.checksum, migration.statements())
        log.info("applied migration", extra={"event": "migration_applied", "migration": migration.name})
    return [m.name for m in pending]


def check(store: Store) -> str:
    """Raise SchemaOutdated unless every file is applied; return the current version."""
    files = migrations(store.dialect)
    applied = store.applied_migrations()
    if applied is None:
        raise SchemaOutdated("the database has no drainer schema: run `vitrage-drainer migrate`")
    pending = _check_applied(applied, files)
    if pending:
        raise SchemaOutdated(
            f"schema is behind ({', '.join(m.name for m in pending)} not applied): run `vitrage-drainer migrate`"
        )
    return files[-1].name if files else ""
