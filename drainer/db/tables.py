"""The drainer's tables: every name the drainer owns is `drainer_*`, so it can share Vitrage's database."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import Table

EVENTS = "drainer_events"
REJECTED = "drainer_rejected_messages"
LEASES = "drainer_leases"
MIGRATIONS = "drainer_schema_migrations"
RUNS = "drainer_runs"
HISTORY_OUTCOMES = "drainer_history_outcomes"  # what --history vitrage applied to Vitrage's tables

# Names an earlier release (0.1) gave its tables, and what they are called now. `events` and
# `schema_migrations` are also names other software uses (Vitrage's own `events` table since Rocky),
# so a legacy table is only renamed when its columns are exactly the drainer's.
LEGACY_NAMES = {"events": EVENTS, "rejected_messages": REJECTED}
LEGACY_MIGRATIONS = "schema_migrations"
LEGACY_MIGRATION_FILES = frozenset({"001_events.sql"})

# The ledger's counters, in the order of a run's summary record.
RUN_COUNTERS = ("batches", "fetched", "stored", "duplicates", "rejected", "oversize", "pruned")


@dataclass(frozen=True)
class Tables:
    """SQLAlchemy Core tables, built once per connection handle (not at import time)."""

    events: Table
    rejected: Table
    leases: Table
    migrations: Table
    runs: Table


def build() -> Tables:
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
    return Tables(
        events=Table(
            EVENTS,
            md,
            Column("id", big, primary_key=True, autoincrement=True),
            Column("message_id", String(255), nullable=False),
            Column("collector_timestamp", DateTime(), nullable=False),
            Column("event_type", String(255)),
            Column("publisher_id", String(255)),
            Column("priority", String(32)),
            Column("entity_type", String(255)),
            Column("entity_id", String(255)),
            Column("entity_category", String(64)),
            Column("related_id", String(255)),
            Column("action", String(64)),
            Column("payload", Text(), nullable=False),
            Column("stored_at", DateTime(), nullable=False),
        ),
        rejected=Table(
            REJECTED,
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
            Column("republished_at", DateTime()),
            Column("republished_to", String(255)),
            Column("republished_sha256", String(64)),
        ),
        leases=Table(
            LEASES,
            md,
            Column("name", String(255), primary_key=True),
            Column("holder", String(255)),
            Column("acquired_at", DateTime()),
            Column("renewed_at", DateTime()),
            Column("expires_at", DateTime(), nullable=False),
        ),
        migrations=Table(
            MIGRATIONS,
            md,
            Column("name", String(255), primary_key=True),
            Column("checksum", String(64), nullable=False),
            Column("applied_at", DateTime(), nullable=False),
        ),
        runs=Table(
            RUNS,
            md,
            Column("id", big, primary_key=True, autoincrement=True),
            Column("run_id", String(64), nullable=False),
            Column("holder", String(255), nullable=False),
            Column("queue", String(255), nullable=False),
            Column("started_at", DateTime(), nullable=False),
            Column("ended_at", DateTime()),
            Column("exit_code", Integer()),
            Column("error", String(64)),
            Column("lease_holder", String(255)),
            *(Column(name, BigInteger(), nullable=False, default=0) for name in RUN_COUNTERS),
            Column("first_id", BigInteger()),
            Column("last_id", BigInteger()),
            Column("first_commit_at", DateTime()),
            Column("last_commit_at", DateTime()),
        ),
    )


def written_by_drain(t: Tables) -> list[Table]:
    """The tables a drain writes, whose every column must exist before it fetches anything."""
    return [t.events, t.rejected, t.leases, t.runs]
