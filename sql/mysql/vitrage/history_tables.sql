-- Vitrage's alarm-history tables, in exactly the shape its `vitrage-dbsync` creates them (alembic
-- revision 4e44c9414dff of Vitrage 15.0.1: utf8mb3, the same columns, indexes and foreign keys).
-- `vitrage-drainer migrate --history vitrage` applies this file only to a database that has none of
-- the three tables; where `vitrage-dbsync` made them, the drainer uses Vitrage's own.
CREATE TABLE alarms (
    vitrage_id VARCHAR(128) NOT NULL,
    start_timestamp DATETIME NOT NULL,
    end_timestamp DATETIME NOT NULL,
    name VARCHAR(256) NOT NULL,
    vitrage_type VARCHAR(64) NOT NULL,
    vitrage_aggregated_severity VARCHAR(64) NOT NULL,
    vitrage_operational_severity VARCHAR(64) NOT NULL,
    project_id VARCHAR(64) DEFAULT NULL,
    vitrage_resource_type VARCHAR(64) DEFAULT NULL,
    vitrage_resource_id VARCHAR(64) DEFAULT NULL,
    vitrage_resource_project_id VARCHAR(64) DEFAULT NULL,
    payload TEXT DEFAULT NULL,
    created_at DATETIME DEFAULT NULL,
    updated_at DATETIME DEFAULT NULL,
    PRIMARY KEY (vitrage_id),
    KEY ix_alarms_end_timestamp (end_timestamp),
    KEY ix_alarms_project_id (project_id),
    KEY ix_alarms_start_timestamp (start_timestamp),
    KEY ix_alarms_vitrage_aggregated_severity (vitrage_aggregated_severity),
    KEY ix_alarms_vitrage_operational_severity (vitrage_operational_severity),
    KEY ix_alarms_vitrage_resource_project_id (vitrage_resource_project_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb3 COLLATE=utf8mb3_general_ci;

CREATE TABLE edges (
    source_id VARCHAR(128) NOT NULL,
    target_id VARCHAR(128) NOT NULL,
    label VARCHAR(64) NOT NULL,
    start_timestamp DATETIME NOT NULL,
    end_timestamp DATETIME NOT NULL,
    payload TEXT DEFAULT NULL,
    created_at DATETIME DEFAULT NULL,
    updated_at DATETIME DEFAULT NULL,
    PRIMARY KEY (source_id, target_id),
    KEY target_id (target_id),
    CONSTRAINT edges_ibfk_1 FOREIGN KEY (source_id) REFERENCES alarms (vitrage_id) ON DELETE CASCADE,
    CONSTRAINT edges_ibfk_2 FOREIGN KEY (target_id) REFERENCES alarms (vitrage_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb3 COLLATE=utf8mb3_general_ci;

CREATE TABLE changes (
    id BIGINT NOT NULL AUTO_INCREMENT,
    vitrage_id VARCHAR(128) NOT NULL,
    timestamp DATETIME NOT NULL,
    severity VARCHAR(64) NOT NULL,
    payload TEXT DEFAULT NULL,
    created_at DATETIME DEFAULT NULL,
    updated_at DATETIME DEFAULT NULL,
    PRIMARY KEY (id),
    KEY ix_changes_severity (severity),
    KEY ix_changes_timestamp (timestamp),
    KEY ix_changes_vitrage_id (vitrage_id),
    CONSTRAINT changes_ibfk_1 FOREIGN KEY (vitrage_id) REFERENCES alarms (vitrage_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb3 COLLATE=utf8mb3_general_ci;
