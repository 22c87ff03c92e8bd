"""Settings from flags > environment > config files (vitrage.conf style) > defaults; URL masking."""

from __future__ import annotations

import importlib.util
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from drainer import defaults
from drainer.errors import ConfigError

_ENV_PREFIX = "DRAINER_"
HISTORY_CHOICES = (None, "vitrage")  # None: off


@dataclass(frozen=True)
class Settings:
    """Everything a command needs, validated; built once by the CLI and passed down."""

    amqp_urls: tuple[str, ...] = (defaults.AMQP_URL,)
    db_url: str | None = None
    topic: str = defaults.TOPIC
    queue: str | None = None
    batch_size: int = defaults.BATCH_SIZE
    max_batches: int = defaults.MAX_BATCHES
    until_empty: bool = False
    max_seconds: float = defaults.MAX_SECONDS
    connect_timeout: float = defaults.CONNECT_TIMEOUT
    socket_timeout: float = defaults.SOCKET_TIMEOUT
    heartbeat: int = defaults.HEARTBEAT
    retry_seconds: float = defaults.RETRY_SECONDS
    lock_wait_timeout: int = defaults.LOCK_WAIT_TIMEOUT
    max_message_bytes: int = defaults.MAX_MESSAGE_BYTES
    max_batch_bytes: int = defaults.MAX_BATCH_BYTES
    oversize_queue: str | None = None
    log_format: str = defaults.LOG_FORMAT
    metrics_file: str | None = None
    pushgateway: str | None = None
    progress: bool | None = None  # None: show a bar only on a TTY
    history: str | None = None  # "vitrage": also apply alarm-history notifications to Vitrage's tables
    # TLS for amqps:// URLs, as [oslo_messaging_rabbit] ssl_* mean it (see broker._tls_options).
    amqp_ssl_ca_file: str | None = None
    amqp_ssl_cert_file: str | None = None
    amqp_ssl_key_file: str | None = None
    amqp_ssl_version: str | None = None

    @property
    def queue_name(self) -> str:
        return self.queue or self.topic + defaults.PRIORITY_SUFFIX

    @property
    def oversize_queue_name(self) -> str:
        return self.oversize_queue or self.queue_name + defaults.OVERSIZE_SUFFIX

    def validate(self) -> None:
        """Raise ConfigError with a plain sentence for the first invalid setting."""
        if self.batch_size < 1:
            raise ConfigError("batch size must be at least 1")
        if self.max_batches < 1:
            raise ConfigError("max batches must be at least 1")
        for name in ("max_seconds", "connect_timeout", "retry_seconds"):
            if not 0 < getattr(self, name) < math.inf:  # also refuses nan and inf from the environment
                raise ConfigError(f"{name.replace('_', ' ')} must be greater than 0")
        # PyMySQL and pika take whole seconds here; 0 would mean "no timeout" (heartbeat: off).
        for name in ("socket_timeout", "heartbeat", "lock_wait_timeout"):
            if not 1 <= getattr(self, name) < math.inf:
                raise ConfigError(f"{name.replace('_', ' ')} must be at least 1 second")
        if self.max_message_bytes < 1024 or self.max_batch_bytes < 1024:
            raise ConfigError("max message bytes and max batch bytes must be at least 1024")
        if self.history not in HISTORY_CHOICES:
            choices = ", ".join(c or "off" for c in HISTORY_CHOICES)
            raise ConfigError(f"history must be one of {choices}, got {self.history!r}")
        if self.log_format not in ("json", "text"):
            raise ConfigError("log format must be json or text")
        if self.history == "vitrage" and importlib.util.find_spec("dateutil") is None:
            raise ConfigError("--history vitrage needs python-dateutil: pip install 'vitrage-drainer[history]'")
        if (self.metrics_file or self.pushgateway) and importlib.util.find_spec("prometheus_client") is None:
            raise ConfigError("metrics need prometheus-client: pip install 'vitrage-drainer[metrics]'")
        if not self.amqp_urls:
            raise ConfigError("no AMQP URL: give --amqp-url or DRAINER_AMQP_URL")
        for name, value in (("database URL", self.db_url or ""), *(("AMQP URL", u) for u in self.amqp_urls)):
            if not value.isprintable():
                raise ConfigError(f"{name} {shown(value)} contains control characters")
        for url in self.amqp_urls:
            try:
                parts = urlsplit(url)
                parts.port  # noqa: B018  (raises ValueError for a port that is not a number)
            except ValueError as exc:
                raise ConfigError(f"AMQP URL {shown(url)} is not a valid URL: {exc}") from exc
            if parts.scheme not in ("amqp", "amqps"):
                raise ConfigError(f"AMQP URL {shown(url)} must start with amqp:// or amqps://")
            if not parts.hostname:
                raise ConfigError(f"AMQP URL {shown(url)} names no host")
        if self.amqp_ssl_version and self.amqp_ssl_version.lower() not in SSL_VERSIONS:
            raise ConfigError(
                f"ssl_version {self.amqp_ssl_version!r} is not one oslo.messaging accepts "
                f"({', '.join(SSL_VERSIONS)}, in any case)"
            )
        for name in ("amqp_ssl_ca_file", "amqp_ssl_cert_file", "amqp_ssl_key_file"):
            path = getattr(self, name)
            if path and not os.access(path, os.R_OK):
                raise ConfigError(f"{name.removeprefix('amqp_')} {path!r} cannot be read")

    def require_db_url(self) -> str:
        if not self.db_url:
            raise ConfigError(
                "no database URL: give --db-url, DRAINER_DB_URL, DRAINER_DB_URL_FILE or a "
                "config file with [database] connection (e.g. mysql+pymysql://user:pass@host/vitrage)"
            )
        return self.db_url


# oslo.messaging's ssl_version values (impl_rabbit._SSL_PROTOCOLS on a current OpenSSL).
SSL_VERSIONS = ("tlsv1", "tlsv1_1", "tlsv1_2", "sslv23")

# A URL in free text: scheme://, then up to the next whitespace or quote. Its credentials run to
# the LAST "@" in it, so a raw "@", "/", "," or ";" inside a password is hidden too.
_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<rest>[^\s'\"<>]*)")
# Credentials of a URL whatever its shape (no scheme, "mysql+pymysql//", a missing "/"): a word,
# ":", then anything up to the last "@" of the same token.
_USERINFO = re.compile(r"(?P<lead>^|[\s'\"(<=/,;])(?P<user>[^\s'\"<>:/@,;]*):(?!//)(?P<secret>[^\s'\"<>]*)@")


def _mask_userinfo(rest: str) -> str:
    userinfo, at, host = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return rest
    return f"{userinfo.partition(':')[0]}:***@{host}"


def _mask_one(match: re.Match[str]) -> str:
    rest = match["rest"]
    if match["scheme"].lower() == "rabbit://":  # oslo lists hosts with ","; each has its credentials
        return match["scheme"] + ",".join(_mask_userinfo(part) for part in rest.split(","))
    return match["scheme"] + _mask_userinfo(rest)


def mask_url(text: str) -> str:
    """Replace every password in a URL (or in text quoting URLs, of any shape) with ***."""
    text = _URL.sub(_mask_one, text)
    return _USERINFO.sub(lambda m: f"{m['lead']}{m['user']}:***@" if "***" not in m["secret"] else m.group(), text)


def shown(value: str) -> str:
    """A setting as an error message may show it: passwords masked, control characters escaped."""
    return ascii(mask_url(value))[1:-1] if not value.isprintable() else mask_url(value)


def url_passwords(url: str) -> set[str]:
    """Every reading of the password(s) in one URL string, whatever its shape (with or without a
    scheme, "//" or ":"): the credentials up to the last "@" and, for an oslo multi-host URL, each
    host's; each text after a ":" in them; raw and percent-decoded. Six characters or more:
    shorter ones would mask ordinary words (mask_url still hides them inside URLs)."""
    rest = url.strip()
    if "//" in rest.rpartition("@")[0]:
        rest = rest.split("//", 1)[1]
    candidates = [rest.rpartition("@")[0]] + [part.rpartition("@")[0] for part in rest.split(",")]
    found = set()
    for userinfo in candidates:
        pieces = userinfo.split(":")
        for i in range(1, len(pieces)):
            password = ":".join(pieces[i:])
            if len(password) >= 6:
                found.update({password, unquote(password)})
    return found


# [oslo_messaging_rabbit] options a transport_url's query may set (oslo.messaging's
# ConfigOptsProxy: a query parameter overrides the option of the same name), as Settings fields.
_TLS_OPTIONS = {
    "ssl_ca_file": "amqp_ssl_ca_file",
    "ssl_cert_file": "amqp_ssl_cert_file",
    "ssl_key_file": "amqp_ssl_key_file",
    "ssl_version": "amqp_ssl_version",
}


def transport_query(url: str) -> dict[str, str]:
    """The query of an oslo transport_url, repeated keys joined with "," (TransportURL.parse)."""
    return {key: ",".join(values) for key, values in parse_qs(urlsplit(url).query).items()}


def transport_url_to_amqp(url: str, ssl: bool | None = None) -> tuple[str, ...]:
    """oslo `rabbit://u:p@h1:5672,u:p@h2:5672/vhost?ssl=1` -> one amqp(s) URL per host, in order.

    TLS is on when the query's `ssl` says so, else when `ssl` (the config file's
    [oslo_messaging_rabbit] ssl) does. A host without a port gets 5672, with TLS too, as
    oslo.messaging's `_transform_transport_url` does.
    """
    from drainer.vitrage_conf import parse_bool

    parts = urlsplit(url)
    if parts.scheme not in ("rabbit", "amqp", "amqps"):
        raise ConfigError(f"transport_url scheme {parts.scheme!r} is not rabbit://")
    query = transport_query(url)
    if "ssl" in query:
        ssl = parse_bool(query["ssl"], "transport_url ?ssl=")
    scheme = "amqps" if ssl or parts.scheme == "amqps" else "amqp"
    vhost = unquote(parts.path[1:]) if parts.path not in ("", "/") else "/"
    urls = []
    userinfo = ""
    for host in parts.netloc.split(","):
        if not host:
            continue
        if "@" in host:
            userinfo, _, host = host.rpartition("@")
        try:
            port = urlsplit(f"//{host}").port
        except ValueError as exc:
            raise ConfigError(f"transport_url host {host!r}: {exc}") from exc
        # A host without credentials uses the previous host's, as kombu does for oslo.messaging.
        prefix = f"{userinfo}@" if userinfo else ""
        urls.append(f"{scheme}://{prefix}{host}{'' if port else ':5672'}/{quote(vhost, safe='')}")
    if not urls:
        raise ConfigError("transport_url names no host")
    return tuple(urls)


def tls_from_query(url: str) -> dict[str, Any]:
    """TLS settings a transport_url's query sets (`?ssl_ca_file=/etc/ssl/ca.pem`)."""
    try:
        query = transport_query(url) if url.startswith(("rabbit://", "amqp://", "amqps://")) else {}
    except ValueError:
        return {}  # validate() names the URL that does not parse
    return {field: query[name] for name, field in _TLS_OPTIONS.items() if name in query}


def read_config_files(paths: Iterable[str]) -> dict[str, Any]:
    """Settings found in vitrage.conf-style files, read as oslo.config reads them (vitrage_conf)."""
    paths = list(paths)
    if not paths:
        return {}
    from drainer import vitrage_conf

    conf = vitrage_conf.read(paths)
    found: dict[str, Any] = {}
    # Vitrage notifies through oslo.messaging's notification transport: its own transport_url
    # when set, else DEFAULT's.
    transport = conf.get("oslo_messaging_notifications", "transport_url") or conf.get("DEFAULT", "transport_url")
    if transport:
        ssl = conf.get("oslo_messaging_rabbit", "ssl")
        found["amqp_urls"] = transport_url_to_amqp(transport, ssl)
        if any(u.startswith("amqps://") for u in found["amqp_urls"]):
            for name, field in _TLS_OPTIONS.items():
                found[field] = conf.get("oslo_messaging_rabbit", name) or None
            found.update(tls_from_query(transport))
    connection = conf.get("database", "connection")
    if connection:
        found["db_url"] = connection
    topic = conf.get("persistency", "persistor_topic")
    if not topic:
        raise ConfigError("[persistency] persistor_topic is empty in the config file")
    found["topic"] = topic
    found.update(_drainer_section(conf))
    return found


def _drainer_section(conf: Any) -> dict[str, Any]:
    """A `[drainer]` section sets any option by its flag name (`batch_size = 500`, `history = vitrage`);
    read like the rest of the file (vitrage_conf: substitutions, last value wins)."""
    own = conf.section("drainer")
    names = {f.name for f in fields(Settings)} - {"amqp_urls", "db_url"}
    unknown = sorted(set(own) - names)
    if unknown:
        raise ConfigError(f"[drainer] has unknown options: {', '.join(unknown)}")
    return {name: _coerce(f"[drainer] {name}", value, _TYPES.get(name, str)) for name, value in own.items()}


def _read_secret_file(path: str, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"cannot read {what} file {path}: {exc.strerror}") from exc


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def parse_env_bool(name: str, raw: str) -> bool:
    """An environment variable's boolean: 1/0, true/false, yes/no, on/off in any case; anything
    else (`maybe`) is a ConfigError, never a silent false."""
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name} must be one of 1/0, true/false, yes/no, on/off; got {raw!r}")


def _coerce(name: str, raw: Any, kind: Any) -> Any:
    if raw is None or not isinstance(raw, str):
        return raw
    if kind in ("bool", bool, "bool | None"):
        return parse_env_bool(name, raw)
    try:
        if kind in ("int", int):
            return int(raw)
        if kind in ("float", float):
            return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from exc
    return raw


_TYPES = {
    "batch_size": int,
    "max_batches": int,
    "heartbeat": int,
    "lock_wait_timeout": int,
    "max_message_bytes": int,
    "max_batch_bytes": int,
    "max_seconds": float,
    "connect_timeout": float,
    "socket_timeout": float,
    "retry_seconds": float,
    "until_empty": bool,
    "progress": bool,
}


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for f in fields(Settings):
        if f.name == "amqp_urls":
            continue
        raw = env.get(_ENV_PREFIX + f.name.upper())
        if raw not in (None, ""):
            found[f.name] = _coerce(_ENV_PREFIX + f.name.upper(), raw, _TYPES.get(f.name, str))
    amqp = env.get("DRAINER_AMQP_URL") or (
        _read_secret_file(env["DRAINER_AMQP_URL_FILE"], "DRAINER_AMQP_URL_FILE")
        if env.get("DRAINER_AMQP_URL_FILE")
        else None
    )
    if amqp:
        found["amqp_urls"] = split_amqp_urls(amqp)
        found.update(tls_from_query(amqp))
    if "db_url" not in found and env.get("DRAINER_DB_URL_FILE"):
        found["db_url"] = _read_secret_file(env["DRAINER_DB_URL_FILE"], "DRAINER_DB_URL_FILE")
    return found


def split_amqp_urls(value: str) -> tuple[str, ...]:
    """One URL, several separated by whitespace or ';', or an oslo rabbit:// transport_url."""
    value = value.strip(" \t\r\n;")
    if value.startswith("rabbit://"):
        return transport_url_to_amqp(value)
    # Split only where the next URL begins, so a ';' or a space inside a password stays put.
    return tuple(u.strip(" \t\r\n;") for u in re.split(r"[\s;]+(?=[a-z][a-z0-9+.-]*://)", value) if u.strip())


def secrets_of(settings: Settings) -> set[str]:
    """The passwords in the configured URLs, so any text can be scrubbed of them before logging."""
    return {p for url in (*settings.amqp_urls, settings.db_url or "") for p in url_passwords(url)}


def config_paths(flags: Mapping[str, Any], env: Mapping[str, str]) -> list[str]:
    if flags.get("config_file"):
        return list(flags["config_file"])
    raw = env.get("DRAINER_CONFIG_FILE", "")
    return [p for p in re.split(r"[\s,]+", raw) if p]


def resolve(flags: Mapping[str, Any], env: Mapping[str, str]) -> Settings:
    """Merge the sources, highest first: flags, environment, config files, defaults. A URL and a
    file holding one, given at the same level, contradict each other (ConfigError)."""
    for name in ("db_url", "amqp_url"):
        flag, variable = "--" + name.replace("_", "-"), _ENV_PREFIX + name.upper()
        if flags.get(name) and flags.get(name + "_file"):
            raise ConfigError(f"{flag} and {flag}-file contradict each other: give one of them")
        if env.get(variable) and env.get(variable + "_FILE"):
            raise ConfigError(f"{variable} and {variable}_FILE contradict each other: give one of them")
    merged: dict[str, Any] = read_config_files(config_paths(flags, env))
    merged.update(_from_env(env))
    given = {k: v for k, v in flags.items() if v is not None}
    if given.get("amqp_url_file"):
        amqp = _read_secret_file(given["amqp_url_file"], "AMQP URL")
        merged["amqp_urls"] = split_amqp_urls(amqp)
        merged.update(tls_from_query(amqp))
    if given.get("db_url_file"):
        merged["db_url"] = _read_secret_file(given["db_url_file"], "database URL")
    if given.get("amqp_url"):
        merged["amqp_urls"] = split_amqp_urls(given["amqp_url"])
        merged.update(tls_from_query(given["amqp_url"]))
    names = {f.name for f in fields(Settings)}
    merged.update({k: v for k, v in given.items() if k in names})
    if merged.get("until_empty") and merged.get("max_batches") is not None:
        raise ConfigError(
            "--until-empty and --max-batches (or DRAINER_UNTIL_EMPTY and DRAINER_MAX_BATCHES) contradict "
            "each other: --until-empty takes batches until the queue is empty; give one of them"
        )
    if isinstance(merged.get("history"), str) and merged["history"].strip().lower() in ("off", "none", ""):
        merged["history"] = None
    settings = Settings(**merged)
    settings.validate()
    return settings
