-- `rejected republish` marks a row instead of deleting the evidence: when, to which queue, and the
-- SHA-256 of the body it published (the fixed one, or the original). A row is pending while
-- republished_at is NULL; `status` and the metrics count pending rows only.
ALTER TABLE drainer_rejected_messages
    ADD COLUMN republished_at DATETIME(6) NULL,
    ADD COLUMN republished_to VARCHAR(255) NULL,
    ADD COLUMN republished_sha256 CHAR(64) CHARACTER SET ascii NULL,
    ADD INDEX ix_drainer_rejected_pending (republished_at);
