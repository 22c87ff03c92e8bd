-- The run ledger: one row per drain run, its counters brought up to date inside each batch's own
-- transaction (so it is exact up to the last commit, also for a killed run); ended_at, exit_code
-- and error are written when the run ends (best effort: NULL means it never got there).
-- first_commit_at / last_commit_at are the database's clock, for `verify` (ids follow commit order).
-- pruned counts the run's rows that `prune` deleted since, so `verify` still balances.
CREATE TABLE IF NOT EXISTS drainer_runs (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    run_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    holder VARCHAR(255) NOT NULL,
    queue VARCHAR(255) NOT NULL,
    started_at DATETIME(6) NOT NULL,
    ended_at DATETIME(6) NULL,
    exit_code SMALLINT NULL,
    error VARCHAR(64) NULL,
    lease_holder VARCHAR(255) NULL,
    batches BIGINT NOT NULL DEFAULT 0,
    fetched BIGINT NOT NULL DEFAULT 0,
    stored BIGINT NOT NULL DEFAULT 0,
    duplicates BIGINT NOT NULL DEFAULT 0,
    rejected BIGINT NOT NULL DEFAULT 0,
    oversize BIGINT NOT NULL DEFAULT 0,
    pruned BIGINT NOT NULL DEFAULT 0,
    first_id BIGINT UNSIGNED NULL,
    last_id BIGINT UNSIGNED NULL,
    first_commit_at DATETIME(6) NULL,
    last_commit_at DATETIME(6) NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_drainer_runs_run_id (run_id),
    KEY ix_drainer_runs_queue (queue, started_at),
    KEY ix_drainer_runs_started_at (started_at),
    KEY ix_drainer_runs_first_id (first_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
