"""`vitrage-drainer migrate`: create or upgrade the drainer's tables."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping
from typing import Any

from drainer.cli.exits import DB_UNAVAILABLE, Exit
from drainer.cli.options import CONFIG, DATABASE, TIMEOUTS, add_command, settings_from

log = logging.getLogger("drainer.cli")


def register(sub: Any) -> None:
    add_command(
        sub,
        "migrate",
        summary="create or upgrade the drainer's tables",
        description="Create or upgrade the drainer's tables (drainer_*): apply the files in sql/<dialect>/ in name\n"
        "order and record each; a no-op when up to date. Run it as the schema owner, once per\n"
        "upgrade. It creates a SQLite file that does not exist yet, never a MySQL database.",
        options=(*CONFIG, *DATABASE, *TIMEOUTS, "--lock-wait-timeout", "--history"),
        examples=[
            ("vitrage-drainer migrate --db-url 'mysql+pymysql://admin:***@db/vitrage'", "create or upgrade the tables"),
            (
                "vitrage-drainer migrate --config-file /etc/vitrage/vitrage.conf --history vitrage",
                "the database of [database] connection, with the tables --history vitrage needs",
            ),
        ],
        exits=[
            (Exit.OK, "the schema is up to date"),
            DB_UNAVAILABLE,
            (Exit.NOPERM, "the database refused the credentials or a CREATE/ALTER (use the schema owner)"),
            (Exit.CONFIG, "an applied file has changed, or a table of another shape has a drainer name"),
        ],
        handler=run,
        reworded={
            "--history": (
                "vitrage: also create Vitrage's alarms, edges and changes tables where vitrage-dbsync did not",
                "off",
            )
        },
    )


def run(args: argparse.Namespace, env: Mapping[str, str], run_id: str) -> int:
    from drainer import schema
    from drainer.db.engine import Store

    settings = settings_from(args, env)
    store = Store.open(settings.require_db_url(), settings, create=True)
    try:
        applied = schema.migrate(store, settings.history)
        version = schema.check(store, settings.history)
    finally:
        store.dispose()
    log.info("schema up to date", extra={"event": "migrate", "applied": applied, "version": version, "exit_code": 0})
    return Exit.OK
