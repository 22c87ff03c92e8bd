"""Command line: parse, build Settings, set up logs, run a command; the ONLY place mapping errors
to exit codes (cli.exits). One module per command family; each registers its subcommand with
cli.options.add_command."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, Sequence

from drainer import __version__
from drainer.cli.exits import Exit, exit_code_for
from drainer.cli.options import Parser, UsageError
from drainer.errors import ConfigError, DrainerError

__all__ = ["Exit", "build_parser", "exit_code_for", "main"]

log = logging.getLogger("drainer.cli")


# Each command and the module that registers it, in the order `--help` lists them.
_COMMANDS = {
    "drain": "drain",
    "migrate": "migrate",
    "status": "status",
    "events": "events",
    "prune": "events",
    "rebuild-history": "history",
    "runs": "runs",
    "rejected": "rejected",
    "oversize": "oversize",
    "peek": "peek",
    "lease": "lease",
    "verify": "verify",
}


def build_parser(argv: Sequence[str] | None = None) -> Parser:
    """The command line's parser. Given the arguments, only their command's module registers (a
    run pays for one help page, not for all of them: start-up is paid every cron tick); without,
    or when the first argument names no command (`--help`, a typo), every command does."""
    import importlib

    wanted = _COMMANDS.get(argv[0]) if argv else None
    modules = [wanted] if wanted else list(dict.fromkeys(_COMMANDS.values()))
    parser = Parser(
        prog="vitrage-drainer",
        description="Drain Vitrage's vitrage_persistor queue into an events table: one transaction per batch,\n"
        "ack after commit. Each command's --help lists its options, examples and exit codes.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=Parser)
    for module in modules:
        importlib.import_module(f"drainer.cli.{module}").register(sub)
    return parser


def _flag_value(argv: Sequence[str], flag: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
        if arg == flag and i + 1 < len(argv):
            return argv[i + 1]
    return None


def _output(argv: Sequence[str], env: Mapping[str, str]) -> tuple[str, bool, ConfigError | None]:
    """(log format, verbose, a bad DRAINER_VERBOSE), read before parsing so that even a usage error
    is shown in them: the flag, else the environment, else text at a terminal and JSON elsewhere."""
    from drainer.config import parse_env_bool

    fmt = _flag_value(argv, "--log-format") or env.get("DRAINER_LOG_FORMAT")
    if fmt not in ("json", "text"):
        fmt = "text" if sys.stderr.isatty() else "json"
    try:
        return fmt, "--verbose" in argv or parse_env_bool("DRAINER_VERBOSE", env.get("DRAINER_VERBOSE") or "0"), None
    except ConfigError as exc:
        return fmt, False, exc


def _say_usage_error(exc: ConfigError, parser: Parser, argv: Sequence[str]) -> None:
    """As argparse itself would at a terminal: the usage line, then `prog: error: sentence`."""
    from drainer.logs import scrub

    if isinstance(exc, UsageError):
        prog, usage = exc.prog, exc.usage
    else:
        command = next((parser.subcommand(a) for a in argv if parser.subcommand(a)), None) or parser
        prog, usage = command.prog, command.format_usage()
    sys.stderr.write(f"{usage}{prog}: error: {scrub(str(exc))}\n")


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Run one command; return its exit code (only __main__ and the console script exit).
    `argv` None means this process's own command line: then a drain's signal handlers stay
    installed until the process exits; given, they are restored on return."""
    from drainer import signals

    command_line = list(sys.argv[1:] if argv is None else argv)
    if command_line[:1] == ["drain"]:
        signals.install_early()  # before the imports below, which take most of the start-up
    try:
        return _main(command_line, env)
    finally:
        if argv is not None:
            signals.uninstall()


def _main(argv: list[str], env: Mapping[str, str] | None) -> int:
    from drainer import logs
    from drainer.drain import new_run_id

    env = os.environ if env is None else env
    run_id = new_run_id()
    fmt, verbose, bad_verbose = _output(argv, env)
    logs.setup(fmt, run_id, verbose=verbose)
    parser = build_parser(argv)
    try:
        args = parser.parse_args(argv)
        if bad_verbose is not None:
            raise bad_verbose
        return int(args.handler(args, env, run_id))
    except SystemExit as exc:  # --help / --version
        return int(exc.code or 0)
    except DrainerError as exc:
        code, error = exit_code_for(exc)
        if isinstance(exc, ConfigError) and fmt == "text":
            _say_usage_error(exc, parser, argv)
        else:
            message = f"{exc.prog}: {exc}" if isinstance(exc, UsageError) else str(exc)
            log.error(message, extra={"event": "error", "error": error, "exit_code": int(code)})
        return code
    except Exception as exc:  # a bug: keep the traceback, inside one JSON record (logs scrub secrets)
        log.exception(
            "unexpected error",
            extra={"event": "error", "error": "unexpected_error", "exit_code": 1, "detail": repr(exc)},
        )
        return Exit.SOFTWARE
