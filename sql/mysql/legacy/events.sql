-- Upgrade from vitrage-drainer 0.1, which named this table `events`. `migrate` applies this file
-- only when `events` has exactly the drainer's columns (never Vitrage's own `events` table) and
-- `drainer_events` does not exist yet. RENAME keeps every row, its id and the AUTO_INCREMENT counter.
ALTER TABLE events RENAME TO drainer_events;
ALTER TABLE drainer_events
    RENAME INDEX uq_events_message_id TO uq_drainer_events_message_id,
    RENAME INDEX ix_events_collector_timestamp TO ix_drainer_events_collector_timestamp,
    RENAME INDEX ix_events_entity TO ix_drainer_events_entity,
    RENAME INDEX ix_events_event_type TO ix_drainer_events_event_type;
