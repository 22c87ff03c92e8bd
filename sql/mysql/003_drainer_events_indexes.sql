-- Indexes for `events --event-type / --entity-type / --entity-id`. Single-column on purpose: InnoDB
-- appends the primary key to every secondary index, so each is (column, id), and a keyset page
-- `WHERE column = ? AND id > ? ORDER BY id LIMIT n` is a range scan in id order, never a sort.
-- They replace 001's (column, collector_timestamp) composites, which made every such page a filesort.
-- One statement: InnoDB applies it whole or not at all (ADD INDEX runs online, LOCK=NONE).
ALTER TABLE drainer_events
    DROP INDEX ix_drainer_events_entity,
    DROP INDEX ix_drainer_events_event_type,
    ADD INDEX ix_drainer_events_entity_id (entity_id),
    ADD INDEX ix_drainer_events_entity_type (entity_type),
    ADD INDEX ix_drainer_events_event_type (event_type);
