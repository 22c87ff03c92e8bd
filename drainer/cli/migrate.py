"""`vitrage-drainer migrate`: create or upgrade the drainer's tables."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping
from typing import Any

from drainer.cli.exits import Exit
from drainer.cli.options import connections, history_option, settings_from

log = logging.getLogger("drainer.cli")


def register(sub: Any) -> None:
    m = sub.add_parser("migrate", help="create or upgrade the schema from sql/<dialect>/*.sql")
    connections(m)
    history_option(m)
    m.set_defaults(handler=run)


def run(args: argparse.Namespace, env: Mapping[str, str], run_id: str) -> int:
    from drainer import schema
    from drainer.db.engine import Store

    settings = settings_from(args, env)
    store = Store.open(settings.require_db_url(), settings)
    try:
        applied = schema.migrate(store, settings.history)
        version = schema.check(store, settings.history)
    finally:
        store.dispose()
    log.info("schema up to date", extra={"event": "migrate", "applied": applied, "version": version, "exit_code": 0})
    return Exit.OK
