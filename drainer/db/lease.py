"""The per-queue lease: one row per queue in `drainer_leases`, taken and renewed with conditional
UPDATEs against the database's clock. Works on Galera, where GET_LOCK is refused (MDEV-30473) and
row locks do not cross nodes: two nodes updating the lease row conflict at certification."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from drainer import retry
from drainer.db.engine import INVALIDATE_ERRORS, Store, describe, error_number, is_transient, translated
from drainer.errors import DatabaseUnavailable, LeaseLost

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
    """Take the queue's lease; None on success, else who holds it and until when.

    A holder that `is_dead` (a killed run on this host) is taken over at once; any other holder
    keeps the lease until it expires. Raises DatabaseUnavailable.
    """
    from sqlalchemy.exc import DBAPIError

    try:
        with store.writer.begin() as conn:
            _ensure_row(store, conn, name)
        current = _try_take(store, name, holder, ttl_s, None)
        if current is not None and current.holder and is_dead(current.holder):
            log.warning(
                "taking over the lease of a drainer that is no longer running",
                extra={"event": "lease_takeover", "previous_holder": current.holder},
            )
            current = _try_take(store, name, holder, ttl_s, current.holder)
        return current
    except DBAPIError as exc:
        if error_number(exc) in (1205, 1213) or is_transient(exc) and "locked" in str(exc):
            # Another transaction holds the lease row (a drainer committing its batch) right now.
            return LeaseHolder("(lease row locked by another transaction)", None)
        raise DatabaseUnavailable(f"could not take the lease: {describe(exc)}") from exc


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
    from sqlalchemy.exc import DBAPIError

    def renew_once() -> None:
        conn = store.writer.connect()
        try:
            with conn.begin():
                fence(store, conn, lease)
        except DBAPIError as exc:
            if error_number(exc) in INVALIDATE_ERRORS:
                conn.invalidate()
            raise
        finally:
            conn.close()

    with translated("renewing the lease"):
        if not retrying:
            renew_once()
            return
        policy = retry.bounded("lease renewal", store.settings.retry_seconds, is_transient, describe=describe)
        policy(renew_once)


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


def holder_of(store: Store, name: str) -> LeaseHolder | None:
    """The lease row of a queue as stored (holder None: free), or None when there is no row."""
    with translated("reading the lease"):
        from sqlalchemy import select

        t = store.t.leases
        with store.engine.connect() as conn:
            row = conn.execute(select(t.c.holder, t.c.expires_at).where(t.c.name == name)).first()
        return LeaseHolder(row.holder, row.expires_at) if row else None


def rows(store: Store) -> list[dict[str, Any]]:
    """Every lease row, by name, with the database's clock as `now`."""
    with translated("reading the leases"):
        from sqlalchemy import select

        t = store.t.leases
        with store.engine.connect() as conn:
            now = store.now(conn)
            found = conn.execute(select(t).order_by(t.c.name)).mappings().all()
        return [{**{k: _name(v) for k, v in r.items()}, "now": now} for r in found]


def _name(value: Any) -> Any:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def delete(store: Store, name: str, force: bool, dead_holder: str | None) -> bool:
    """Remove a queue's lease row when it is free, expired or held by `dead_holder` (any holder
    with `force`); True when removed. Waits (bounded by the lock wait timeout) for a batch that
    holds the row locked to end. Raises DatabaseAccessDenied (an account without DELETE)."""
    with translated("releasing the lease"):
        from sqlalchemy import delete as delete_

        t = store.t.leases
        with store.writer.begin() as conn:
            condition = t.c.name == name
            if not force:
                free = t.c.holder.is_(None) | (t.c.expires_at <= store.now(conn))
                if dead_holder is not None:
                    free = free | (t.c.holder == dead_holder)
                condition = condition & free
            return bool(conn.execute(delete_(t).where(condition)).rowcount)
