-- The run ledger: one row per drain run, its counters brought up to date inside each batch's own
-- transaction; ended_at, exit_code and error are written when the run ends (best effort).
CREATE TABLE IF NOT EXISTS drainer_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL UNIQUE,
    holder TEXT NOT NULL,
    queue TEXT NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT NULL,
    exit_code INTEGER NULL,
    error TEXT NULL,
    lease_holder TEXT NULL,
    batches INTEGER NOT NULL DEFAULT 0,
    fetched INTEGER NOT NULL DEFAULT 0,
    stored INTEGER NOT NULL DEFAULT 0,
    duplicates INTEGER NOT NULL DEFAULT 0,
    rejected INTEGER NOT NULL DEFAULT 0,
    oversize INTEGER NOT NULL DEFAULT 0,
    pruned INTEGER NOT NULL DEFAULT 0,
    first_id INTEGER NULL,
    last_id INTEGER NULL,
    first_commit_at TEXT NULL,
    last_commit_at TEXT NULL
);
CREATE INDEX IF NOT EXISTS ix_drainer_runs_queue ON drainer_runs (queue, started_at);
CREATE INDEX IF NOT EXISTS ix_drainer_runs_started_at ON drainer_runs (started_at);
CREATE INDEX IF NOT EXISTS ix_drainer_runs_first_id ON drainer_runs (first_id);
