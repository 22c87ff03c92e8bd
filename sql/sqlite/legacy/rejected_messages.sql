-- Upgrade from vitrage-drainer 0.1, which named this table `rejected_messages` (applied only when
-- its columns are exactly the drainer's).
ALTER TABLE rejected_messages RENAME TO drainer_rejected_messages;
DROP INDEX IF EXISTS ix_rejected_received_at;
