"""Every shared option, declared once; the one way a command registers itself (`add_command`); and
Settings built from the flags and the environment.

A command module adopts it in a few lines (cli/migrate.py is the smallest example)::

    def register(sub):
        parser = add_command(
            sub,
            "migrate",
            summary="create or upgrade the drainer's tables",      # its line in `vitrage-drainer --help`
            description="Applies sql/<dialect>/*.sql in name order ...",
            options=(*CONFIG, *DATABASE, *TIMEOUTS),               # the shared options it uses, by flag
            examples=[("vitrage-drainer migrate --db-url 'mysql+pymysql://admin:***@db/vitrage'",
                       "create the tables, or apply what is new")],
            exits=[Exit.OK, Exit.UNAVAILABLE, Exit.NOPERM, (Exit.CONFIG, "a table of another shape exists")],
            handler=run,                                           # run(args, env, run_id) -> exit code
        )
        # Options no other command has: an Option shows its default (and variable) the same way.
        Option("--chunk-size", "rows per transaction", default="1000",
               kwargs={"type": int, "default": 1000, "metavar": "N"}).add_to(parser)

`--help` then shows, for that command only: its description, each option it uses with the
environment variable that also sets it and its default, the examples, and the exit codes (1 and 2
are added to every command; a code given alone gets its sentence from `exits.MEANINGS`). Every
command also gets the output options (`--log-format`, `--verbose`). To add a shared option, add one
`Option` to `OPTIONS` below (and its field to config.Settings when it is a setting).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from drainer import defaults
from drainer.cli.exits import MEANINGS, Exit
from drainer.config import Settings
from drainer.errors import ConfigError


class UsageError(ConfigError):
    """argparse refused the command line; carries the usage line of the command it was parsing."""

    def __init__(self, message: str, prog: str, usage: str) -> None:
        super().__init__(message)
        self.prog = prog
        self.usage = usage


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the description and epilog as written (examples, exit codes); wraps option help."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=30)


class Parser(argparse.ArgumentParser):
    """argparse with the drainer's rules: usage errors raise UsageError (exit 2; the CLI prints
    them as argparse would at a terminal, as a JSON record elsewhere); flags are never abbreviated;
    an unknown flag names the nearest real one; "-1d" is a (negative) value, not a flag."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)  # `--batch 10` must not quietly mean --batch-size
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)
        # Python 3.13's rule: anything starting with "-" and a digit is a value, so `--older-than
        # -1d` reaches the age check instead of "expected one argument".
        self._negative_number_matcher = re.compile(r"^-\.?\d")

    def error(self, message: str) -> Any:
        if message.startswith("the following arguments are required: COMMAND"):
            names = ", ".join(self.commands())
            message = f"choose a command: {names} (then `{self.prog} COMMAND --help`)"
        wrong = re.match(r"argument (COMMAND|VERB): invalid choice: '?(.*?)'? \(choose from", message)
        if wrong:
            message = self._wrong_choice(wrong[1].lower(), wrong[2])
        raise UsageError(message, self.prog, self.format_usage())

    def _wrong_choice(self, kind: str, value: str) -> str:
        import difflib

        names = list(self.commands())
        near = difflib.get_close_matches(value, names, n=1, cutoff=0.6)
        if near:
            return f"unknown {kind} {value!r}; did you mean {near[0]}?"
        # Most often an option's value read as the command: the option came before the command.
        return (
            f"unknown {kind} {value!r}: choose one of {', '.join(names)}; options go after the {kind} "
            f"(`{self.prog} {names[0]} --db-url ...`)"
        )

    def commands(self) -> dict[str, Parser]:
        """The subcommands this parser offers, by name (empty for a subcommand's own parser)."""
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                return dict(action.choices)
        return {}

    def subcommand(self, name: str) -> Parser | None:
        return self.commands().get(name)

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        # Each parser refuses what it does not know itself, so the message and the usage line are
        # the subcommand's, not the top level's.
        namespace, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(self._unrecognized(extras[0]))
        return namespace, extras

    def _unrecognized(self, arg: str) -> str:
        flag = arg.split("=", 1)[0]
        if not flag.startswith("-"):
            return f"unexpected argument {arg!r}"
        import difflib

        known = [s for s in self._option_string_actions if s.startswith("--")]
        near = difflib.get_close_matches(flag, known, n=1, cutoff=0.7)
        hint = f"; did you mean {near[0]}?" if near else f"; see `{self.prog} --help`"
        return f"unrecognized option {flag}{hint}"


@dataclass(frozen=True)
class Option:
    """One option as every command that uses it shows it: the flag, what it does, the environment
    variable that sets it too, the default as --help shows it (text only: argparse's own default
    goes in `kwargs`), its help group, and the rest of what argparse's add_argument takes (type,
    metavar, action, choices, default)."""

    flag: str
    help: str
    env: str | None = None
    default: str | None = None
    group: str = ""
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def help_text(self) -> str:
        notes = [n for n in (self.env and f"env {self.env}", self.default and f"default {self.default}") if n]
        text = f"{self.help} ({'; '.join(notes)})" if notes else self.help
        return text.replace("%", "%%")  # argparse expands % in help texts

    def add_to(self, container: Any) -> argparse.Action:
        action: argparse.Action = container.add_argument(self.flag, help=self.help_text(), **self.kwargs)
        return action


def _option(flag: str, help: str, env: str | None, shown: Any, group: str, **kwargs: Any) -> Option:
    return Option(flag, help, env, None if shown is None else str(shown), group, kwargs)


def _mib(n: int) -> str:
    return f"{n // (1024 * 1024)} MiB"


def age_value(text: str) -> str:
    """argparse type for AGE values (30d, 12h, 90m, 3600s, 2w): checked here, kept as written."""
    from drainer.prune import parse_age

    try:
        parse_age(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text.strip()


# The groups in the order --help shows them.
GROUPS = {
    "settings": "settings (flag > environment > --config-file > default)",
    "broker": "broker (RabbitMQ)",
    "tls": "TLS for amqps:// URLs (as [oslo_messaging_rabbit] ssl_* in vitrage.conf; see the README)",
    "database": "database",
    "timeouts": "timeouts and retries (broker and database)",
    "batches": "batches",
    "oversize": "oversize messages",
    "monitoring": "monitoring",
    "history": "Vitrage alarm history",
    "output": "output",
}

_AMQP_DEFAULT = defaults.AMQP_URL.replace("guest:guest", "guest:***")

OPTIONS: dict[str, Option] = {
    o.flag: o
    for o in (
        _option(
            "--config-file",
            "your vitrage.conf, read as oslo.config reads it: [DEFAULT] or [oslo_messaging_notifications] "
            "transport_url, [oslo_messaging_rabbit] ssl and ssl_*, [database] connection, [persistency] "
            "persistor_topic, and any option by name in [drainer]; repeatable, later files win; in the "
            "environment separated by spaces or commas",
            "DRAINER_CONFIG_FILE",
            None,
            "settings",
            action="append",
            metavar="PATH",
        ),
        _option(
            "--amqp-url",
            "broker URL; several separated by ';', or an oslo rabbit://u:p@h1,u:p@h2/vhost transport_url, "
            "fail over in order",
            "DRAINER_AMQP_URL",
            _AMQP_DEFAULT,
            "broker",
            metavar="URL",
        ),
        _option(
            "--amqp-url-file",
            "read the broker URL from a file",
            "DRAINER_AMQP_URL_FILE",
            None,
            "broker",
            metavar="PATH",
        ),
        *(
            _option(
                f"--amqp-ssl-{name}",
                text,
                "DRAINER_AMQP_SSL_" + name.upper().replace("-", "_"),
                None,
                "tls",
                metavar="PATH" if "file" in name else "VERSION",
            )
            for name, text in (
                ("ca-file", "CA bundle the broker's certificate must chain to; the host name is checked too"),
                ("cert-file", "client certificate (PEM), for a broker that asks for one"),
                ("key-file", "the client certificate's private key (PEM)"),
                ("version", "TLSv1_2, TLSv1_1, TLSv1 or SSLv23, as oslo.messaging's ssl_version"),
            )
        ),
        _option("--topic", "oslo topic; the queue is <topic>.info", "DRAINER_TOPIC", defaults.TOPIC, "broker"),
        _option("--queue", "queue name, instead of <topic>.info", "DRAINER_QUEUE", "<topic>.info", "broker"),
        _option(
            "--heartbeat",
            "AMQP heartbeat",
            "DRAINER_HEARTBEAT",
            f"{defaults.HEARTBEAT} s",
            "broker",
            type=int,
            metavar="SECONDS",
        ),
        _option(
            "--db-url",
            "SQLAlchemy URL: mysql+pymysql://user:pass@host/vitrage or sqlite:///path",
            "DRAINER_DB_URL",
            "none, required",
            "database",
            metavar="URL",
        ),
        _option(
            "--db-url-file",
            "read the database URL from a file",
            "DRAINER_DB_URL_FILE",
            None,
            "database",
            metavar="PATH",
        ),
        _option(
            "--lock-wait-timeout",
            "MySQL innodb_lock_wait_timeout and lock_wait_timeout of the session; SQLite busy timeout",
            "DRAINER_LOCK_WAIT_TIMEOUT",
            f"{defaults.LOCK_WAIT_TIMEOUT} s",
            "database",
            type=int,
            metavar="SECONDS",
        ),
        _option(
            "--connect-timeout",
            "per connect attempt",
            "DRAINER_CONNECT_TIMEOUT",
            f"{defaults.CONNECT_TIMEOUT:g} s",
            "timeouts",
            type=float,
            metavar="SECONDS",
        ),
        _option(
            "--socket-timeout",
            "per database read or write; the broker's blocked-connection timeout",
            "DRAINER_SOCKET_TIMEOUT",
            f"{defaults.SOCKET_TIMEOUT:g} s",
            "timeouts",
            type=float,
            metavar="SECONDS",
        ),
        _option(
            "--retry-seconds",
            "retry budget for a connect, and for a batch transaction",
            "DRAINER_RETRY_SECONDS",
            f"{defaults.RETRY_SECONDS:g} s",
            "timeouts",
            type=float,
            metavar="SECONDS",
        ),
        _option(
            "--batch-size",
            "messages per transaction",
            "DRAINER_BATCH_SIZE",
            defaults.BATCH_SIZE,
            "batches",
            type=int,
            metavar="N",
        ),
        _option(
            "--max-batches",
            "batches per run; not with --until-empty",
            "DRAINER_MAX_BATCHES",
            defaults.MAX_BATCHES,
            "batches",
            type=int,
            metavar="N",
        ),
        _option(
            "--until-empty",
            "take batches until the queue is empty; not with --max-batches; the environment "
            "takes 1/0, true/false, yes/no, on/off",
            "DRAINER_UNTIL_EMPTY",
            "off",
            "batches",
            action="store_true",
            default=None,
        ),
        _option(
            "--max-seconds",
            "start no new batch after this long",
            "DRAINER_MAX_SECONDS",
            f"{defaults.MAX_SECONDS:g} s",
            "batches",
            type=float,
            metavar="SECONDS",
        ),
        _option(
            "--max-batch-bytes",
            "a batch also stops growing at this many body bytes (at least 1024), which bounds memory",
            "DRAINER_MAX_BATCH_BYTES",
            _mib(defaults.MAX_BATCH_BYTES),
            "batches",
            type=int,
            metavar="BYTES",
        ),
        _option(
            "--max-message-bytes",
            "larger bodies go to the oversize queue; at least 1024, capped to 45% of max_allowed_packet",
            "DRAINER_MAX_MESSAGE_BYTES",
            _mib(defaults.MAX_MESSAGE_BYTES),
            "oversize",
            type=int,
            metavar="BYTES",
        ),
        _option(
            "--oversize-queue",
            "durable queue that keeps oversize messages byte-exact",
            "DRAINER_OVERSIZE_QUEUE",
            "<queue>.oversize",
            "oversize",
            metavar="QUEUE",
        ),
        _option(
            "--metrics-file",
            "node_exporter textfile to write; needs the metrics extra",
            "DRAINER_METRICS_FILE",
            None,
            "monitoring",
            metavar="PATH",
        ),
        _option(
            "--pushgateway",
            "Prometheus Pushgateway to push to; needs the metrics extra",
            "DRAINER_PUSHGATEWAY",
            None,
            "monitoring",
            metavar="URL",
        ),
        _option(
            "--history",
            "vitrage: also apply vitrage.alarm.* and vitrage.causal_relationship.* notifications to Vitrage's "
            "alarms, edges and changes, as vitrage-persistor does (stop vitrage-persistor first)",
            "DRAINER_HISTORY",
            "off",
            "history",
            choices=("vitrage", "off"),
        ),
        _option(
            "--progress",
            "progress bar on stderr; needs the progress extra",
            "DRAINER_PROGRESS",
            "on at a terminal for more than one batch",
            "output",
            action=argparse.BooleanOptionalAction,
            default=None,
        ),
        _option(
            "--log-format",
            "json: one record per line; text: one readable line per record",
            "DRAINER_LOG_FORMAT",
            "text at a terminal, json otherwise",
            "output",
            choices=("json", "text"),
        ),
        _option(
            "--verbose",
            "also show the broker client's (pika's) own log records, and debug records",
            "DRAINER_VERBOSE",
            "off",
            "output",
            action="store_true",
            default=None,
        ),
    )
}

# Bundles of shared options, by what a command talks to.
CONFIG = ("--config-file",)
BROKER = (
    "--amqp-url",
    "--amqp-url-file",
    "--topic",
    "--queue",
    "--amqp-ssl-ca-file",
    "--amqp-ssl-cert-file",
    "--amqp-ssl-key-file",
    "--amqp-ssl-version",
)
DATABASE = ("--db-url", "--db-url-file")
TIMEOUTS = ("--connect-timeout", "--socket-timeout", "--retry-seconds")
OUTPUT = ("--log-format", "--verbose")  # every command has these


def _epilog(examples: Iterable[tuple[str, str]], exits: Iterable[Exit | tuple[Exit, str]]) -> str:
    lines = []
    examples = list(examples)
    if examples:
        lines.append("examples:")
        for command, what in examples:
            lines += [f"  {command}", f"      {what}"]
        lines.append("")
    meanings = {Exit.SOFTWARE: MEANINGS[Exit.SOFTWARE], Exit.USAGE: MEANINGS[Exit.USAGE]}
    for item in exits:
        code, text = item if isinstance(item, tuple) else (item, MEANINGS[item])
        meanings[code] = text
    lines.append("exit codes:")
    lines += [f"  {int(code):<3} {code.name}: {text}" for code, text in sorted(meanings.items())]
    return "\n".join(lines)


def add_command(
    sub: Any,
    name: str,
    *,
    summary: str,
    description: str,
    options: Sequence[str],
    examples: Iterable[tuple[str, str]],
    exits: Iterable[Exit | tuple[Exit, str]],
    handler: Callable[[argparse.Namespace, Mapping[str, str], str], int],
    usage: str = "[options]",
    reworded: Mapping[str, tuple[str, str | None]] | None = None,
) -> Parser:
    """Register subcommand `name` with the shared options it uses and return its parser.

    `options` are flags declared in OPTIONS (unknown flags raise KeyError at once); OUTPUT is
    added to every command. `examples` are (command line, what it does) pairs; `exits` are Exit
    codes, alone or with a sentence for this command (1 and 2 are always listed). `usage` is what
    follows the command's name in the usage line (e.g. "(--before-id ID | --older-than AGE)
    [options]"). `reworded` gives a shared flag another help text and shown default for this
    command alone ({flag: (help, default)}), where the shared words would be wrong for it. The
    command's own options are added to the returned parser by the caller.
    """
    parser: Parser = sub.add_parser(
        name,
        help=summary,
        description=description,
        epilog=_epilog(examples, exits),
        usage=f"%(prog)s {usage}",
    )
    flags = (*options, *OUTPUT)
    used = {OPTIONS[flag].group for flag in flags}
    groups = {group: parser.add_argument_group(title) for group, title in GROUPS.items() if group in used}
    for flag in flags:
        option = OPTIONS[flag]
        if reworded and flag in reworded:
            text, shown = reworded[flag]
            option = replace(option, help=text, default=shown)
        option.add_to(groups[option.group])
    parser.set_defaults(handler=handler)
    return parser


def settings_from(args: argparse.Namespace, env: Mapping[str, str]) -> Settings:
    """Resolve the Settings (flag > env > config file > default) and register every configured
    password with the log scrubber before anything can print it."""
    from drainer import logs
    from drainer.config import resolve, secrets_of, url_passwords

    flags = vars(args)
    # Known before validation, so even a refused URL is never echoed with its password.
    raw = [flags.get("amqp_url"), flags.get("db_url"), env.get("DRAINER_AMQP_URL"), env.get("DRAINER_DB_URL")]
    logs.add_secrets({p for value in raw if value for p in url_passwords(value)}, tuple(v for v in raw if v))
    settings = resolve(flags, env)
    logs.add_secrets(secrets_of(settings), (*settings.amqp_urls, settings.db_url or ""))
    return settings
