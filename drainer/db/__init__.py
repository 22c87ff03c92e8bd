"""The only package that holds SQL: one module per table family.

- engine:      the connection (`Store`), and how driver errors are classified (transient, refused, data)
- tables:      the drainer's table names and columns, in one place
- migrations:  the schema-migrations table, table shapes, the upgrade from the legacy table names
- batch:       one batch's transaction: events, rejected messages, the lease fence
- lease:       the per-queue single-writer lease
- reads:       `status` and `events` queries
- maintenance: `prune`
"""
