"""`vitrage-drainer status`: the queue and the tables at a glance; a monitoring probe."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping
from typing import Any

from drainer.cli.exits import Exit, exit_code_for
from drainer.cli.options import connections, settings_from

log = logging.getLogger("drainer.cli")


def register(sub: Any) -> None:
    st = sub.add_parser("status", help="queue depth, events, lag, rejected, schema; non-zero when unreachable")
    connections(st)
    st.add_argument("--json", action="store_true", help="print one JSON object")
    st.set_defaults(handler=run)


def run(args: argparse.Namespace, env: Mapping[str, str], run_id: str) -> int:
    import json

    from drainer import logs, status

    settings = settings_from(args, env)
    settings.require_db_url()
    report, errors = status.collect(settings)
    code = exit_code_for(errors[0])[0] if errors else Exit.OK
    if errors:
        report["errors"] = [{"error": exit_code_for(e)[1], "detail": logs.scrub(str(e))} for e in errors]
    report["exit_code"] = int(code)
    # The report holds counts and names, no URLs; error details are scrubbed value by value.
    print(json.dumps(report) if args.json else status.render_text(report))
    for exc in errors:
        log.error(str(exc), extra={"event": "error", "error": exit_code_for(exc)[1]})
    return code
