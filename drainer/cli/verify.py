"""`vitrage-drainer verify`: is the stored history complete and consistent?"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Mapping
from typing import Any

from drainer.cli.exits import DB_NOPERM, DB_UNAVAILABLE, Exit
from drainer.cli.options import CONFIG, DATABASE, TIMEOUTS, Option, add_command, settings_from

log = logging.getLogger("drainer.cli")


def register(sub: Any) -> None:
    p = add_command(
        sub,
        "verify",
        summary="check that the stored history is complete and consistent (before a standby replays it)",
        description="Check, on one consistent snapshot of the database:\n"
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
        "With --history vitrage, also: every row of Vitrage's alarms, edges and changes is what the\n"
        "stored notifications imply, recomputed with the drain's own projection (a row missing,\n"
        "different or doubled is a finding; rows from before the drainer, and ended alarms an\n"
        "expirer removed, information). Reads only.",
        options=(*CONFIG, *DATABASE, *TIMEOUTS, "--history"),
        reworded={
            "--history": (
                "vitrage: also check Vitrage's alarms, edges and changes against the stored notifications",
                "off",
            )
        },
        examples=[
            ("vitrage-drainer verify", "the whole history, as a report"),
            (
                "vitrage-drainer verify --after-id 41230 --json | jq '.findings[].message'",
                "the window a standby replays after its snapshot, for a script",
            ),
            ("vitrage-drainer verify --history vitrage", "also Vitrage's alarm history"),
        ],
        exits=[
            (Exit.OK, "consistent"),
            (Exit.FINDINGS, "not consistent: the findings are listed on stdout (or a bug: a traceback record)"),
            DB_UNAVAILABLE,
            DB_NOPERM,
            Exit.CONFIG,
        ],
        handler=run,
    )
    Option(
        "--after-id", "check the rows after this id (the snapshot's event_id)", kwargs={"type": int, "metavar": "ID"}
    ).add_to(p)
    Option(
        "--json", "one JSON object: consistent, findings, information, checked", kwargs={"action": "store_true"}
    ).add_to(p)


def render(report: dict[str, Any]) -> str:
    from drainer.verify import counted

    checked = report["checked"]
    window = f"after id {checked['after_id']}" if checked["after_id"] is not None else "all rows"
    also = " and Vitrage's alarm history" if checked.get("history") else ""
    lines = [
        f"checked {counted(checked['rows'], 'row')} ({window}; ids {checked['first_id'] or '-'}.."
        f"{checked['last_id'] or '-'}) against {counted(checked['runs'], 'run')} of the ledger{also}"
    ]
    for title, items in (("findings", report["findings"]), ("information", report["information"])):
        if items:
            lines.append(f"{title}:")
            lines += [f"  - {item['message']}" for item in items]
    verdict = f"NOT consistent: {counted(len(report['findings']), 'finding')}"
    lines.append("consistent" if report["consistent"] else verdict)
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
