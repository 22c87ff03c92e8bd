"""The schema-migrations table, the columns a table really has, and the statements `migrate` runs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from drainer.db import tables
from drainer.db.engine import Store, is_missing_table, translated
from drainer.errors import SchemaOutdated
from drainer.model import utcnow

MIGRATIONS_DDL = {
    "mysql": (
        f"CREATE TABLE IF NOT EXISTS {tables.MIGRATIONS} ("
        " name VARCHAR(255) NOT NULL PRIMARY KEY, checksum CHAR(64) NOT NULL,"
        " applied_at DATETIME(6) NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
    ),
    "sqlite": (
        f"CREATE TABLE IF NOT EXISTS {tables.MIGRATIONS} ("
        " name TEXT NOT NULL PRIMARY KEY, checksum TEXT NOT NULL, applied_at TEXT NOT NULL)"
    ),
}


def applied(store: Store, table: str = tables.MIGRATIONS) -> dict[str, str] | None:
    """name -> checksum of the applied files, or None when the migrations table does not exist."""
    with translated(f"reading {table}"):
        from sqlalchemy import text
        from sqlalchemy.exc import DBAPIError

        with store.engine.connect() as conn:
            try:  # one query, no reflection: this runs at the start of every drain
                return dict(conn.execute(text(f"SELECT name, checksum FROM {table}")).all())
            except DBAPIError as exc:
                if is_missing_table(exc):
                    return None
                raise


def columns_of(store: Store, table: str) -> list[str] | None:
    """The table's column names in order, or None when it does not exist."""
    return table_columns(store, [table]).get(table)


def table_columns(store: Store, names: Sequence[str]) -> dict[str, list[str]]:
    """Existing tables among `names` -> their column names in order. Read from the catalogue
    (information_schema, PRAGMA), never from the table: a LOCK TABLES held by a backup must not
    block it."""
    from sqlalchemy import bindparam, text

    found: dict[str, list[str]] = {}
    rows: list[tuple[Any, Any]]
    with translated("reading the table catalogue"), store.engine.connect() as conn:
        if store.dialect == "mysql":
            rows = [
                tuple(r)
                for r in conn.execute(
                    text(
                        "SELECT table_name, column_name FROM information_schema.columns"
                        " WHERE table_schema = DATABASE() AND table_name IN :names"
                        " ORDER BY table_name, ordinal_position"
                    ).bindparams(bindparam("names", expanding=True)),
                    {"names": list(names)},
                )
            ]
        else:
            rows = [(n, row[1]) for n in names for row in conn.exec_driver_sql(f"PRAGMA table_info('{n}')")]
    for table, column in rows:
        found.setdefault(str(table), []).append(str(column))
    return found


def apply(store: Store, name: str, checksum: str, statements: Sequence[str]) -> None:
    """Run one file's statements and record it (DDL autocommits on MySQL: the record comes last)."""
    with translated(f"applying {name}"):
        from sqlalchemy import insert

        with store.writer.begin() as conn:
            conn.exec_driver_sql(MIGRATIONS_DDL[store.dialect])
        with store.writer.begin() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)
            conn.execute(insert(store.t.migrations).values(name=name, checksum=checksum, applied_at=utcnow()))


def run_statements(store: Store, what: str, statements: Sequence[str]) -> None:
    """Run statements in one transaction (on MySQL each DDL statement commits on its own)."""
    with translated(what), store.writer.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)


def drop_legacy_migrations_table(store: Store) -> None:
    """Drop 0.1's `schema_migrations` once its tables are renamed (the caller checked it is ours)."""
    run_statements(store, "dropping the legacy schema_migrations", [f"DROP TABLE {tables.LEGACY_MIGRATIONS}"])


def check_columns(store: Store) -> None:
    """Raise SchemaOutdated unless every column a drain writes exists (one catalogue query)."""
    written = tables.written_by_drain(store.t)
    found = table_columns(store, [t.name for t in written])
    for table in written:
        missing = [c.name for c in table.c if c.name not in found.get(table.name, [])]
        if table.name not in found:
            raise SchemaOutdated(f"table {table.name} does not exist: run `vitrage-drainer migrate`")
        if missing:
            raise SchemaOutdated(
                f"table {table.name} lacks the columns {', '.join(missing)} a drain writes: "
                "run `vitrage-drainer migrate`"
            )
