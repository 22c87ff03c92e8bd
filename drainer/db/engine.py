"""The database connection of a run (`Store`) and how driver errors are classified.

MySQL/MariaDB errors are decided by number (PyMySQL raises OperationalError for transient and
permanent kinds alike); SQLite's by its message text, which is all sqlite3 gives.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from drainer import retry
from drainer.config import Settings, mask_url
from drainer.db import tables
from drainer.errors import (
    ConfigError,
    DatabaseAccessDenied,
    DatabaseLocked,
    DatabaseUnavailable,
    DrainerError,
    SchemaOutdated,
)
from drainer.model import utcnow

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

TRANSIENT_ERRORS = frozenset(
    {
        1205,  # lock wait timeout
        1213,  # deadlock
        1062,  # duplicate key: another writer stored it (lease broken); the retry filters it out
        2006,  # server has gone away
        2013,  # lost connection during query
        2003,  # can't connect (a failover in progress)
        1040,  # too many connections
        1047,  # WSREP has not yet prepared node for application use (Galera)
        1180,  # error during COMMIT, rolled back (Galera: the node left the primary component)
        1290,  # read-only (--read-only during failover)
        1792,  # read-only transaction
        1927,  # connection killed (MariaDB)
        4031,  # disconnected by the server for inactivity (MariaDB)
    }
)
# A connection that saw these must not go back to the pool: it may point at a node that went
# read-only, or be dead.
INVALIDATE_ERRORS = frozenset({1290, 1792, 2006, 2013, 1927, 4031, 1047, 1180})
DATA_ERRORS = frozenset(
    {
        1153,  # packet larger than max_allowed_packet
        1264,  # out of range
        1265,  # data truncated
        1292,  # incorrect datetime
        1366,  # incorrect string value (encoding)
        1406,  # data too long
        1048,  # column cannot be null
        3140,  # invalid JSON (MySQL)
        4025,  # CHECK constraint failed (MariaDB JSON_VALID)
    }
)
ACCESS_DENIED = frozenset({1044, 1045, 1142, 1143, 1698})
UNKNOWN_DATABASE = 1049
MISSING_TABLE = 1146
SQLITE_BUSY_WORDS = ("database is locked", "database table is locked")

WRITE = "drainer_write"  # execution option marking a writing connection (SQLite: BEGIN IMMEDIATE)


def error_number(exc: BaseException) -> int | None:
    """The server's error number behind a SQLAlchemy/PyMySQL exception, if any."""
    orig = getattr(exc, "orig", exc)
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int):
        return args[0]
    return None


def describe(exc: BaseException) -> str:
    """A one-line, password-free description of a database error (at most 500 characters)."""
    orig = getattr(exc, "orig", None) or exc
    return mask_url(f"{type(orig).__name__}: {orig}")[:500]


def is_transient(exc: BaseException) -> bool:
    """True for errors a retry on a fresh attempt can cure (locks, deadlocks, failovers)."""
    # A deadlock inside a savepoint rolls the whole transaction back; SQLAlchemy's ROLLBACK TO
    # SAVEPOINT then fails with 1305 and hides the 1213, which stays on the exception's context.
    seen: BaseException | None = exc
    for _ in range(4):
        if seen is None:
            return False
        if error_number(seen) in TRANSIENT_ERRORS:
            return True
        if any(word in str(getattr(seen, "orig", seen)) for word in SQLITE_BUSY_WORDS):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def is_data_error(exc: BaseException) -> bool:
    """True when the database refused a row's values (the row is set aside, the batch goes on)."""
    if isinstance(exc, UnicodeError):
        return True
    number = error_number(exc)
    if number in DATA_ERRORS:
        return True
    from sqlalchemy.exc import DataError, IntegrityError

    # SQLite reports CHECK and NOT NULL failures as IntegrityError without a number.
    return number is None and isinstance(exc, DataError | IntegrityError)


def is_missing_table(exc: BaseException) -> bool:
    return error_number(exc) == MISSING_TABLE or "no such table" in str(getattr(exc, "orig", exc))


# SQLite's refusals: a database file (or its directory) the process may read but not write.
SQLITE_REFUSED_WORDS = ("attempt to write a readonly database", "readonly database")
LOCK_WAIT_ERRORS = frozenset({1205})  # innodb_lock_wait_timeout and lock_wait_timeout (metadata locks)


def is_refusal(exc: BaseException) -> bool:
    """True when the database refuses this account or file something (a privilege, a read-only
    file): no retry can cure it; 77."""
    text = str(getattr(exc, "orig", exc))
    return error_number(exc) in ACCESS_DENIED or any(word in text for word in SQLITE_REFUSED_WORDS)


def is_lock_wait(exc: BaseException) -> bool:
    """True when a statement waited for a lock held by another session until its timeout."""
    return error_number(exc) in LOCK_WAIT_ERRORS or any(
        word in str(getattr(exc, "orig", exc)) for word in SQLITE_BUSY_WORDS
    )


def classified(exc: BaseException, what: str) -> DrainerError:
    """The one classification every database step shares, once its retries are spent:
    a refusal is DatabaseAccessDenied (77), a lock still held DatabaseLocked (75), anything
    else DatabaseUnavailable (69)."""
    if is_refusal(exc):
        return DatabaseAccessDenied(f"{what}: the database refused it: {describe(exc)}")
    if is_lock_wait(exc):
        return DatabaseLocked(
            f"{what}: still locked by another session after the retry budget (e.g. LOCK TABLES from "
            f"mysqldump --lock-tables, a long ALTER, an open SQLite write transaction): {describe(exc)}"
        )
    return DatabaseUnavailable(f"{what}: {describe(exc)}")


T = TypeVar("T")


def step(store: Store, what: str, attempt: Callable[[], T], retrying: bool = True) -> T:
    """Run one database step (connect, schema check, lease, a read, a prune chunk) the way the
    batch transaction runs: transient errors (locks, deadlocks, read-only during a failover, a
    connection the server dropped, also while it sat idle in the pool) are retried with fresh
    connections within --retry-seconds; then `classified`. `attempt` must take its own
    connection each time it is called."""
    from sqlalchemy.exc import DBAPIError

    def fresh_each_time() -> T:
        try:
            return attempt()
        except DBAPIError as exc:
            if error_number(exc) in INVALIDATE_ERRORS or exc.connection_invalidated:
                store.engine.dispose()  # pooled connections may point at the old primary, or be dead
            raise

    try:
        if not retrying:
            return fresh_each_time()
        policy = retry.bounded(what, store.settings.retry_seconds, is_transient, describe=describe)
        return policy(fresh_each_time)
    except DBAPIError as exc:
        raise classified(exc, what) from exc


@contextlib.contextmanager
def translated(what: str) -> Iterator[None]:
    """The shared classification for a step that cannot be repeated as a whole (a DDL file of
    `migrate`): no retry."""
    from sqlalchemy.exc import DBAPIError

    try:
        yield
    except DBAPIError as exc:
        raise classified(exc, what) from exc


def _engine(url: str, settings: Settings) -> Engine:
    from sqlalchemy import create_engine, event
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise ConfigError(f"database URL {mask_url(url)} is not a valid SQLAlchemy URL: {exc}") from exc
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise ConfigError(f"database URL {mask_url(url)} is not a valid URL: port {parsed.port} out of range 1-65535")
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(parsed, connect_args={"timeout": settings.lock_wait_timeout}, poolclass=None)

        @event.listens_for(engine, "connect")
        def _autocommit_off(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy emit BEGIN so SAVEPOINTs work (pysqlite's own handling breaks them).
            dbapi_conn.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            # Writers take the write lock up front, so a second writer waits (bounded) instead of
            # deadlocking; readers (status, events) must not take it and stall the drain.
            write = conn.get_execution_options().get(WRITE, False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine
    if parsed.get_backend_name() not in ("mysql", "mariadb") or parsed.get_driver_name() not in ("pymysql", "mysqldb"):
        raise ConfigError(f"unsupported database URL {mask_url(url)}: use mysql+pymysql:// or sqlite:///")
    if parsed.get_driver_name() == "mysqldb":
        # oslo.db's `mysql://` spelling: the drainer ships PyMySQL, not the MySQLdb C driver.
        parsed = parsed.set(drivername=f"{parsed.get_backend_name()}+pymysql")
    wait = int(settings.lock_wait_timeout)
    init = (
        "SET time_zone = '+00:00', "
        "sql_mode = 'STRICT_ALL_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION', "
        f"innodb_lock_wait_timeout = {wait}, lock_wait_timeout = {wait}"
    )
    try:
        return create_engine(
            parsed,
            pool_size=1,
            max_overflow=1,
            pool_pre_ping=False,
            connect_args={
                "charset": "utf8mb4",
                "connect_timeout": max(1, int(settings.connect_timeout)),
                "read_timeout": math.ceil(settings.socket_timeout),
                "write_timeout": math.ceil(settings.socket_timeout),
                "init_command": init,
            },
        )
    except (ArgumentError, ImportError, TypeError, ValueError) as exc:
        raise ConfigError(f"database URL {mask_url(url)} cannot be used: {exc}") from exc


class Store:
    """The database side of a run: one engine, the drainer's tables, the database's clock.

    The statements live in the modules beside this one (batch, lease, reads, ...), which take a
    Store; this class only owns the connection.
    """

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.writer = engine.execution_options(**{WRITE: True})
        self.dialect = "sqlite" if engine.dialect.name == "sqlite" else "mysql"
        self.settings = settings
        self.t = tables.build()

    @classmethod
    def open(cls, url: str, settings: Settings, create: bool = False) -> Store:
        """Connect (retrying transient failures within the budget) and return a Store. Only with
        `create` (migrate) may a SQLite file that does not exist be created.

        Raises ConfigError (a URL the driver refuses, a MySQL database or a SQLite folder that does not exist),
        SchemaOutdated (a SQLite file that does not exist), DatabaseAccessDenied, DatabaseUnavailable.
        """
        store = cls(_engine(url, settings), settings)
        store._require_sqlite_file(create)
        store._connect_check()
        return store

    def _require_sqlite_file(self, create: bool) -> None:
        # sqlite3 creates a missing file on connect: a typo would leave an empty file behind.
        path = self.engine.url.database if self.dialect == "sqlite" else None
        if not path or path == ":memory:" or path.startswith("file:") or Path(path).exists():
            return
        folder = Path(path).absolute().parent
        if not folder.is_dir():  # nothing creates folders: a setting to fix, not a schema to migrate
            raise ConfigError(f"the folder {folder} of SQLite database {path} does not exist: check the path")
        if not create:
            raise SchemaOutdated(
                f"SQLite database {path} does not exist: `vitrage-drainer migrate` creates it (or check the path)"
            )

    def where(self) -> str:
        """The database's URL without its password, for messages."""
        return mask_url(self.engine.url.render_as_string(hide_password=True))

    def _connect_check(self) -> None:
        from sqlalchemy import text
        from sqlalchemy.exc import DBAPIError

        def ping() -> None:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))

        policy = retry.bounded("database connect", self.settings.retry_seconds, is_transient, describe=describe)
        try:
            policy(ping)
        except TypeError as exc:  # an unknown ?option in the URL reaches the driver's connect()
            raise ConfigError(f"database URL {self.where()} has an option the driver refuses: {exc}") from exc
        except DBAPIError as exc:
            if is_refusal(exc):
                raise DatabaseAccessDenied(f"database refused access at {self.where()}: {describe(exc)}") from exc
            if error_number(exc) == UNKNOWN_DATABASE:  # the URL is wrong; migrate creates tables, not databases
                raise ConfigError(
                    f"database {self.engine.url.database!r} does not exist at {self.where()}: create it, or fix the URL"
                ) from exc
            raise DatabaseUnavailable(f"database unreachable at {self.where()}: {describe(exc)}") from exc

    def max_packet(self) -> int | None:
        """The server's max_allowed_packet in bytes (MySQL), to keep a row under it; None on SQLite."""
        if self.dialect != "mysql":
            return None
        from sqlalchemy import text

        def read() -> int:
            with self.engine.connect() as conn:
                return int(conn.execute(text("SELECT @@max_allowed_packet")).scalar_one())

        return step(self, "reading max_allowed_packet", read)

    def now(self, conn: Connection) -> datetime:
        """The database's clock, naive UTC (one clock for every drainer host)."""
        if self.dialect == "mysql":
            from sqlalchemy import text

            value = conn.execute(text("SELECT UTC_TIMESTAMP(6)")).scalar_one()
            return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        return utcnow()

    def clock(self) -> datetime:
        """The database's current time, naive UTC."""

        def read() -> datetime:
            with self.engine.connect() as conn:
                return self.now(conn)

        return step(self, "reading the clock", read)

    def dispose(self) -> None:
        self.engine.dispose()
