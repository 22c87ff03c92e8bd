"""The only module that holds SQL: engine, batch writes, rejected rows, lease, queries, migrations."""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from drainer import retry
from drainer.config import Settings, mask_url
from drainer.errors import (
    BatchNotCommitted,
    ConfigError,
    DatabaseAccessDenied,
    DatabaseUnavailable,
    LeaseLost,
)
from drainer.model import Event, Rejection, utcnow

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine, Table

log = logging.getLogger(__name__)

# MySQL/MariaDB error numbers, decided by number: PyMySQL raises OperationalError for both kinds.
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
        1290,  # read-only (--read-only during failover)
        1792,  # read-only transaction
        1927,  # connection killed (MariaDB)
        4031,  # disconnected by the server for inactivity (MariaDB)
    }
)
INVALIDATE_ERRORS = frozenset({1290, 1792, 2006, 2013, 1927, 4031, 1047})
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
SQLITE_BUSY_WORDS = ("database is locked", "database table is locked")

_WRITE = "drainer_write"  # execution option marking a writing connection (SQLite: BEGIN IMMEDIATE)
_INSERT_CHUNK = 1000  # rows per multi-row INSERT (PyMySQL splits each further at ~1 MB)
_LOOKUP_CHUNK = 1000  # keys per IN-list lookup of already stored rows


def error_number(exc: BaseException) -> int | None:
    """The server's error number behind a SQLAlchemy/PyMySQL exception, if any."""
    orig = getattr(exc, "orig", exc)
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int):
        return args[0]
    return None


def describe(exc: BaseException) -> str:
    """A one-line, password-free description of a database error."""
    orig = getattr(exc, "orig", None) or exc
    return mask_url(f"{type(orig).__name__}: {orig}")[:500]


def _is_transient(exc: BaseException) -> bool:
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


def _is_data_error(exc: BaseException) -> bool:
    if isinstance(exc, UnicodeError):
        return True
    number = error_number(exc)
    if number in DATA_ERRORS:
        return True
    from sqlalchemy.exc import DataError, IntegrityError

    # SQLite reports CHECK and NOT NULL failures as IntegrityError without a number.
    return number is None and isinstance(exc, DataError | IntegrityError)


@contextlib.contextmanager
def _translated(what: str) -> Iterator[None]:
    """Turn a driver error met while reading or maintaining into the drainer's own error."""
    from sqlalchemy.exc import DBAPIError

    try:
        yield
    except DBAPIError as exc:
        if error_number(exc) in ACCESS_DENIED:
            raise DatabaseAccessDenied(f"{what}: {describe(exc)}") from exc
        raise DatabaseUnavailable(f"{what}: {describe(exc)}") from exc


@dataclass(frozen=True)
class WriteResult:
    """What one committed batch transaction did."""

    stored: int
    duplicates: int
    rejected: int
    set_aside: int  # events the database refused, moved to rejected_messages
    first_id: int | None = None
    last_id: int | None = None


@dataclass(frozen=True)
class BatchHooks:
    """How the drain loop takes part in a write: service the broker, and allow interruption."""

    keepalive: Callable[[], None] = lambda: None
    before_commit: Callable[[], None] = lambda: None  # raises when the batch can no longer be acked
    interruptible: Callable[[], contextlib.AbstractContextManager[None]] = contextlib.nullcontext
    refuse: Callable[[Event, str], Rejection] | None = None


@dataclass(frozen=True)
class Lease:
    """This run's claim on a queue: only the holder writes batches for it."""

    name: str
    holder: str
    ttl_s: float  # every renewal (each batch, and its commit) extends the lease this far


@dataclass(frozen=True)
class LeaseHolder:
    holder: str | None
    expires_at: datetime | None


def _tables() -> dict[str, Table]:
    from sqlalchemy import (
        BigInteger,
        Boolean,
        Column,
        DateTime,
        Integer,
        LargeBinary,
        MetaData,
        String,
        Table,
        Text,
    )

    md = MetaData()
    big = BigInteger().with_variant(Integer(), "sqlite")
    return {
        "events": Table(
            "events",
            md,
            Column("id", big, primary_key=True, autoincrement=True),
            Column("message_id", String(255), nullable=False),
            Column("collector_timestamp", DateTime(), nullable=False),
            Column("event_type", String(255)),
            Column("publisher_id", String(255)),
            Column("priority", String(32)),
            Column("entity_type", String(255)),
            Column("entity_id", String(255)),
            Column("action", String(64)),
            Column("payload", Text(), nullable=False),
            Column("stored_at", DateTime(), nullable=False),
        ),
        "rejected": Table(
            "rejected_messages",
            md,
            Column("id", big, primary_key=True, autoincrement=True),
            Column("dedupe_key", String(255), nullable=False),
            Column("received_at", DateTime(), nullable=False),
            Column("queue", String(255), nullable=False),
            Column("exchange", String(255)),
            Column("routing_key", String(255)),
            Column("redelivered", Boolean()),
            Column("reason", Text(), nullable=False),
            Column("properties", Text()),
            Column("body", LargeBinary()),
            Column("body_size", BigInteger()),
            Column("body_sha256", String(64), nullable=False),
        ),
        "leases": Table(
            "drainer_leases",
            md,
            Column("name", String(255), primary_key=True),
            Column("holder", String(255)),
            Column("acquired_at", DateTime()),
            Column("renewed_at", DateTime()),
            Column("expires_at", DateTime(), nullable=False),
        ),
        "migrations": Table(
            "schema_migrations",
            md,
            Column("name", String(255), primary_key=True),
            Column("checksum", String(64), nullable=False),
            Column("applied_at", DateTime(), nullable=False),
        ),
    }


MIGRATIONS_DDL = {
    "mysql": (
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " name VARCHAR(255) NOT NULL PRIMARY KEY, checksum CHAR(64) NOT NULL,"
        " applied_at DATETIME(6) NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
    ),
    "sqlite": (
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " name TEXT NOT NULL PRIMARY KEY, checksum TEXT NOT NULL, applied_at TEXT NOT NULL)"
    ),
}


def _engine(url: str, settings: Settings) -> Engine:
    from sqlalchemy import create_engine, event
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise ConfigError(f"database URL {mask_url(url)} is not a valid SQLAlchemy URL: {exc}") from exc
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
            write = conn.get_execution_options().get(_WRITE, False)
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
        return _mysql_engine(create_engine, parsed, settings, init)
    except (ArgumentError, ImportError, TypeError, ValueError) as exc:
        raise ConfigError(f"database URL {mask_url(url)} cannot be used: {exc}") from exc


def _mysql_engine(create_engine: Any, parsed: Any, settings: Settings, init: str) -> Engine:
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


class Store:
    """The database side of a run: one engine, the drainer's tables, every statement."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self._writer = engine.execution_options(**{_WRITE: True})
        self.dialect = "sqlite" if engine.dialect.name == "sqlite" else "mysql"
        self._settings = settings
        self._t = _tables()

    @classmethod
    def open(cls, url: str, settings: Settings) -> Store:
        """Connect (retrying transient failures within the budget) and return a Store."""
        store = cls(_engine(url, settings), settings)
        store._connect_check()
        return store

    def _connect_check(self) -> None:
        from sqlalchemy import text
        from sqlalchemy.exc import DBAPIError

        def ping() -> None:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))

        where = mask_url(self.engine.url.render_as_string(hide_password=True))
        policy = retry.bounded("database connect", self._settings.retry_seconds, _is_transient, describe=describe)
        try:
            policy(ping)
        except TypeError as exc:  # an unknown ?option in the URL reaches the driver's connect()
            raise ConfigError(f"database URL {where} has an option the driver refuses: {exc}") from exc
        except DBAPIError as exc:
            number = error_number(exc)
            if number in ACCESS_DENIED:
                raise DatabaseAccessDenied(f"database refused access at {where}: {describe(exc)}") from exc
            raise DatabaseUnavailable(f"database unreachable at {where}: {describe(exc)}") from exc

    def max_packet(self) -> int | None:
        """The server's max_allowed_packet (MySQL), to keep a row under it."""
        if self.dialect != "mysql":
            return None
        from sqlalchemy import text

        with _translated("reading max_allowed_packet"), self.engine.connect() as conn:
            return int(conn.execute(text("SELECT @@max_allowed_packet")).scalar_one())

    def now(self, conn: Connection) -> datetime:
        """The database's clock in UTC (one clock for every drainer host)."""
        if self.dialect == "mysql":
            from sqlalchemy import text

            value = conn.execute(text("SELECT UTC_TIMESTAMP(6)")).scalar_one()
            return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        return utcnow()

    # -- migrations ---------------------------------------------------------------------------

    def applied_migrations(self) -> dict[str, str] | None:
        """name -> checksum of applied files, or None when the schema table does not exist."""
        with _translated("reading schema_migrations"):
            from sqlalchemy import select
            from sqlalchemy.exc import DBAPIError

            t = self._t["migrations"]
            with self.engine.connect() as conn:
                try:  # one query, no reflection: this runs at the start of every drain
                    return dict(conn.execute(select(t.c.name, t.c.checksum)).all())
                except DBAPIError as exc:
                    if error_number(exc) == 1146 or "no such table" in str(exc.orig):
                        return None
                    raise

    def apply_migration(self, name: str, checksum: str, statements: Sequence[str]) -> None:
        """Run one file's statements and record it (DDL autocommits on MySQL: record last)."""
        with _translated("applying a migration"):
            from sqlalchemy import insert

            with self._writer.begin() as conn:
                conn.exec_driver_sql(MIGRATIONS_DDL[self.dialect])
            with self._writer.begin() as conn:
                for statement in statements:
                    conn.exec_driver_sql(statement)
                conn.execute(insert(self._t["migrations"]).values(name=name, checksum=checksum, applied_at=utcnow()))

    # -- the batch ----------------------------------------------------------------------------

    def write_batch(
        self,
        queue: str,
        events: Sequence[Event],
        rejections: Sequence[Rejection],
        lease: Lease | None,
        hooks: BatchHooks,
    ) -> WriteResult:
        """Store a batch in ONE transaction, retrying transient errors within the budget."""
        from sqlalchemy.exc import DBAPIError

        def between_attempts() -> None:
            hooks.keepalive()
            if lease is not None:
                # The messages are still held: keep the lease ahead of them. One try only, inside
                # this retry's budget (a failure fails this batch, and the batch is returned).
                self.renew_lease(lease, retrying=False)

        policy = retry.bounded(
            "batch transaction",
            self._settings.retry_seconds,
            _is_transient,
            between=between_attempts,
            describe=describe,
        )
        try:
            return policy(self._write_once, queue, events, rejections, lease, hooks)
        except DBAPIError as exc:
            raise BatchNotCommitted(f"batch not committed: {describe(exc)}") from exc

    def _write_once(
        self,
        queue: str,
        events: Sequence[Event],
        rejections: Sequence[Rejection],
        lease: Lease | None,
        hooks: BatchHooks,
    ) -> WriteResult:
        from sqlalchemy.exc import DBAPIError

        conn = self._writer.connect()
        try:
            with conn.begin():
                with hooks.interruptible():
                    if lease is not None:
                        # First, too: the lease row stays locked for the whole attempt, so nobody can
                        # take the lease while this batch is being written, however slow it is.
                        self._fence(conn, lease)
                    fresh = self._new_only(conn, self._t["events"].c.message_id, events, "message_id")
                    refused = self._insert_events(conn, fresh)
                    set_aside = [self._refusal(hooks, event, reason) for event, reason in refused]
                    all_rejections = [*rejections, *set_aside]
                    new_rejections = self._new_only(
                        conn, self._t["rejected"].c.dedupe_key, all_rejections, "dedupe_key"
                    )
                    self._insert_rejections(conn, queue, new_rejections)
                    first_id, last_id = self._id_range(conn, fresh, refused)
                    # Fence last: the lease row stays locked only for the commit, and is checked at it.
                    if lease is not None:
                        self._fence(conn, lease)
                # Outside the interruptible part: a signal must not land inside pika's frame handling.
                hooks.before_commit()
                # leaving the block commits; a signal now waits for the commit to finish
            stored = len(fresh) - len(refused)
            return WriteResult(
                stored=stored,
                duplicates=(len(events) - len(fresh)) + (len(all_rejections) - len(new_rejections)),
                rejected=len(new_rejections),
                set_aside=len(refused),
                first_id=first_id,
                last_id=last_id,
            )
        except DBAPIError as exc:
            if error_number(exc) in INVALIDATE_ERRORS:
                conn.invalidate()  # never reuse a connection to a node that went read-only
            raise
        finally:
            conn.close()

    def _refusal(self, hooks: BatchHooks, event: Event, reason: str) -> Rejection:
        if hooks.refuse is None:
            raise BatchNotCommitted(f"the database refused event {event.message_id}: {reason}")
        log.warning(
            "database refused an event; setting it aside",
            extra={"event": "row_refused", "message_id": event.message_id, "reason": reason},
        )
        return hooks.refuse(event, "database refused the row: " + reason)

    def _fence(self, conn: Connection, lease: Lease) -> None:
        from sqlalchemy import update

        t = self._t["leases"]
        now = self.now(conn)
        result = conn.execute(
            update(t)
            .where(t.c.name == lease.name, t.c.holder == lease.holder, t.c.expires_at > now)
            .values(renewed_at=now, expires_at=now + timedelta(seconds=lease.ttl_s))
        )
        if result.rowcount != 1:
            raise LeaseLost(f"this run's lease on {lease.name!r} expired or was taken; batch not committed")

    def renew_lease(self, lease: Lease, retrying: bool = True) -> None:
        """Extend the lease so it outlives the batch held now; LeaseLost if it is gone. Transient
        errors (a deadlock with a Galera peer, a failover) are retried like a batch."""
        from sqlalchemy.exc import DBAPIError

        def renew_once() -> None:
            conn = self._writer.connect()
            try:
                with conn.begin():
                    self._fence(conn, lease)
            except DBAPIError as exc:
                if error_number(exc) in INVALIDATE_ERRORS:
                    conn.invalidate()
                raise
            finally:
                conn.close()

        with _translated("renewing the lease"):
            if not retrying:
                renew_once()
                return
            policy = retry.bounded("lease renewal", self._settings.retry_seconds, _is_transient, describe=describe)
            policy(renew_once)

    def _new_only(self, conn: Connection, column: Any, items: Sequence[Any], attr: str) -> list[Any]:
        """Items whose key is not stored yet (duplicates in `items` were removed by the caller)."""
        if not items:
            return []
        from sqlalchemy import select

        keys = [getattr(i, attr) for i in items]
        existing: set[str] = set()
        for start in range(0, len(keys), _LOOKUP_CHUNK):
            chunk = keys[start : start + _LOOKUP_CHUNK]
            existing.update(conn.execute(select(column).where(column.in_(chunk))).scalars())
        return [i for i in items if getattr(i, attr) not in existing]

    def _events_insert(self) -> Any:
        t = self._t["events"]
        if self.dialect == "mysql":
            from sqlalchemy import insert

            # Plain INSERT: stored keys were filtered out under the lease, so a key conflict (1062)
            # means a broken lease and is retried (the retry filters it). Unlike INSERT IGNORE it
            # hides no truncation, and unlike ON DUPLICATE KEY UPDATE the drain user needs no UPDATE.
            return insert(t)
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(t).on_conflict_do_nothing(index_elements=["message_id"])

    def _insert_events(self, conn: Connection, events: Sequence[Event]) -> list[tuple[Event, str]]:
        """Insert in queue order; rows the database refuses are found by bisection and returned."""
        if not events:
            return []
        from sqlalchemy.exc import DBAPIError, StatementError

        now = utcnow()
        statement = self._events_insert()

        def rows(lo: int, hi: int) -> list[dict[str, Any]]:
            return [
                {
                    "message_id": e.message_id,
                    "collector_timestamp": e.collector_timestamp,
                    "event_type": e.event_type,
                    "publisher_id": e.publisher_id,
                    "priority": e.priority,
                    "entity_type": e.entity_type,
                    "entity_id": e.entity_id,
                    "action": e.action,
                    "payload": e.payload,
                    "stored_at": now,
                }
                for e in events[lo:hi]
            ]

        def attempt(lo: int, hi: int) -> list[tuple[Event, str]]:
            try:
                with conn.begin_nested():
                    conn.execute(statement, rows(lo, hi))
                return []
            except (DBAPIError, StatementError, UnicodeError) as exc:
                # StatementError wraps driver-side failures such as an unencodable string.
                if not (_is_data_error(exc) or _is_data_error(getattr(exc, "orig", None) or exc)):
                    raise
                if hi - lo == 1:
                    return [(events[lo], describe(exc))]
                mid = (lo + hi) // 2
                return attempt(lo, mid) + attempt(mid, hi)

        # Chunks of the batch, in order, in the same transaction: the row dicts and the statement
        # text of one chunk at a time are alive, not those of the whole batch.
        refused: list[tuple[Event, str]] = []
        for lo in range(0, len(events), _INSERT_CHUNK):
            refused += attempt(lo, min(lo + _INSERT_CHUNK, len(events)))
        return refused

    def _insert_rejections(self, conn: Connection, queue: str, rejections: Sequence[Rejection]) -> None:
        if not rejections:
            return
        from sqlalchemy import insert

        conn.execute(
            insert(self._t["rejected"]),
            [
                {
                    "dedupe_key": r.dedupe_key,
                    "received_at": r.received_at,
                    "queue": queue,
                    "exchange": r.exchange,
                    "routing_key": r.routing_key,
                    "redelivered": r.redelivered,
                    "reason": r.reason,
                    "properties": r.properties,
                    "body": r.body,
                    "body_size": r.body_size,
                    "body_sha256": r.body_sha256,
                }
                for r in rejections
            ],
        )

    def _id_range(
        self, conn: Connection, fresh: Sequence[Event], refused: Sequence[tuple[Event, str]]
    ) -> tuple[int | None, int | None]:
        if len(fresh) == len(refused):
            return None, None
        from sqlalchemy import func, select

        t = self._t["events"]
        refused_ids = {e.message_id for e, _ in refused}
        keys = [e.message_id for e in fresh if e.message_id not in refused_ids]
        lo, hi = conn.execute(
            select(func.min(t.c.id), func.max(t.c.id)).where(t.c.message_id.in_([keys[0], keys[-1]]))
        ).one()
        return lo, hi

    # -- the lease ----------------------------------------------------------------------------

    def acquire_lease(
        self, name: str, holder: str, ttl_s: float, is_dead: Callable[[str], bool] = lambda _h: False
    ) -> LeaseHolder | None:
        """Take the queue's lease; None on success, else who holds it and until when.

        A holder that `is_dead` (a killed run on this host) is taken over at once; any other
        holder keeps the lease until it expires.
        """
        from sqlalchemy.exc import DBAPIError

        try:
            with self._writer.begin() as conn:
                self._ensure_lease_row(conn, name)
            current = self._try_take(name, holder, ttl_s, None)
            if current is not None and current.holder and is_dead(current.holder):
                log.warning(
                    "taking over the lease of a drainer that is no longer running",
                    extra={"event": "lease_takeover", "previous_holder": current.holder},
                )
                current = self._try_take(name, holder, ttl_s, current.holder)
            return current
        except DBAPIError as exc:
            if error_number(exc) in (1205, 1213) or _is_transient(exc) and "locked" in str(exc):
                # Another transaction holds the lease row (a drainer committing its batch) right now.
                return LeaseHolder("(lease row locked by another transaction)", None)
            raise DatabaseUnavailable(f"could not take the lease: {describe(exc)}") from exc

    def _try_take(self, name: str, holder: str, ttl_s: float, dead: str | None) -> LeaseHolder | None:
        from sqlalchemy import select, update

        t = self._t["leases"]
        with self._writer.begin() as conn:
            now = self.now(conn)
            free = (t.c.holder.is_(None)) | (t.c.expires_at <= now)
            if dead is not None:
                free = free | (t.c.holder == dead)
            taken = conn.execute(
                update(t)
                .where(t.c.name == name, free)
                .values(holder=holder, acquired_at=now, renewed_at=now, expires_at=now + timedelta(seconds=ttl_s))
            ).rowcount
            if taken == 1:
                return None
            row = conn.execute(select(t.c.holder, t.c.expires_at).where(t.c.name == name)).one()
            return LeaseHolder(row.holder, row.expires_at)

    def _ensure_lease_row(self, conn: Connection, name: str) -> None:
        t = self._t["leases"]
        epoch = datetime(1970, 1, 1)
        if self.dialect == "mysql":
            from sqlalchemy.dialects.mysql import insert

            conn.execute(insert(t).values(name=name, expires_at=epoch).on_duplicate_key_update(name=t.c.name))
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            conn.execute(sqlite_insert(t).values(name=name, expires_at=epoch).on_conflict_do_nothing())

    def release_lease(self, lease: Lease) -> None:
        """Give the lease up so the next run need not wait for it to expire."""
        from sqlalchemy import update
        from sqlalchemy.exc import DBAPIError

        t = self._t["leases"]
        try:
            with self._writer.begin() as conn:
                conn.execute(
                    update(t)
                    .where(t.c.name == lease.name, t.c.holder == lease.holder)
                    .values(holder=None, expires_at=self.now(conn))
                )
        except DBAPIError as exc:
            log.warning(
                "could not release the lease; it expires on its own",
                extra={"event": "lease_release_failed", "cause": describe(exc)},
            )

    # -- reads and maintenance ------------------------------------------------------------------

    def overview(self) -> dict[str, Any]:
        """Counts and extremes for `status`: events, last id, newest timestamp, rejected."""
        with _translated("reading the status"):
            from sqlalchemy import func, select

            events, rejected = self._t["events"], self._t["rejected"]
            with self.engine.connect() as conn:
                count, last_id = conn.execute(select(func.count(), func.max(events.c.id))).one()
                newest = conn.execute(select(func.max(events.c.collector_timestamp))).scalar_one()
                rejected_count = conn.execute(select(func.count()).select_from(rejected)).scalar_one()
            if isinstance(newest, str):
                newest = datetime.fromisoformat(newest)
            return {"events": count, "last_event_id": last_id, "newest": newest, "rejected": rejected_count}

    def clock(self) -> datetime:
        """The database's current UTC time."""
        with _translated("reading the clock"), self.engine.connect() as conn:
            return self.now(conn)

    def lease_of(self, name: str) -> LeaseHolder | None:
        with _translated("reading the lease"):
            from sqlalchemy import select

            t = self._t["leases"]
            with self.engine.connect() as conn:
                row = conn.execute(select(t.c.holder, t.c.expires_at).where(t.c.name == name)).first()
            return LeaseHolder(row.holder, row.expires_at) if row else None

    def iter_events(
        self,
        after_id: int | None,
        since: datetime | None,
        until: datetime | None,
        limit: int | None,
        page: int = 1000,
    ) -> Iterator[Any]:
        """Events in id order, read in keyset pages so memory stays constant for any table size."""
        with _translated("reading events"):
            from sqlalchemy import select

            t = self._t["events"]
            columns = (t.c.id, t.c.collector_timestamp, t.c.message_id, t.c.event_type, t.c.payload)
            last = after_id if after_id is not None else -1
            left = limit
            while left is None or left > 0:
                size = page if left is None else min(page, left)
                query = select(*columns).where(t.c.id > last)
                if since is not None:
                    query = query.where(t.c.collector_timestamp >= since)
                if until is not None:
                    query = query.where(t.c.collector_timestamp < until)
                with self.engine.connect() as conn:
                    rows = conn.execute(query.order_by(t.c.id).limit(size)).all()
                yield from rows
                if len(rows) < size:
                    return
                last = rows[-1].id
                if left is not None:
                    left -= len(rows)

    def prune(self, before_id: int | None, older_than: datetime | None, chunk: int, dry_run: bool) -> Iterator[int]:
        """Delete matching events in chunks, one short transaction each; yield each chunk's count."""
        with _translated("pruning events"):
            from sqlalchemy import delete, func, select

            t = self._t["events"]
            condition = t.c.id < before_id if before_id is not None else t.c.collector_timestamp < older_than
            if dry_run:
                with self.engine.connect() as conn:
                    yield conn.execute(select(func.count()).where(condition)).scalar_one()
                return
            while True:
                with self._writer.begin() as conn:
                    ids = conn.execute(select(t.c.id).where(condition).order_by(t.c.id).limit(chunk)).scalars().all()
                    if not ids:
                        return
                    conn.execute(delete(t).where(t.c.id.in_(ids)))
                yield len(ids)

    def dispose(self) -> None:
        self.engine.dispose()
