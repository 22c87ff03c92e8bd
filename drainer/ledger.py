"""`runs`: the run ledger as an operator reads it, each run with its state."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from drainer.db import lease as leases
from drainer.db import runs
from drainer.db.engine import Store


def iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="microseconds") + "Z" if value else None


def state(run: dict[str, Any], live_holder: str | None) -> str:
    """`ok`, `failed`, `running` (it holds its queue's lease now) or `no end recorded` (killed, or
    still starting: its counters are exact up to its last commit all the same)."""
    if run["exit_code"] is not None:
        return "ok" if run["exit_code"] == 0 else "failed"
    return "running" if live_holder is not None and live_holder == run["holder"] else "no end recorded"


def report(store: Store, queue: str | None, limit: int) -> list[dict[str, Any]]:
    """The newest `limit` runs, newest first, as plain values (times in ISO 8601 UTC)."""
    found = runs.recent(store, queue, limit)
    now = store.clock()
    live: dict[str, str | None] = {}
    for name in {r["queue"] for r in found if r["exit_code"] is None}:
        holder = leases.holder_of(store, name)
        live[name] = holder.holder if holder and holder.expires_at and holder.expires_at > now else None
    out = []
    for run in found:
        row = dict(run)
        row.pop("id")
        row["state"] = state(run, live.get(run["queue"]))
        if run["ended_at"] and run["started_at"]:
            row["duration_s"] = round((run["ended_at"] - run["started_at"]).total_seconds(), 3)
        else:
            row["duration_s"] = None
        for key in ("started_at", "ended_at", "first_commit_at", "last_commit_at"):
            row[key] = iso(run[key])
        out.append(row)
    return out
