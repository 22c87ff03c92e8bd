"""`events`: stored events as JSON lines, in id order, with constant memory."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any, TextIO


def event_line(row: Any) -> str:
    """One event as a JSON line; the stored payload text is already strict JSON and is spliced in."""
    ts: datetime = row.collector_timestamp
    if isinstance(ts, str):
        ts = datetime.fromisoformat(ts)
    head = json.dumps(
        {
            "id": row.id,
            "collector_timestamp": ts.isoformat(timespec="microseconds") + "Z",
            "message_id": row.message_id,
            "event_type": row.event_type,
        },
        ensure_ascii=False,
    )
    return f'{head[:-1]}, "payload": {row.payload}}}\n'


def write_events(rows: Iterable[Any], out: TextIO) -> int:
    """Write each row as a line; return how many."""
    count = 0
    for row in rows:
        out.write(event_line(row))
        count += 1
    return count
