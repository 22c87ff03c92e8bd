"""The per-queue lease: one row per queue in `drainer_leases`, taken and renewed with conditional
UPDATEs against the database's clock. Works on Galera, where GET_LOCK is refused (MDEV-30473) and
row locks do not cross nodes: two nodes updating the lease row conflict at certification."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from drainer.db.engine import Store, describe, error_number, is_lock_wait, step
from drainer.errors import LeaseLost

if TYPE_CHECKING:
    from sqlalchemy import Connection

log = logging.getLogger(__name__)


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


def acquire(
    store: Store, name: str, holder: str, ttl_s: float, is_dead: Callable[[str], bool] = lambda _h: False
) -> LeaseHolder | None:
    """Take the queue's lease; None on success, else the live drainer that holds it.

    A holder that `is_dead` (a killed run on this host) is taken over at once; any other holder
    keeps the lease until it expires. A lock on the lease row is "held" only when a non-locking
    read shows a live drainer there (one committing its batch); any other lock (LOCK TABLES from a
    backup, an open SQLite write transaction) is waited out within the retry budget like any
    transient error. Raises DatabaseLocked, DatabaseAccessDenied, DatabaseUnavailable.
    """
    from sqlalchemy.exc import DBAPIError

    def attempt() -> LeaseHolder | None:
        try:
            with store.writer.begin() as conn:
                _ensure_row(store, conn, name)
            current = _try_take(store, name, holder, ttl_s, None)
        except DBAPIError as exc:
            # 1213: on Galera, another node's drainer took the row first (certification conflict).
            live = _live_holder(store, name) if is_lock_wait(exc) or error_number(exc) == 1213 else None
            if live is not None:
                return live
            raise
        if current is not None and current.holder and is_dead(current.holder):
            log.warning(
                "taking over the lease of a drainer that is no longer running",
                extra={"event": "lease_takeover", "previous_holder": current.holder},
            )
            current = _try_take(store, name, holder, ttl_s, current.holder)
        return current

    return step(store, "taking the lease", attempt)


def _live_holder(store: Store, name: str) -> LeaseHolder | None:
    """The lease row's holder when it is a live drainer, by a read that takes no lock (InnoDB's
    consistent read; SQLite readers pass a writer's reserved lock); None when the row is free or
    expired, or when the read is blocked too (a WRITE table lock)."""
    from sqlalchemy import select
    from sqlalchemy.exc import DBAPIError

    t = store.t.leases
    try:
        with store.engine.connect() as conn:
            row = conn.execute(select(t.c.holder, t.c.expires_at).where(t.c.name == name)).first()
            now = store.now(conn)
    except DBAPIError:
        return None
    if row is None or row.holder is None or row.expires_at is None:
        return None
    expires = row.expires_at if isinstance(row.expires_at, datetime) else datetime.fromisoformat(str(row.expires_at))
    return LeaseHolder(row.holder, expires) if expires > now else None


def _try_take(store: Store, name: str, holder: str, ttl_s: float, dead: str | None) -> LeaseHolder | None:
    from sqlalchemy import select, update

    t = store.t.leases
    with store.writer.begin() as conn:
        now = store.now(conn)
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
        row = conn.execute(select(t.c.holder, t.c.expires_at).where(t.c.name == name)).first()
        if row is None:  # `lease release` removed the row meanwhile: the next run takes it
            return LeaseHolder("(lease row removed by lease release meanwhile)", None)
        return LeaseHolder(row.holder, row.expires_at)


def _ensure_row(store: Store, conn: Connection, name: str) -> None:
    t = store.t.leases
    epoch = datetime(1970, 1, 1)
    if store.dialect == "mysql":
        from sqlalchemy.dialects.mysql import insert

        conn.execute(insert(t).values(name=name, expires_at=epoch).on_duplicate_key_update(name=t.c.name))
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        conn.execute(sqlite_insert(t).values(name=name, expires_at=epoch).on_conflict_do_nothing())


def fence(store: Store, conn: Connection, lease: Lease) -> None:
    """Inside a transaction: renew the lease by its full ttl, or raise LeaseLost when it expired or
    was taken. Also locks the lease row until the transaction ends."""
    from sqlalchemy import update

    t = store.t.leases
    now = store.now(conn)
    result = conn.execute(
        update(t)
        .where(t.c.name == lease.name, t.c.holder == lease.holder, t.c.expires_at > now)
        .values(renewed_at=now, expires_at=now + timedelta(seconds=lease.ttl_s))
    )
    if result.rowcount != 1:
        raise LeaseLost(f"this run's lease on {lease.name!r} expired or was taken; batch not committed")


def renew(store: Store, lease: Lease, retrying: bool = True) -> None:
    """Extend the lease so it outlives the batch held now.

    Transient errors (a deadlock with a Galera peer, a failover) are retried like a batch unless
    `retrying` is False. Raises LeaseLost, DatabaseUnavailable, DatabaseAccessDenied.
    """

    def renew_once() -> None:
        with store.writer.begin() as conn:
            fence(store, conn, lease)

    step(store, "renewing the lease", renew_once, retrying)


def release(store: Store, lease: Lease) -> None:
    """Give the lease up so the next run need not wait for it to expire; best effort."""
    from sqlalchemy import update
    from sqlalchemy.exc import DBAPIError

    t = store.t.leases
    try:
        with store.writer.begin() as conn:
            conn.execute(
                update(t)
                .where(t.c.name == lease.name, t.c.holder == lease.holder)
                .values(holder=None, expires_at=store.now(conn))
            )
    except DBAPIError as exc:
        log.warning(
            "could not release the lease; it expires on its own",
            extra={"event": "lease_release_failed", "cause": describe(exc)},
        )


# Appended to a holder that keeps its lease after the run (`keep`): no longer a process, so no
# run on the same host takes it over early as the lease of a dead process.
AWAITING_REQUEUE = ":awaiting-broker-requeue"


def keep(store: Store, lease: Lease, seconds: float) -> None:
    """Instead of `release`: keep the lease `seconds` more under a holder that is no process, for
    a run that ended with deliveries the broker may still hold on a connection it has not yet
    seen die (it requeues them then, at the head of the queue). A run taking the lease earlier
    would store the messages behind them first. Best effort, like `release`."""
    from sqlalchemy import update
    from sqlalchemy.exc import DBAPIError

    t = store.t.leases
    try:
        with store.writer.begin() as conn:
            now = store.now(conn)
            conn.execute(
                update(t)
                .where(t.c.name == lease.name, t.c.holder == lease.holder)
                .values(
                    holder=lease.holder + AWAITING_REQUEUE,
                    renewed_at=now,
                    expires_at=now + timedelta(seconds=seconds),
                )
            )
    except DBAPIError as exc:
        log.warning(
            "could not keep the lease; it expires on its own",
            extra={"event": "lease_keep_failed", "cause": describe(exc)},
        )


def holder_of(store: Store, name: str) -> LeaseHolder | None:
    """The lease row of a queue as stored (holder None: free), or None when there is no row."""
    from sqlalchemy import select

    t = store.t.leases

    def read() -> LeaseHolder | None:
        with store.engine.connect() as conn:
            row = conn.execute(select(t.c.holder, t.c.expires_at).where(t.c.name == name)).first()
        return LeaseHolder(row.holder, row.expires_at) if row else None

    return step(store, "reading the lease", read)


def rows(store: Store) -> list[dict[str, Any]]:
    """Every lease row, by name, with the database's clock as `now`."""
    from sqlalchemy import select

    t = store.t.leases

    def read() -> list[dict[str, Any]]:
        with store.engine.connect() as conn:
            now = store.now(conn)
            found = conn.execute(select(t).order_by(t.c.name)).mappings().all()
        return [{**{k: _name(v) for k, v in r.items()}, "now": now} for r in found]

    return step(store, "reading the leases", read)


def _name(value: Any) -> Any:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def delete(store: Store, name: str, force: bool, dead_holder: str | None) -> bool:
    """Remove a queue's lease row when it is free, expired or held by `dead_holder` (any holder
    with `force`); True when removed. Waits (bounded by the lock wait timeout, then retried within
    the budget) for a batch that holds the row locked to end. Raises DatabaseAccessDenied (an
    account without DELETE), DatabaseLocked, DatabaseUnavailable."""
    from sqlalchemy import delete as delete_

    t = store.t.leases

    def attempt() -> bool:
        with store.writer.begin() as conn:
            condition = t.c.name == name
            if not force:
                free = t.c.holder.is_(None) | (t.c.expires_at <= store.now(conn))
                if dead_holder is not None:
                    free = free | (t.c.holder == dead_holder)
                condition = condition & free
            return bool(conn.execute(delete_(t).where(condition)).rowcount)

    return step(store, "releasing the lease", attempt)
