"""`lease show` and `lease release`: the per-queue leases as an operator sees and clears them."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from drainer.db import lease as leases
from drainer.db.engine import Store
from drainer.errors import LeaseHeldByOther, RecordNotFound
from drainer.holder import holder_is_dead

log = logging.getLogger(__name__)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") + "Z" if value else None


def state(row: dict[str, Any]) -> str:
    """`free`, `expired` (its holder stopped renewing it), `held by a dead process` (this host, pid
    gone: the next run takes it over) or `held` (by a live drainer, or one on another host)."""
    if row["holder"] is None:
        return "free"
    if row["expires_at"] <= row["now"]:
        return "expired"
    return "held by a dead process" if holder_is_dead(row["holder"]) else "held"


def show(store: Store) -> list[dict[str, Any]]:
    """Every queue's lease with its state and the seconds it has left."""
    out = []
    for row in leases.rows(store):
        left = (row["expires_at"] - row["now"]).total_seconds()
        out.append(
            {
                "queue": row["name"],
                "state": state(row),
                "holder": row["holder"],
                "acquired_at": _iso(row["acquired_at"]),
                "renewed_at": _iso(row["renewed_at"]),
                "expires_at": _iso(row["expires_at"]) if row["holder"] else None,
                "expires_in_s": round(left) if row["holder"] and left > 0 else None,
            }
        )
    return out


def release(store: Store, queue: str, force: bool) -> dict[str, Any]:
    """Remove the queue's lease row. Refused (LeaseHeldByOther) while a live drainer holds it, unless
    `force`. Raises RecordNotFound when the queue has no lease row."""
    found = {r["queue"]: r for r in show(store)}
    row = found.get(queue)
    if row is None:
        raise RecordNotFound(f"no lease row for queue {queue!r} (see `vitrage-drainer lease show`)")
    dead = row["holder"] if row["state"] == "held by a dead process" else None
    if not leases.delete(store, queue, force, dead):
        raise LeaseHeldByOther(
            f"the lease of {queue!r} is held by {row['holder']} until {row['expires_at']}: that drainer releases "
            "it when its run ends, or it expires then; --force releases it now (see --help for what it risks)"
        )
    if row["state"] == "held":
        log.warning(
            "released a lease held by a live drainer",
            extra={"event": "lease_forced", "queue": queue, "holder": row["holder"]},
        )
    return row
