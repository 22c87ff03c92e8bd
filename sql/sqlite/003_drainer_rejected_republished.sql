-- `rejected republish` marks a row instead of deleting the evidence: when, to which queue, and the
-- SHA-256 of the body it published. A row is pending while republished_at is NULL.
ALTER TABLE drainer_rejected_messages ADD COLUMN republished_at TEXT NULL;
ALTER TABLE drainer_rejected_messages ADD COLUMN republished_to TEXT NULL;
ALTER TABLE drainer_rejected_messages ADD COLUMN republished_sha256 TEXT NULL;
CREATE INDEX IF NOT EXISTS ix_drainer_rejected_pending ON drainer_rejected_messages (republished_at);
