"""`migrate` and the start-up schema check: apply sql/<dialect>/*.sql in name order, recording each
file's name and checksum; refuse to create over a table of another shape; upgrade 0.1's table names."""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

from drainer.db import migrations as db
from drainer.db import tables
from drainer.db.engine import Store
from drainer.errors import SchemaConflict, SchemaOutdated

log = logging.getLogger(__name__)

_CREATE = re.compile(r"^\s*CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?`?(\w+)`?\s*\((.*)\)[^)]*$", re.I | re.S)
_NOT_COLUMNS = {"PRIMARY", "UNIQUE", "KEY", "INDEX", "CONSTRAINT", "FOREIGN", "CHECK", "FULLTEXT"}


def _split_top_level(body: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, char in enumerate(body):
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            parts.append(body[start:i])
            start = i + 1
    parts.append(body[start:])
    return [p.strip() for p in parts if p.strip()]


@dataclass(frozen=True)
class Migration:
    name: str
    checksum: str
    sql: str

    def statements(self) -> list[str]:
        # Statements end with ';' at a line end; the files keep semicolons out of comments.
        body = "\n".join(line.split("--", 1)[0] if "--" in line else line for line in self.sql.splitlines())
        return [s.strip() for s in re.split(r";\s*(?:\n|$)", body) if s.strip()]

    @cached_property
    def creates(self) -> dict[str, list[str]]:
        """Table name -> its column names, for every CREATE TABLE in the file."""
        found = {}
        for statement in self.statements():
            match = _CREATE.match(statement)
            if match:
                columns = [part.split()[0].strip("`") for part in _split_top_level(match[2])]
                found[match[1]] = [c for c in columns if c.upper() not in _NOT_COLUMNS]
        return found


def _sql_root() -> Traversable:
    # Installed wheel: drainer/sql (mapped from the top-level sql/ at build time);
    # a source checkout or editable install: the repository's sql/.
    packaged = resources.files("drainer").joinpath("sql")
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "sql"


def _read(entry: Traversable) -> Migration:
    text = entry.read_text(encoding="utf-8")
    return Migration(entry.name, hashlib.sha256(text.encode()).hexdigest(), text)


def migrations(dialect: str) -> list[Migration]:
    """The dialect's migration files (`NNN_name.sql`), in name order."""
    folder = _sql_root().joinpath(dialect)
    entries = sorted(folder.iterdir(), key=lambda e: e.name)
    return [_read(e) for e in entries if e.name.endswith(".sql") and re.match(r"^\d+_", e.name)]


def _legacy_upgrade(dialect: str, old: str) -> Migration:
    return _read(_sql_root().joinpath(dialect).joinpath("legacy").joinpath(f"{old}.sql"))


def _check_applied(applied: dict[str, str], files: list[Migration]) -> list[Migration]:
    for migration in files:
        checksum = applied.get(migration.name)
        if checksum is not None and checksum != migration.checksum:
            raise SchemaConflict(f"migration {migration.name} changed after it was applied; add a new file instead")
    return [m for m in files if m.name not in applied]


def _expected_columns(files: list[Migration]) -> dict[str, list[str]]:
    expected: dict[str, list[str]] = {}
    for migration in files:
        for table, columns in migration.creates.items():
            expected.setdefault(table, columns)
    return expected


def upgrade_legacy_names(store: Store, files: list[Migration]) -> list[str]:
    """Rename 0.1's `events` and `rejected_messages` to their `drainer_*` names, keeping every row.

    Only when 0.1's `schema_migrations` records nothing but 0.1's own file, the new migrations
    table does not exist yet, and the old table has exactly the drainer's columns: Vitrage's own
    `events` table (which 0.1's `CREATE TABLE IF NOT EXISTS events` silently left in place) is
    never touched. Returns the names renamed.
    """
    if db.applied(store) is not None:
        return []
    legacy = db.applied(store, tables.LEGACY_MIGRATIONS)
    if legacy is None or not set(legacy) <= tables.LEGACY_MIGRATION_FILES:
        return []
    if set(db.columns_of(store, tables.LEGACY_MIGRATIONS) or []) != {"name", "checksum", "applied_at"}:
        return []
    expected = _expected_columns(files)
    renamed = []
    for old, new in tables.LEGACY_NAMES.items():
        found = db.columns_of(store, old)
        if found is None or db.columns_of(store, new) is not None:
            continue
        if set(found) != set(expected.get(new, [])):
            log.warning(
                "leaving a table that is not the drainer's alone",
                extra={"event": "legacy_table_kept", "table": old, "columns": found},
            )
            continue
        db.run_statements(store, f"renaming {old} to {new}", _legacy_upgrade(store.dialect, old).statements())
        log.info("renamed a table of vitrage-drainer 0.1", extra={"event": "legacy_renamed", "table": old, "to": new})
        renamed.append(old)
    db.drop_legacy_migrations_table(store)
    return renamed


def _refuse_foreign_tables(store: Store, migration: Migration) -> None:
    for table, columns in migration.creates.items():
        found = db.columns_of(store, table)
        if found is not None and set(found) != set(columns):
            raise SchemaConflict(
                f"table {table} already exists with other columns ({', '.join(found)}) than "
                f"{migration.name} creates ({', '.join(columns)}); it is not the drainer's: "
                "rename or drop it, or point the drainer at another database"
            )


def migrate(store: Store, history: str | None = None) -> list[str]:
    """Apply every pending file; return the names applied (empty when up to date). With
    history="vitrage", also create Vitrage's alarm-history tables where none of them exists.

    Raises SchemaConflict when an applied file changed or a table the drainer would create already
    exists with another shape (nothing is created then).
    """
    files = migrations(store.dialect)
    upgrade_legacy_names(store, files)
    pending = _check_applied(db.applied(store) or {}, files)
    for migration in pending:
        _refuse_foreign_tables(store, migration)
    for migration in pending:
        db.apply(store, migration.name, migration.checksum, migration.statements())
        log.info("applied migration", extra={"event": "migration_applied", "migration": migration.name})
    names = [m.name for m in pending]
    if history == "vitrage":
        names += _vitrage_history_tables(store)
    return names


def _vitrage_history_tables(store: Store) -> list[str]:
    """Create Vitrage's alarms/edges/changes when none exists; use them as they are when all do."""
    from drainer.db import history as db_history

    found = db.table_columns(store, list(db_history.VITRAGE_TABLES))
    if found and len(found) < len(db_history.VITRAGE_TABLES):
        missing = sorted(set(db_history.VITRAGE_TABLES) - set(found))
        raise SchemaConflict(
            f"Vitrage's history tables are incomplete: {', '.join(sorted(found))} exist, "
            f"{', '.join(missing)} do not; run `vitrage-dbsync` (the drainer creates them only where none exists)"
        )
    if found:
        db_history.check_tables(store, db_history.build())
        return []
    migration = _read(_sql_root().joinpath(store.dialect).joinpath("vitrage").joinpath("history_tables.sql"))
    db.run_statements(store, "creating Vitrage's history tables", migration.statements())
    log.info("created Vitrage's history tables", extra={"event": "history_tables_created"})
    return [f"vitrage/{migration.name}"]


def check(store: Store, history: str | None = None) -> str:
    """Raise SchemaOutdated unless every file is applied and the columns a drain writes exist (with
    history="vitrage": also Vitrage's history tables); return the current version (the last file)."""
    files = migrations(store.dialect)
    applied = db.applied(store)
    if applied is None:
        raise SchemaOutdated("the database has no drainer schema: run `vitrage-drainer migrate`")
    pending = _check_applied(applied, files)
    if pending:
        raise SchemaOutdated(
            f"schema is behind ({', '.join(m.name for m in pending)} not applied): run `vitrage-drainer migrate`"
        )
    db.check_columns(store)
    if history == "vitrage":
        from drainer.db import history as db_history

        db_history.check_tables(store, db_history.build())
    return files[-1].name if files else ""
