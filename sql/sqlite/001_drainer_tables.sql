-- Events as Vitrage's collector publishes them on vitrage_persistor, one row per notification.
-- AUTOINCREMENT: ids never reused after a prune, so replay "id > snapshot id" stays correct.
CREATE TABLE IF NOT EXISTS drainer_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT NOT NULL UNIQUE,
    collector_timestamp TEXT NOT NULL,
    event_type TEXT NULL,
    publisher_id TEXT NULL,
    priority TEXT NULL,
    entity_type TEXT NULL,
    entity_id TEXT NULL,
    action TEXT NULL,
    payload TEXT NOT NULL,
    stored_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_drainer_events_collector_timestamp ON drainer_events (collector_timestamp);
CREATE INDEX IF NOT EXISTS ix_drainer_events_entity ON drainer_events (entity_type, entity_id, collector_timestamp);
CREATE INDEX IF NOT EXISTS ix_drainer_events_event_type ON drainer_events (event_type, collector_timestamp);

-- Messages that could not become events, byte-exact, so an operator can fix and republish them.
CREATE TABLE IF NOT EXISTS drainer_rejected_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    dedupe_key TEXT NOT NULL UNIQUE,
    received_at TEXT NOT NULL,
    queue TEXT NOT NULL,
    exchange TEXT NULL,
    routing_key TEXT NULL,
    redelivered BOOLEAN NULL,
    reason TEXT NOT NULL,
    properties TEXT NULL,
    body BLOB NULL,
    body_size INTEGER NULL,
    body_sha256 TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_drainer_rejected_received_at ON drainer_rejected_messages (received_at);

-- One lease row per queue: the single-writer lock.
CREATE TABLE IF NOT EXISTS drainer_leases (
    name TEXT NOT NULL PRIMARY KEY,
    holder TEXT NULL,
    acquired_at TEXT NULL,
    renewed_at TEXT NULL,
    expires_at TEXT NOT NULL
);
