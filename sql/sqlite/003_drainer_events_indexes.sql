-- Indexes for `events --event-type / --entity-type / --entity-id`. Single-column on purpose: SQLite
-- appends the rowid (id) to every index, so each is (column, id), and a keyset page
-- `WHERE column = ? AND id > ? ORDER BY id LIMIT n` is a range scan in id order, never a sort.
-- They replace 001's (column, collector_timestamp) composites. SQLite DDL is transactional.
DROP INDEX IF EXISTS ix_drainer_events_entity;
DROP INDEX IF EXISTS ix_drainer_events_event_type;
CREATE INDEX IF NOT EXISTS ix_drainer_events_entity_id ON drainer_events (entity_id);
CREATE INDEX IF NOT EXISTS ix_drainer_events_entity_type ON drainer_events (entity_type);
CREATE INDEX IF NOT EXISTS ix_drainer_events_event_type ON drainer_events (event_type);
