"""`drainer_rejected_messages` for operators: list, show, mark republished. A row is pending until
`rejected republish` (or `oversize requeue`, for an oversize record) marks it; nothing is deleted."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from drainer.db.engine import Store, step

OVERSIZE_KEY_PREFIX = "oversize:"  # dedupe keys of oversize records (envelope.rejection)


def _row(row: Any) -> dict[str, Any]:
    record = dict(row._mapping)
    for key in ("received_at", "republished_at"):
        if isinstance(record.get(key), str):
            record[key] = datetime.fromisoformat(record[key])
    if isinstance(record.get("body"), memoryview):
        record["body"] = bytes(record["body"])
    return record


def pending_count(store: Store) -> int:
    """Rows not republished yet. Raises DatabaseUnavailable, DatabaseAccessDenied."""
    from sqlalchemy import func, select

    t = store.t.rejected

    def read() -> int:
        with store.engine.connect() as conn:
            return int(conn.execute(select(func.count()).where(t.c.republished_at.is_(None))).scalar_one())

    return step(store, "counting pending rejections", read)


def listing(
    store: Store, since: datetime | None, reason: str | None, limit: int, everything: bool
) -> list[dict[str, Any]]:
    """Rows newest first, without their bodies: pending only unless `everything`; received at or
    after `since` (naive UTC); whose reason contains `reason` (case-insensitive)."""
    from sqlalchemy import func, select

    t = store.t.rejected
    columns = [c for c in t.c if c.name not in ("body", "properties")]
    query = select(*columns).order_by(t.c.id.desc()).limit(limit)
    if not everything:
        query = query.where(t.c.republished_at.is_(None))
    if since is not None:
        query = query.where(t.c.received_at >= since)
    if reason:
        query = query.where(func.lower(t.c.reason).contains(reason.lower(), autoescape=True))

    def read() -> list[dict[str, Any]]:
        with store.engine.connect() as conn:
            return [_row(row) for row in conn.execute(query)]

    return step(store, "reading drainer_rejected_messages", read)


def get(store: Store, row_id: int) -> dict[str, Any] | None:
    """One row with its body and properties, or None."""
    from sqlalchemy import select

    t = store.t.rejected

    def read() -> dict[str, Any] | None:
        with store.engine.connect() as conn:
            row = conn.execute(select(t).where(t.c.id == row_id)).first()
        return _row(row) if row is not None else None

    return step(store, "reading drainer_rejected_messages", read)


def mark_republished(store: Store, row_id: int, queue: str, sha256: str) -> None:
    """Record that the row's message was published again (after the broker confirmed it).
    Raises DatabaseAccessDenied (an account without UPDATE: republish is an operator's action)."""
    from sqlalchemy import update

    t = store.t.rejected

    def attempt() -> None:
        with store.writer.begin() as conn:
            conn.execute(
                update(t)
                .where(t.c.id == row_id)
                .values(republished_at=store.now(conn), republished_to=queue, republished_sha256=sha256)
            )

    step(store, "marking the rejected row republished", attempt)


def check_markable(store: Store, row_id: int) -> None:
    """Raise DatabaseAccessDenied now, before anything is published, when this account may not
    mark the row (an UPDATE that changes nothing, rolled back; row 0 checks the privilege alone)."""
    from sqlalchemy import update

    t = store.t.rejected

    def attempt() -> None:
        with store.writer.connect() as conn, conn.begin() as transaction:
            conn.execute(update(t).where(t.c.id == row_id).values(republished_at=t.c.republished_at))
            transaction.rollback()

    step(store, "checking that rejected rows can be marked", attempt)


def mark_oversize_requeued(store: Store, sha256: str, queue: str) -> int:
    """Mark the pending oversize records of a body (by its SHA-256) as published to `queue`;
    return how many rows."""
    from sqlalchemy import update

    t = store.t.rejected

    def attempt() -> int:
        with store.writer.begin() as conn:
            return int(
                conn.execute(
                    update(t)
                    .where(
                        t.c.body_sha256 == sha256,
                        t.c.dedupe_key.startswith(OVERSIZE_KEY_PREFIX),
                        t.c.republished_at.is_(None),
                    )
                    .values(republished_at=store.now(conn), republished_to=queue, republished_sha256=sha256)
                ).rowcount
            )

    return step(store, "marking oversize records requeued", attempt)


def oversize_parked_at(store: Store, digests: list[str]) -> dict[str, datetime]:
    """SHA-256 -> when the drainer first parked a body with that digest (its oversize record), for
    the digests that have one. One query (the table holds few oversize rows)."""
    if not digests:
        return {}
    from sqlalchemy import func, select

    t = store.t.rejected

    def read() -> list[Any]:
        with store.engine.connect() as conn:
            return list(
                conn.execute(
                    select(t.c.body_sha256, func.min(t.c.received_at))
                    .where(t.c.body_sha256.in_(sorted(set(digests))), t.c.dedupe_key.startswith(OVERSIZE_KEY_PREFIX))
                    .group_by(t.c.body_sha256)
                ).all()
            )

    rows = step(store, "reading drainer_rejected_messages", read)
    return {digest: datetime.fromisoformat(at) if isinstance(at, str) else at for digest, at in rows}
