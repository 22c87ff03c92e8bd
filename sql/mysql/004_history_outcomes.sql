-- What `--history vitrage` did with each stored alarm-history notification: applied to Vitrage's
-- alarms/edges/changes, or not applied and why (what Vitrage's own persistor would have lost).
-- `rebuild-history` re-applies the ones not applied, and never applies one twice.
CREATE TABLE IF NOT EXISTS drainer_history_outcomes (
    message_id VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    event_type VARCHAR(64) NOT NULL,
    vitrage_id VARCHAR(255) NULL,
    outcome VARCHAR(16) NOT NULL,
    reason TEXT NULL,
    recorded_at DATETIME(6) NOT NULL,
    PRIMARY KEY (message_id),
    KEY ix_drainer_history_outcomes_outcome (outcome, recorded_at),
    KEY ix_drainer_history_outcomes_vitrage_id (vitrage_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Metadata of today's payloads: an alarm's vitrage_category, and an edge's target (entity_id holds
-- its source), so "everything about this alarm" is an indexed query for both families.
ALTER TABLE drainer_events
    ADD COLUMN entity_category VARCHAR(64) NULL AFTER entity_id,
    ADD COLUMN related_id VARCHAR(255) NULL AFTER entity_category,
    ADD KEY ix_drainer_events_related (related_id, collector_timestamp);
