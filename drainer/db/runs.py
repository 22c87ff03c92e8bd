"""The run ledger, `drainer_runs`: one row per drain run, its counters brought up to date inside each
batch's own transaction, so the row is exact up to the run's last commit even when the run is killed.

Counters count committed batches only (a batch that was rolled back and returned adds nothing);
`rejected` includes oversize records, as the run summary does. Times are the database's clock.
"""

from __future__ import annotations

import bisect
import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from drainer.db.engine import Store, step
from drainer.errors import BatchNotCommitted
from drainer.model import utcnow

if TYPE_CHECKING:
    from sqlalchemy import Connection

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchCounts:
    """What one committed batch adds to its run's row."""

    fetched: int
    stored: int
    duplicates: int
    rejected: int
    oversize: int
    first_id: int | None
    last_id: int | None


def _now(store: Store, conn: Connection) -> Any:
    """The database's clock as a value for a write: an SQL expression on MySQL (no extra round
    trip inside the batch transaction), the local clock on SQLite (one host)."""
    if store.dialect == "mysql":
        from sqlalchemy import func

        return func.utc_timestamp(6)
    return utcnow()


def start(store: Store, run_id: str, holder: str, queue: str) -> None:
    """Insert the run's row (its own short transaction). Raises DatabaseAccessDenied (e.g. a drain
    account without INSERT on drainer_runs: re-run the grants after `migrate`), DatabaseUnavailable."""
    from sqlalchemy import insert, select
    from sqlalchemy.exc import IntegrityError

    t = store.t.runs

    def attempt() -> None:
        try:
            with store.writer.begin() as conn:
                conn.execute(insert(t).values(run_id=run_id, holder=holder, queue=queue, started_at=store.now(conn)))
        except IntegrityError:
            # A retry after a commit whose answer was lost: the row is there, which is all we want.
            with store.engine.connect() as conn:
                if conn.execute(select(t.c.id).where(t.c.run_id == run_id)).first() is None:
                    raise

    step(store, "recording the run in drainer_runs", attempt)


def record_batch(store: Store, conn: Connection, run_id: str, counts: BatchCounts) -> None:
    """Inside a batch's transaction: add the batch to its run's row. Raises BatchNotCommitted when
    the row is gone (the batch must not commit unrecorded)."""
    from sqlalchemy import func, update

    t = store.t.runs
    values: dict[str, Any] = {
        "batches": t.c.batches + 1,
        "fetched": t.c.fetched + counts.fetched,
        "stored": t.c.stored + counts.stored,
        "duplicates": t.c.duplicates + counts.duplicates,
        "rejected": t.c.rejected + counts.rejected,
        "oversize": t.c.oversize + counts.oversize,
    }
    if counts.stored:
        now = _now(store, conn)
        values.update(
            first_id=func.coalesce(t.c.first_id, counts.first_id),
            last_id=counts.last_id,
            first_commit_at=func.coalesce(t.c.first_commit_at, now),
            last_commit_at=now,
        )
    if conn.execute(update(t).where(t.c.run_id == run_id).values(**values)).rowcount != 1:
        raise BatchNotCommitted(f"the run's row {run_id!r} is missing from drainer_runs; batch not committed")


def finish(store: Store, run_id: str, exit_code: int, error: str | None, lease_holder: str | None) -> None:
    """Record how the run ended; best effort (a failure is logged: the counters are exact anyway)."""
    from sqlalchemy import update

    from drainer.errors import DrainerError

    t = store.t.runs

    def attempt() -> None:
        with store.writer.begin() as conn:
            conn.execute(
                update(t)
                .where(t.c.run_id == run_id)
                .values(ended_at=store.now(conn), exit_code=exit_code, error=error, lease_holder=lease_holder)
            )

    try:
        # One try: the run is ending, its deadline near; the counters are exact without it.
        step(store, "recording the run's end in drainer_runs", attempt, retrying=False)
    except DrainerError as exc:
        log.warning("could not record the run's end", extra={"event": "ledger_end_failed", "cause": str(exc)})


def _as_datetime(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def as_plain(row: Any) -> dict[str, Any]:
    """A drainer_runs row as a dict, its times as datetimes on every dialect."""
    record = dict(row._mapping)
    for key in ("started_at", "ended_at", "first_commit_at", "last_commit_at"):
        record[key] = _as_datetime(record[key])
    return record


def recent(store: Store, queue: str | None, limit: int) -> list[dict[str, Any]]:
    """The newest `limit` runs (of `queue`, or of every queue), newest first."""
    from sqlalchemy import select

    t = store.t.runs
    query = select(t).order_by(t.c.started_at.desc(), t.c.id.desc()).limit(limit)
    if queue is not None:
        query = query.where(t.c.queue == queue)

    def read() -> list[dict[str, Any]]:
        with store.engine.connect() as conn:
            return [as_plain(r) for r in conn.execute(query)]

    return step(store, "reading drainer_runs", read)


def last(store: Store, queue: str, successful: bool = False) -> dict[str, Any] | None:
    """The queue's newest run (with `successful`: the newest that exited 0), or None."""
    from sqlalchemy import select

    t = store.t.runs
    query = select(t).where(t.c.queue == queue).order_by(t.c.started_at.desc(), t.c.id.desc()).limit(1)
    if successful:
        query = query.where(t.c.exit_code == 0)

    def read() -> dict[str, Any] | None:
        with store.engine.connect() as conn:
            row = conn.execute(query).first()
        return as_plain(row) if row is not None else None

    return step(store, "reading drainer_runs", read)


def count_pruned(store: Store, conn: Connection, ids: Sequence[int]) -> None:
    """Inside a prune chunk's transaction: add each deleted event id (ascending) to the `pruned`
    counter of a run whose id range holds it, so `verify` still balances after a prune."""
    if not ids:
        return
    from sqlalchemy import select, update

    t = store.t.runs
    runs = conn.execute(
        select(t.c.id, t.c.first_id, t.c.last_id)
        .where(t.c.first_id <= ids[-1], t.c.last_id >= ids[0])
        .order_by(t.c.first_id)
    ).all()
    starts = [r.first_id for r in runs]
    per_run: Counter[int] = Counter()
    for event_id in ids:
        # Runs of one queue never overlap; runs of shards may: any run whose range holds the id will do.
        i = bisect.bisect_right(starts, event_id) - 1
        while i >= 0 and runs[i].last_id < event_id:
            i -= 1
        if i >= 0:
            per_run[runs[i].id] += 1
    for run, n in per_run.items():
        conn.execute(update(t).where(t.c.id == run).values(pruned=t.c.pruned + n))


def trim(store: Store, before: datetime, chunk: int, dry_run: bool) -> Iterator[int]:
    """Delete runs started before `before` (naive UTC) whose rows are all gone (they stored none,
    or `prune` deleted them: last_id below the smallest stored id), except each queue's newest
    successful run (what `status` shows), in chunks of `chunk` rows; yield each chunk's count
    (dry_run: one count). A run whose rows remain stays: `verify` balances it."""
    from sqlalchemy import delete, func, select, true

    t, events = store.t.runs, store.t.events

    def condition() -> Any:
        with store.engine.connect() as conn:
            keep = list(conn.execute(select(func.max(t.c.id)).where(t.c.exit_code == 0).group_by(t.c.queue)).scalars())
            lowest = conn.execute(select(func.min(events.c.id))).scalar_one()
        # With no event left at all, every run's rows are gone.
        gone = true() if lowest is None else t.c.first_id.is_(None) | (t.c.last_id < lowest)
        where = (t.c.started_at < before) & gone
        return where & t.c.id.not_in(keep) if keep else where

    where = step(store, "reading drainer_runs", condition)
    if dry_run:

        def count() -> int:
            with store.engine.connect() as conn:
                return int(conn.execute(select(func.count()).where(where)).scalar_one())

        yield step(store, "counting runs to prune", count)
        return

    def delete_chunk() -> int:
        with store.writer.begin() as conn:
            ids = conn.execute(select(t.c.id).where(where).order_by(t.c.id).limit(chunk)).scalars().all()
            if ids:
                conn.execute(delete(t).where(t.c.id.in_(ids)))
        return len(ids)

    while deleted := step(store, "pruning drainer_runs", delete_chunk):
        yield deleted
