-- What `--history vitrage` did with each stored alarm-history notification: applied to Vitrage's
-- alarms/edges/changes, or not applied and why (what Vitrage's own persistor would have lost).
-- `rebuild-history` re-applies the ones not applied, and never applies one twice.
CREATE TABLE IF NOT EXISTS drainer_history_outcomes (
    message_id TEXT NOT NULL PRIMARY KEY,
    event_type TEXT NOT NULL,
    vitrage_id TEXT NULL,
    outcome TEXT NOT NULL,
    reason TEXT NULL,
    recorded_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_drainer_history_outcomes_outcome ON drainer_history_outcomes (outcome, recorded_at);
CREATE INDEX IF NOT EXISTS ix_drainer_history_outcomes_vitrage_id ON drainer_history_outcomes (vitrage_id);

-- Metadata of today's payloads: an alarm's vitrage_category, and an edge's target (entity_id holds
-- its source), so "everything about this alarm" is an indexed query for both families.
ALTER TABLE drainer_events ADD COLUMN entity_category TEXT NULL;
ALTER TABLE drainer_events ADD COLUMN related_id TEXT NULL;
CREATE INDEX IF NOT EXISTS ix_drainer_events_related ON drainer_events (related_id, collector_timestamp);
