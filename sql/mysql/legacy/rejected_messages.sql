-- Upgrade from vitrage-drainer 0.1, which named this table `rejected_messages` (applied only when
-- its columns are exactly the drainer's and `drainer_rejected_messages` does not exist yet).
ALTER TABLE rejected_messages RENAME TO drainer_rejected_messages;
ALTER TABLE drainer_rejected_messages
    RENAME INDEX uq_rejected_dedupe_key TO uq_drainer_rejected_dedupe_key,
    RENAME INDEX ix_rejected_received_at TO ix_drainer_rejected_received_at;
