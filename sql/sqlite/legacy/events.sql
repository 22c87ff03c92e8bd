-- Upgrade from vitrage-drainer 0.1, which named this table `events` (applied only when its columns
-- are exactly the drainer's). SQLite cannot rename an index: the old ones are dropped and
-- 001_drainer_tables.sql creates them under their new names. AUTOINCREMENT's sqlite_sequence
-- entry follows the rename, so ids are never reused.
ALTER TABLE events RENAME TO drainer_events;
DROP INDEX IF EXISTS ix_events_collector_timestamp;
DROP INDEX IF EXISTS ix_events_entity;
DROP INDEX IF EXISTS ix_events_event_type;
