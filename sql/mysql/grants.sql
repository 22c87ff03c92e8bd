-- MySQL/MariaDB accounts for vitrage-drainer: least privilege per role. DOCUMENTATION ONLY:
-- `vitrage-drainer migrate` applies only files named like 001_name.sql (^\d+_.*\.sql), so it never
-- runs this file (it ships inside the wheel as drainer/sql/mysql/grants.sql all the same).
--
-- Placeholders, replaced with sed before an administrator applies the file; it contains no password:
--   @@DRAIN_PASSWORD@@   'vitrage_drainer'@'%'        drain: stores batches, takes the queue lease
--   @@READER_PASSWORD@@  'vitrage_drainer_ro'@'%'     read only: status, events, dashboards
--   @@OWNER_PASSWORD@@   'vitrage_drainer_owner'@'%'  schema owner: migrate, prune, and the operator's
--                                                    repairs: rejected republish, oversize requeue,
--                                                    lease release
--   `vitrage`            the database; always written with backquotes, so that
--                        sed 's/`vitrage`/`vitrage_events`/g' renames it everywhere.
--   '%'                  the client host; narrow it (e.g. '10.0.0.%') if you can.
-- Passwords must not contain '/', '&', '\' or a quote (sed and SQL quoting); URL-encode any
-- '@', ':' or '/' of a password when you write it into the mysql+pymysql:// URL of a Secret.
--
-- MySQL refuses a table-level GRANT on a table that does not exist yet (ERROR 1146), so the
-- tables must exist before PART 2. The file is idempotent; the order is:
--   1. PART 1 only (database, accounts, owner), as an administrator:
--        sed -e "s/@@DRAIN_PASSWORD@@/$DRAIN_PW/" -e "s/@@READER_PASSWORD@@/$READER_PW/" \
--            -e "s/@@OWNER_PASSWORD@@/$OWNER_PW/" -e '/^-- PART 2/q' sql/mysql/grants.sql | mariadb -u root -p
--   2. vitrage-drainer migrate    (as vitrage_drainer_owner; cron/kubernetes/job-migrate.yaml)
--   3. PART 2, same sed with '/^-- PART 3/q' instead of '/^-- PART 2/q'; re-run it after every
--      migration that adds a table.
--   4. only with `--history vitrage`, once Vitrage's alarms/edges/changes exist (vitrage-dbsync,
--      or `vitrage-drainer migrate --history vitrage`): the whole file, sed without a '/q'.
-- Check the result with SHOW GRANTS FOR 'vitrage_drainer'@'%'. GRANT only adds privileges: this
-- file never revokes anything granted by hand. Anonymous accounts (''@'localhost', left by some
-- installers) shadow '%' for local clients: remove them (mariadb-secure-installation).
--
-- If `vitrage` is Vitrage's own database, the owner's ALL ON `vitrage`.* covers Vitrage's tables
-- too; give the drainer a database of its own (e.g. `vitrage_events`) to keep them apart.
--
-- PART 1: database, accounts, schema owner (no table has to exist yet)

CREATE DATABASE IF NOT EXISTS `vitrage` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;

-- CREATE ... IF NOT EXISTS keeps an existing account; ALTER USER then sets (rotates) its password.
CREATE USER IF NOT EXISTS 'vitrage_drainer'@'%' IDENTIFIED BY '@@DRAIN_PASSWORD@@';
ALTER USER 'vitrage_drainer'@'%' IDENTIFIED BY '@@DRAIN_PASSWORD@@';
CREATE USER IF NOT EXISTS 'vitrage_drainer_ro'@'%' IDENTIFIED BY '@@READER_PASSWORD@@';
ALTER USER 'vitrage_drainer_ro'@'%' IDENTIFIED BY '@@READER_PASSWORD@@';
CREATE USER IF NOT EXISTS 'vitrage_drainer_owner'@'%' IDENTIFIED BY '@@OWNER_PASSWORD@@';
ALTER USER 'vitrage_drainer_owner'@'%' IDENTIFIED BY '@@OWNER_PASSWORD@@';

-- Schema owner: creates and alters tables (migrate), deletes old rows (prune), marks rejected rows
-- republished (rejected republish, oversize requeue) and deletes lease rows (lease release).
GRANT ALL PRIVILEGES ON `vitrage`.* TO 'vitrage_drainer_owner'@'%';

-- PART 2: table grants; run `vitrage-drainer migrate` before this part (see step 2 above).

-- Drain: SELECT and INSERT only (plus its lease row); no UPDATE, DELETE, DROP or ALTER on the
-- data, so a leaked drain password cannot rewrite or remove stored events.
GRANT SELECT, INSERT ON `vitrage`.`drainer_events` TO 'vitrage_drainer'@'%';
GRANT SELECT, INSERT ON `vitrage`.`drainer_rejected_messages` TO 'vitrage_drainer'@'%';
GRANT SELECT ON `vitrage`.`drainer_schema_migrations` TO 'vitrage_drainer'@'%';
GRANT SELECT, INSERT, UPDATE ON `vitrage`.`drainer_leases` TO 'vitrage_drainer'@'%';
-- The run ledger: a drain inserts its row and updates it with every batch (UPDATE needs SELECT
-- for its WHERE). `peek` uses this account too: it takes the queue's lease while it holds messages.
GRANT SELECT, INSERT, UPDATE ON `vitrage`.`drainer_runs` TO 'vitrage_drainer'@'%';
GRANT SELECT, INSERT, UPDATE ON `vitrage`.`drainer_history_outcomes` TO 'vitrage_drainer'@'%';

-- Read only.
GRANT SELECT ON `vitrage`.`drainer_events` TO 'vitrage_drainer_ro'@'%';
GRANT SELECT ON `vitrage`.`drainer_rejected_messages` TO 'vitrage_drainer_ro'@'%';
GRANT SELECT ON `vitrage`.`drainer_schema_migrations` TO 'vitrage_drainer_ro'@'%';
GRANT SELECT ON `vitrage`.`drainer_leases` TO 'vitrage_drainer_ro'@'%';
GRANT SELECT ON `vitrage`.`drainer_runs` TO 'vitrage_drainer_ro'@'%';
GRANT SELECT ON `vitrage`.`drainer_history_outcomes` TO 'vitrage_drainer_ro'@'%';

-- PART 3: only with `--history vitrage`: Vitrage's alarm-history tables, written as its persistor
-- writes them (an activation inserts, a deactivation updates; changes are only inserted). Vitrage's
-- own API reads them with Vitrage's account; `rebuild-history` runs as the schema owner.
GRANT SELECT, INSERT, UPDATE ON `vitrage`.`alarms` TO 'vitrage_drainer'@'%';
GRANT SELECT, INSERT, UPDATE ON `vitrage`.`edges` TO 'vitrage_drainer'@'%';
GRANT SELECT, INSERT ON `vitrage`.`changes` TO 'vitrage_drainer'@'%';
GRANT SELECT ON `vitrage`.`alarms` TO 'vitrage_drainer_ro'@'%';
GRANT SELECT ON `vitrage`.`edges` TO 'vitrage_drainer_ro'@'%';
GRANT SELECT ON `vitrage`.`changes` TO 'vitrage_drainer_ro'@'%';
