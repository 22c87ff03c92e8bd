-- Vitrage's alarm-history tables in the shape its models declare (vitrage/storage/sqlalchemy/
-- models.py, Vitrage 15.0.1). `vitrage-drainer migrate --history vitrage` applies this file only to
-- a database that has none of the three tables. SQLite enforces neither the widths nor, by default,
-- the foreign keys: the drainer checks both itself, as MySQL/MariaDB would.
CREATE TABLE alarms (
    vitrage_id VARCHAR(128) NOT NULL PRIMARY KEY,
    start_timestamp DATETIME NOT NULL,
    end_timestamp DATETIME NOT NULL,
    name VARCHAR(256) NOT NULL,
    vitrage_type VARCHAR(64) NOT NULL,
    vitrage_aggregated_severity VARCHAR(64) NOT NULL,
    vitrage_operational_severity VARCHAR(64) NOT NULL,
    project_id VARCHAR(64),
    vitrage_resource_type VARCHAR(64),
    vitrage_resource_id VARCHAR(64),
    vitrage_resource_project_id VARCHAR(64),
    payload TEXT,
    created_at DATETIME,
    updated_at DATETIME
);
CREATE INDEX ix_alarms_end_timestamp ON alarms (end_timestamp);
CREATE INDEX ix_alarms_project_id ON alarms (project_id);
CREATE INDEX ix_alarms_start_timestamp ON alarms (start_timestamp);
CREATE INDEX ix_alarms_vitrage_aggregated_severity ON alarms (vitrage_aggregated_severity);
CREATE INDEX ix_alarms_vitrage_operational_severity ON alarms (vitrage_operational_severity);
CREATE INDEX ix_alarms_vitrage_resource_project_id ON alarms (vitrage_resource_project_id);

CREATE TABLE edges (
    source_id VARCHAR(128) NOT NULL REFERENCES alarms (vitrage_id) ON DELETE CASCADE,
    target_id VARCHAR(128) NOT NULL REFERENCES alarms (vitrage_id) ON DELETE CASCADE,
    label VARCHAR(64) NOT NULL,
    start_timestamp DATETIME NOT NULL,
    end_timestamp DATETIME NOT NULL,
    payload TEXT,
    created_at DATETIME,
    updated_at DATETIME,
    PRIMARY KEY (source_id, target_id)
);

CREATE TABLE changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    vitrage_id VARCHAR(128) NOT NULL REFERENCES alarms (vitrage_id) ON DELETE CASCADE,
    timestamp DATETIME NOT NULL,
    severity VARCHAR(64) NOT NULL,
    payload TEXT,
    created_at DATETIME,
    updated_at DATETIME
);
CREATE INDEX ix_changes_severity ON changes (severity);
CREATE INDEX ix_changes_timestamp ON changes (timestamp);
CREATE INDEX ix_changes_vitrage_id ON changes (vitrage_id);
