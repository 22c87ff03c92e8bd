-- Events as Vitrage's collector publishes them on vitrage_persistor, one row per notification.
-- payload is LONGTEXT, not JSON: MariaDB's JSON_VALID refuses nesting deeper than 32 levels,
-- which real payloads may exceed; the drainer only stores payloads it parsed as strict JSON.
CREATE TABLE IF NOT EXISTS drainer_events (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    message_id VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    collector_timestamp DATETIME(6) NOT NULL,
    event_type VARCHAR(255) NULL,
    publisher_id VARCHAR(255) NULL,
    priority VARCHAR(32) NULL,
    entity_type VARCHAR(255) NULL,
    entity_id VARCHAR(255) NULL,
    action VARCHAR(64) NULL,
    payload LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    stored_at DATETIME(6) NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_drainer_events_message_id (message_id),
    KEY ix_drainer_events_collector_timestamp (collector_timestamp),
    KEY ix_drainer_events_entity (entity_type, entity_id, collector_timestamp),
    KEY ix_drainer_events_event_type (event_type, collector_timestamp)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Messages that could not become events, byte-exact, so an operator can fix and republish them.
CREATE TABLE IF NOT EXISTS drainer_rejected_messages (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    dedupe_key VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    received_at DATETIME(6) NOT NULL,
    queue VARCHAR(255) NOT NULL,
    exchange VARCHAR(255) NULL,
    routing_key VARCHAR(255) NULL,
    redelivered BOOLEAN NULL,
    reason TEXT NOT NULL,
    properties LONGTEXT NULL,
    body LONGBLOB NULL,
    body_size BIGINT NULL,
    body_sha256 CHAR(64) CHARACTER SET ascii NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_drainer_rejected_dedupe_key (dedupe_key),
    KEY ix_drainer_rejected_received_at (received_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- One lease row per queue: the single-writer lock, portable to Galera (no GET_LOCK).
CREATE TABLE IF NOT EXISTS drainer_leases (
    name VARBINARY(255) NOT NULL,  -- the queue name, compared byte for byte (no case or pad folding)
    holder VARCHAR(255) NULL,
    acquired_at DATETIME(6) NULL,
    renewed_at DATETIME(6) NULL,
    expires_at DATETIME(6) NOT NULL,
    PRIMARY KEY (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
