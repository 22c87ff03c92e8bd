"""`vitrage-drainer verify`: is the stored history complete and consistent?"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Mapping
from typing import Any

from drainer.cli import helptext
from drainer.cli.exits import Exit
from drainer.cli.options import connections, history_option, settings_from

log = logging.getLogger("drainer.cli")


def register(sub: Any) -> None:
    p = helptext.page(
        sub,
        "verify",
        "check that the stored history is complete and consistent (before a standby replays it)",
        "Check, on one consistent snapshot of the database:\n"
        "  - every run of the ledger (drainer_runs) has exactly its rows: the rows in its id range\n"
        "    are the ones it stored, less those `prune` deleted since;\n"
        "  - no row after the ledger's first one belongs to no run;\n"
        "  - no message id is stored twice;\n"
        "  - on each queue, ids increase with commit order (runs never interleave).\n"
        "Reported as information, never as a finding: rows stored before the ledger existed,\n"
        "collector timestamps that go backwards in id order, and gaps in id (a failed batch\n"
        "leaves one). With --after-id N it checks the rows after N (a standby's replay window) and\n"
        "the whole of any run reaching past N. It reads every id of that window once.\n"
        "\n"
        "With --history vitrage (or DRAINER_HISTORY, or `history = vitrage` in the config file), also:\n"
        "every row of Vitrage's alarms, edges and changes is what the stored notifications imply,\n"
        "recomputed with the drain's own projection (a row missing, different or doubled is a\n"
        "finding; rows from before the drainer, and ended alarms an expirer removed, information).",
        [
            "vitrage-drainer verify",
            "vitrage-drainer verify --after-id 41230 --json | jq '.findings[].message'",
            "vitrage-drainer verify --history vitrage --config-file /etc/vitrage/vitrage.conf",
        ],
        [
            (0, "consistent"),
            (1, "not consistent: the findings are listed (stdout)"),
            helptext.USAGE,
            helptext.UNAVAILABLE,
            helptext.NOPERM,
            helptext.CONFIG,
        ],
    )
    connections(p)
    history_option(p)
    p.add_argument("--after-id", type=int, help="check the rows after this id (the snapshot's event_id)")
    p.add_argument("--json", action="store_true", help="one JSON object: consistent, findings, information, checked")
    p.set_defaults(handler=run)


def render(report: dict[str, Any]) -> str:
    checked = report["checked"]
    window = f"after id {checked['after_id']}" if checked["after_id"] is not None else "all rows"
    also = " and Vitrage's alarm history" if checked.get("history") else ""
    lines = [
        f"checked {checked['rows']} rows ({window}; ids {checked['first_id'] or '-'}..{checked['last_id'] or '-'}) "
        f"against {checked['runs']} runs of the ledger{also}"
    ]
    for title, items in (("findings", report["findings"]), ("information", report["information"])):
        if items:
            lines.append(f"{title}:")
            lines += [f"  - {item['message']}" for item in items]
    lines.append("consistent" if report["consistent"] else f"NOT consistent: {len(report['findings'])} findings")
    return "\n".join(lines)


def run(args: argparse.Namespace, env: Mapping[str, str], run_id: str) -> int:
    from drainer import schema, verify
    from drainer.db.engine import Store

    settings = settings_from(args, env)
    store = Store.open(settings.require_db_url(), settings)
    try:
        schema.check(store)
        report = verify.verify(store, args.after_id, settings.history)
    finally:
        store.dispose()
    print(json.dumps(report, default=str) if args.json else render(report))
    code = Exit.OK if report["consistent"] else Exit.FINDINGS
    log.info(
        "verify finished",
        extra={
            "event": "verify",
            "consistent": report["consistent"],
            "findings": len(report["findings"]),
            "rows": report["checked"]["rows"],
            "exit_code": int(code),
        },
    )
    return code
