"""Options shared by several commands, and Settings built from flags and the environment."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from drainer import defaults
from drainer.config import Settings
from drainer.errors import ConfigError


class Parser(argparse.ArgumentParser):
    """argparse, with usage errors raised as ConfigError (exit 2 with a JSON record)."""

    def error(self, message: str) -> Any:
        raise ConfigError(f"{self.prog}: {message}")


# argparse expands "%" in help texts: the default's "%2F" must be written "%%2F".
_DEFAULT_AMQP_SHOWN = defaults.AMQP_URL.replace("guest:guest", "guest:***").replace("%", "%%")


def connections(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("connections (flag > env > --config-file > default)")
    g.add_argument(
        "--config-file",
        action="append",
        metavar="PATH",
        help="your vitrage.conf, read as oslo.config reads it: [DEFAULT] or [oslo_messaging_notifications] "
        "transport_url, [oslo_messaging_rabbit] ssl and ssl_*, [database] connection, [persistency] "
        "persistor_topic; repeatable, later files win; env DRAINER_CONFIG_FILE",
    )
    g.add_argument(
        "--amqp-url",
        help=f"env DRAINER_AMQP_URL; default {_DEFAULT_AMQP_SHOWN}; "
        "several URLs separated by ';' or a rabbit:// transport_url fail over in order",
    )
    g.add_argument("--amqp-url-file", metavar="PATH", help="read the AMQP URL from a file; env DRAINER_AMQP_URL_FILE")
    g.add_argument("--db-url", help="SQLAlchemy URL, e.g. mysql+pymysql://user:pass@host/vitrage; env DRAINER_DB_URL")
    g.add_argument("--db-url-file", metavar="PATH", help="read the database URL from a file; env DRAINER_DB_URL_FILE")
    g.add_argument(
        "--topic", help=f"oslo topic; the queue is <topic>.info; env DRAINER_TOPIC; default {defaults.TOPIC}"
    )
    g.add_argument("--queue", help="queue name, overrides --topic; env DRAINER_QUEUE")
    g.add_argument(
        "--connect-timeout",
        type=float,
        help=f"seconds per connect attempt; env DRAINER_CONNECT_TIMEOUT; default {defaults.CONNECT_TIMEOUT:g}",
    )
    g.add_argument(
        "--socket-timeout",
        type=float,
        help=f"seconds per read/write; env DRAINER_SOCKET_TIMEOUT; default {defaults.SOCKET_TIMEOUT:g}",
    )
    g.add_argument(
        "--retry-seconds",
        type=float,
        help=f"retry budget for connects and a batch; env DRAINER_RETRY_SECONDS; default {defaults.RETRY_SECONDS:g}",
    )
    g.add_argument("--log-format", choices=("json", "text"), help="env DRAINER_LOG_FORMAT; default json")
    tls = parser.add_argument_group(
        "TLS for amqps:// URLs (as [oslo_messaging_rabbit] ssl_* in vitrage.conf; see the README)"
    )
    for name, text in (
        ("ca-file", "CA bundle the broker's certificate must chain to; the host name is checked too"),
        ("cert-file", "client certificate (PEM), for a broker that asks for one"),
        ("key-file", "the client certificate's private key (PEM)"),
        ("version", "TLSv1_2, TLSv1_1, TLSv1 or SSLv23, as oslo.messaging's ssl_version"),
    ):
        env_name = "DRAINER_AMQP_SSL_" + name.upper().replace("-", "_")
        tls.add_argument(
            f"--amqp-ssl-{name}", metavar="PATH" if "file" in name else "VERSION", help=f"{text}; env {env_name}"
        )


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


def history_option(parser: argparse.ArgumentParser) -> None:
    """`--history vitrage|off`: apply vitrage-graph's alarm-history notifications to Vitrage's tables."""
    parser.add_argument(
        "--history",
        choices=("vitrage", "off"),
        help="vitrage: also apply vitrage.alarm.* and vitrage.causal_relationship.* notifications to "
        "Vitrage's alarms/edges/changes, as vitrage-persistor does (stop vitrage-persistor first); "
        "env DRAINER_HISTORY; default off",
    )
