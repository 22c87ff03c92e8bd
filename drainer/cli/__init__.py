"""Command line: parse, build Settings, set up logs, run a command; the ONLY place mapping errors
to exit codes (cli.exits). One module per command family; each registers its subcommand."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, Sequence

from drainer import __version__, defaults
from drainer.cli.exits import Exit, exit_code_for
from drainer.cli.options import Parser
from drainer.errors import DrainerError

__all__ = ["Exit", "build_parser", "exit_code_for", "main"]

log = logging.getLogger("drainer.cli")


def build_parser() -> Parser:
    from drainer.cli import drain, events, history, migrate, status

    parser = Parser(prog="vitrage-drainer", description="Drain Vitrage's vitrage_persistor queue into an events table.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for command in (drain, migrate, status, events, history):
        command.register(sub)
    return parser


def _log_format(argv: Sequence[str], env: Mapping[str, str]) -> str:
    for i, arg in enumerate(argv):
        if arg.startswith("--log-format="):
            return arg.split("=", 1)[1]
        if arg == "--log-format" and i + 1 < len(argv):
            return argv[i + 1]
    return env.get("DRAINER_LOG_FORMAT") or defaults.LOG_FORMAT


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Run one command; return its exit code (only __main__ and the console script exit)."""
    from drainer import logs
    from drainer.drain import new_run_id

    argv = list(sys.argv[1:] if argv is None else argv)
    env = os.environ if env is None else env
    run_id = new_run_id()
    fmt = _log_format(argv, env)
    logs.setup(fmt if fmt in ("json", "text") else "json", run_id)
    try:
        args = build_parser().parse_args(argv)
        return int(args.handler(args, env, run_id))
    except SystemExit as exc:  # --help / --version
        return int(exc.code or 0)
    except DrainerError as exc:
        code, error = exit_code_for(exc)
        log.error(str(exc), extra={"event": "error", "error": error, "exit_code": int(code)})
        return code
    except Exception as exc:  # a bug: keep the traceback, inside one JSON record (logs scrub secrets)
        log.exception(
            "unexpected error",
            extra={"event": "error", "error": "unexpected_error", "exit_code": 1, "detail": repr(exc)},
        )
        return Exit.SOFTWARE
