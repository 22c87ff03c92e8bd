"""Help pages for subcommands, as git and rabbitmqctl write them: a description, the options the
command uses, an example or two and its exit codes (in the epilog)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any

# What the common exit codes mean for a command that reads or repairs (cli.exits names them).
USAGE = (2, "bad flag, environment variable or config file")
UNAVAILABLE = (69, "the broker or the database is unreachable")
NOPERM = (77, "the broker or the database refused the credentials or the statement")
CONFIG = (78, "the database schema is missing or behind: run `vitrage-drainer migrate`")
NOINPUT = (66, "the queue does not exist")


def epilog(examples: Sequence[str], codes: Sequence[tuple[int, str]]) -> str:
    lines = ["examples:", *(f"  {e}" for e in examples), "", "exit codes:"]
    lines += [f"  {code:<3} {text}" for code, text in sorted(codes)]
    return "\n".join(lines)


def page(
    sub: Any,
    name: str,
    summary: str,
    description: str,
    examples: Sequence[str],
    codes: Sequence[tuple[int, str]],
    **kwargs: Any,
) -> argparse.ArgumentParser:
    """Add subcommand `name` with its help page."""
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        help=summary,
        description=description,
        epilog=epilog(examples, codes),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        **kwargs,
    )
    return parser


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """Rows as an aligned plain-text table (None shows as "-")."""
    cells = [[("-" if row.get(c) is None else str(row.get(c))) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)
