"""config: flags > environment > config file > defaults, secret files, transport_url, URL masking."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from drainer import config, defaults
from drainer.config import Settings, mask_url, resolve, transport_url_to_amqp
from drainer.errors import ConfigError


def write_conf(tmp_path: Path, text: str, name: str = "vitrage.conf") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


VITRAGE_CONF = """\
[DEFAULT]
transport_url = rabbit://vitrage:from-file@file-host:5672/
debug = true

[database]
connection = mysql+pymysql://vitrage:from-file@db-file/vitrage

[persistency]
persistor_topic = topic_from_file
"""


# --- defaults -----------------------------------------------------------------------------------------


def test_no_flags_no_env_no_file_gives_the_defaults() -> None:
    settings = resolve({}, {})

    assert settings == Settings()
    assert settings.amqp_urls == (defaults.AMQP_URL,)
    assert settings.db_url is None
    assert settings.batch_size == defaults.BATCH_SIZE
    assert settings.max_batches == defaults.MAX_BATCHES
    assert settings.until_empty is False


def test_queue_name_defaults_to_the_persistor_topic_at_priority_info() -> None:
    assert resolve({}, {}).queue_name == "vitrage_persistor.info"


def test_oversize_queue_defaults_to_the_queue_name_plus_suffix() -> None:
    assert resolve({}, {}).oversize_queue_name == "vitrage_persistor.info.oversize"
    assert resolve({"oversize_queue": "parked"}, {}).oversize_queue_name == "parked"


def test_topic_names_the_queue() -> None:
    assert resolve({"topic": "my_topic"}, {}).queue_name == "my_topic.info"


def test_queue_flag_overrides_topic_flag() -> None:
    settings = resolve({"topic": "my_topic", "queue": "exact.queue"}, {})

    assert settings.queue_name == "exact.queue"


def test_unset_flags_arrive_as_none_and_change_nothing() -> None:
    flags = {"batch_size": None, "topic": None, "amqp_url": None, "db_url_file": None, "until_empty": None}

    assert resolve(flags, {}) == Settings()


def test_database_url_is_required_only_when_asked_for() -> None:
    with pytest.raises(ConfigError, match="no database URL"):
        resolve({}, {}).require_db_url()

    assert resolve({"db_url": "sqlite:///x.db"}, {}).require_db_url() == "sqlite:///x.db"


# --- precedence: flags > env > config file > defaults -------------------------------------------------


@pytest.mark.parametrize(
    ("use_file", "env", "flags", "expected_topic"),
    [
        pytest.param(False, {}, {}, "vitrage_persistor", id="default"),
        pytest.param(True, {}, {}, "topic_from_file", id="file-beats-default"),
        pytest.param(True, {"DRAINER_TOPIC": "topic_from_env"}, {}, "topic_from_env", id="env-beats-file"),
        pytest.param(
            True, {"DRAINER_TOPIC": "topic_from_env"}, {"topic": "topic_from_flag"}, "topic_from_flag", id="flag-wins"
        ),
        pytest.param(False, {}, {"topic": "topic_from_flag"}, "topic_from_flag", id="flag-beats-default"),
    ],
)
def test_topic_precedence(
    tmp_path: Path, use_file: bool, env: dict[str, str], flags: dict[str, Any], expected_topic: str
) -> None:
    if use_file:
        flags = {**flags, "config_file": [write_conf(tmp_path, VITRAGE_CONF)]}

    assert resolve(flags, env).topic == expected_topic


@pytest.mark.parametrize(
    ("env", "flags", "expected"),
    [
        pytest.param({}, {}, "mysql+pymysql://vitrage:from-file@db-file/vitrage", id="file"),
        pytest.param({"DRAINER_DB_URL": "sqlite:///env.db"}, {}, "sqlite:///env.db", id="env-beats-file"),
        pytest.param(
            {"DRAINER_DB_URL": "sqlite:///env.db"}, {"db_url": "sqlite:///flag.db"}, "sqlite:///flag.db", id="flag-wins"
        ),
    ],
)
def test_database_url_precedence(tmp_path: Path, env: dict[str, str], flags: dict[str, Any], expected: str) -> None:
    flags = {**flags, "config_file": [write_conf(tmp_path, VITRAGE_CONF)]}

    assert resolve(flags, env).db_url == expected


@pytest.mark.parametrize(
    ("env", "flags", "expected"),
    [
        pytest.param({}, {}, ("amqp://vitrage:from-file@file-host:5672/%2F",), id="file-transport-url"),
        pytest.param({"DRAINER_AMQP_URL": "amqp://env-host/"}, {}, ("amqp://env-host/",), id="env-beats-file"),
        pytest.param(
            {"DRAINER_AMQP_URL": "amqp://env-host/"},
            {"amqp_url": "amqp://flag-host/"},
            ("amqp://flag-host/",),
            id="flag-wins",
        ),
    ],
)
def test_amqp_url_precedence(
    tmp_path: Path, env: dict[str, str], flags: dict[str, Any], expected: tuple[str, ...]
) -> None:
    flags = {**flags, "config_file": [write_conf(tmp_path, VITRAGE_CONF)]}

    assert resolve(flags, env).amqp_urls == expected


@pytest.mark.parametrize(
    ("env", "flags", "expected"),
    [
        pytest.param({}, {}, defaults.BATCH_SIZE, id="default"),
        pytest.param({"DRAINER_BATCH_SIZE": "250"}, {}, 250, id="env"),
        pytest.param({"DRAINER_BATCH_SIZE": "250"}, {"batch_size": 10}, 10, id="flag-beats-env"),
        pytest.param({"DRAINER_BATCH_SIZE": ""}, {}, defaults.BATCH_SIZE, id="empty-env-is-unset"),
    ],
)
def test_batch_size_precedence(env: dict[str, str], flags: dict[str, Any], expected: int) -> None:
    assert resolve(flags, env).batch_size == expected


@pytest.mark.parametrize(
    ("env", "field", "expected"),
    [
        ({"DRAINER_MAX_BATCHES": "5"}, "max_batches", 5),
        ({"DRAINER_MAX_SECONDS": "90.5"}, "max_seconds", 90.5),
        ({"DRAINER_CONNECT_TIMEOUT": "2"}, "connect_timeout", 2.0),
        ({"DRAINER_HEARTBEAT": "15"}, "heartbeat", 15),
        ({"DRAINER_UNTIL_EMPTY": "true"}, "until_empty", True),
        ({"DRAINER_UNTIL_EMPTY": "0"}, "until_empty", False),
        ({"DRAINER_QUEUE": "q.from.env"}, "queue_name", "q.from.env"),
        ({"DRAINER_LOG_FORMAT": "text"}, "log_format", "text"),
    ],
)
def test_environment_values_are_typed(env: dict[str, str], field: str, expected: Any) -> None:
    value = getattr(resolve({}, env), field)

    assert value == expected
    assert type(value) is type(expected)


def test_config_file_can_be_named_by_the_environment(tmp_path: Path) -> None:
    env = {"DRAINER_CONFIG_FILE": write_conf(tmp_path, VITRAGE_CONF)}

    assert resolve({}, env).topic == "topic_from_file"


def test_config_file_flag_replaces_the_environment_list(tmp_path: Path) -> None:
    env = {"DRAINER_CONFIG_FILE": write_conf(tmp_path, VITRAGE_CONF)}
    other = write_conf(tmp_path, "[persistency]\npersistor_topic = other_topic\n", "other.conf")

    assert resolve({"config_file": [other]}, env).topic == "other_topic"


def test_later_config_file_wins_like_oslo_config(tmp_path: Path) -> None:
    base = write_conf(tmp_path, VITRAGE_CONF)
    override = write_conf(tmp_path, "[persistency]\npersistor_topic = override_topic\n", "override.conf")

    settings = resolve({"config_file": [base, override]}, {})

    assert settings.topic == "override_topic"
    assert settings.db_url == "mysql+pymysql://vitrage:from-file@db-file/vitrage"  # kept from the first file


def test_config_file_values_may_hold_percent_signs(tmp_path: Path) -> None:
    conf = write_conf(tmp_path, "[database]\nconnection = mysql+pymysql://u:p%40ss@db/vitrage\n")

    assert resolve({"config_file": [conf]}, {}).db_url == "mysql+pymysql://u:p%40ss@db/vitrage"


def test_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        resolve({"config_file": [str(tmp_path / "absent.conf")]}, {})


def test_config_file_that_is_not_ini_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid INI"):
        resolve({"config_file": [write_conf(tmp_path, "transport_url = no section header\n")]}, {})


# --- secrets from files -------------------------------------------------------------------------------


def test_database_url_is_read_from_the_file_named_by_the_environment(tmp_path: Path) -> None:
    secret = tmp_path / "db_url"
    secret.write_text("mysql+pymysql://vitrage:s3cret@db/vitrage\n", encoding="utf-8")

    settings = resolve({}, {"DRAINER_DB_URL_FILE": str(secret)})

    assert settings.db_url == "mysql+pymysql://vitrage:s3cret@db/vitrage"  # trailing newline dropped


@pytest.mark.parametrize(
    ("flags", "env", "named"),
    [
        ({"db_url": "sqlite:///a.db", "db_url_file": "/run/secrets/db-url"}, {}, "--db-url and --db-url-file"),
        ({"amqp_url": "amqp://h/", "amqp_url_file": "/run/secrets/amqp-url"}, {}, "--amqp-url and --amqp-url-file"),
        ({}, {"DRAINER_DB_URL": "sqlite:///a", "DRAINER_DB_URL_FILE": "/x"}, "DRAINER_DB_URL and DRAINER_DB_URL_FILE"),
        (
            {},
            {"DRAINER_AMQP_URL": "amqp://h", "DRAINER_AMQP_URL_FILE": "/x"},
            "DRAINER_AMQP_URL and DRAINER_AMQP_URL_FILE",
        ),
    ],
)
def test_a_url_and_a_url_file_at_the_same_level_contradict_each_other(flags, env, named) -> None:
    with pytest.raises(ConfigError, match=f"{named} contradict each other"):
        resolve(flags, env)


def test_database_url_file_beats_the_config_file(tmp_path: Path) -> None:
    secret = tmp_path / "db_url"
    secret.write_text("sqlite:///secret.db", encoding="utf-8")
    flags = {"config_file": [write_conf(tmp_path, VITRAGE_CONF)]}

    assert resolve(flags, {"DRAINER_DB_URL_FILE": str(secret)}).db_url == "sqlite:///secret.db"


def test_database_url_file_flag_beats_the_environment(tmp_path: Path) -> None:
    secret = tmp_path / "db_url"
    secret.write_text("sqlite:///flag-file.db", encoding="utf-8")

    settings = resolve({"db_url_file": str(secret)}, {"DRAINER_DB_URL": "sqlite:///env.db"})

    assert settings.db_url == "sqlite:///flag-file.db"


def test_amqp_url_is_read_from_the_file_named_by_the_environment(tmp_path: Path) -> None:
    secret = tmp_path / "amqp_url"
    secret.write_text("amqp://u:p@rabbit-1/%2F; amqp://u:p@rabbit-2/%2F\n", encoding="utf-8")

    settings = resolve({}, {"DRAINER_AMQP_URL_FILE": str(secret)})

    assert settings.amqp_urls == ("amqp://u:p@rabbit-1/%2F", "amqp://u:p@rabbit-2/%2F")


def test_amqp_url_file_may_hold_a_transport_url(tmp_path: Path) -> None:
    secret = tmp_path / "amqp_url"
    secret.write_text("rabbit://u:p@h1:5672,u:p@h2:5672/vitrage\n", encoding="utf-8")

    settings = resolve({}, {"DRAINER_AMQP_URL_FILE": str(secret)})

    assert settings.amqp_urls == ("amqp://u:p@h1:5672/vitrage", "amqp://u:p@h2:5672/vitrage")


def test_amqp_url_file_flag_beats_the_environment(tmp_path: Path) -> None:
    secret = tmp_path / "amqp_url"
    secret.write_text("amqp://from-file/", encoding="utf-8")

    settings = resolve({"amqp_url_file": str(secret)}, {"DRAINER_AMQP_URL": "amqp://from-env/"})

    assert settings.amqp_urls == ("amqp://from-file/",)


@pytest.mark.parametrize("variable", ["DRAINER_DB_URL_FILE", "DRAINER_AMQP_URL_FILE"])
def test_missing_secret_file_is_a_config_error(tmp_path: Path, variable: str) -> None:
    with pytest.raises(ConfigError, match=f"cannot read {variable} file"):
        resolve({}, {variable: str(tmp_path / "absent")})


# --- several AMQP URLs and oslo transport_url ---------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("amqp://a/", ("amqp://a/",)),
        ("amqp://a/;amqp://b/", ("amqp://a/", "amqp://b/")),
        ("amqp://a/ amqp://b/\namqp://c/", ("amqp://a/", "amqp://b/", "amqp://c/")),
        (" ;amqp://a/; ", ("amqp://a/",)),
    ],
)
def test_amqp_url_setting_may_list_several_urls_in_failover_order(value: str, expected: tuple[str, ...]) -> None:
    assert resolve({}, {"DRAINER_AMQP_URL": value}).amqp_urls == expected


@pytest.mark.parametrize(
    ("transport_url", "expected"),
    [
        pytest.param(
            "rabbit://u:p@h1:5672,u:p@h2:5672/vhost?ssl=1",
            ("amqps://u:p@h1:5672/vhost", "amqps://u:p@h2:5672/vhost"),
            id="multi-host-ssl",
        ),
        pytest.param("rabbit://u:p@h:5672/", ("amqp://u:p@h:5672/%2F",), id="root-vhost"),
        pytest.param("rabbit://u:p@h:5672", ("amqp://u:p@h:5672/%2F",), id="no-path-is-root-vhost"),
        # oslo.messaging's _transform_transport_url writes port 5672 for a host without one, TLS or not.
        pytest.param("rabbit://u:p@h/%2Fprod", ("amqp://u:p@h:5672/%2Fprod",), id="encoded-vhost-kept"),
        pytest.param("rabbit://u:p@h/openstack?ssl=0", ("amqp://u:p@h:5672/openstack",), id="ssl-off"),
        pytest.param("rabbit://u:p@h/v?ssl=true", ("amqps://u:p@h:5672/v",), id="ssl-true"),
        pytest.param("rabbit://u:p@h:5671/v?ssl=On", ("amqps://u:p@h:5671/v",), id="ssl-on-any-case"),
        pytest.param("amqps://u:p@h/v", ("amqps://u:p@h:5672/v",), id="amqps-scheme"),
        pytest.param(
            "rabbit://u:p@h1,u:p@h2,u:p@h3/",
            ("amqp://u:p@h1:5672/%2F", "amqp://u:p@h2:5672/%2F", "amqp://u:p@h3:5672/%2F"),
            id="three-hosts-in-order",
        ),
    ],
)
def test_transport_url_becomes_one_amqp_url_per_host(transport_url: str, expected: tuple[str, ...]) -> None:
    assert transport_url_to_amqp(transport_url) == expected


@pytest.mark.parametrize(
    ("transport_url", "message"),
    [
        ("kafka://h:9092/", "is not rabbit://"),
        ("http://u:p@h/", "is not rabbit://"),
        ("rabbit:///vhost", "names no host"),
    ],
)
def test_unusable_transport_url_is_a_config_error(transport_url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        transport_url_to_amqp(transport_url)


def test_transport_url_in_config_file_with_bad_scheme_is_a_config_error(tmp_path: Path) -> None:
    conf = write_conf(tmp_path, "[DEFAULT]\ntransport_url = kafka://h:9092/\n")

    with pytest.raises(ConfigError):
        resolve({"config_file": [conf]}, {})


def test_rabbit_transport_url_is_accepted_as_the_amqp_url_flag() -> None:
    settings = resolve({"amqp_url": "rabbit://u:p@h1:5672,u:p@h2:5672/vhost?ssl=1"}, {})

    assert settings.amqp_urls == ("amqps://u:p@h1:5672/vhost", "amqps://u:p@h2:5672/vhost")


# --- masking ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("amqp://guest:guest@localhost:5672/%2F", "amqp://guest:***@localhost:5672/%2F"),
        ("mysql+pymysql://vitrage:s3cr%40t@db/vitrage", "mysql+pymysql://vitrage:***@db/vitrage"),
        (
            "rabbit://u:pw1@h1:5672,v:pw2@h2:5672/vhost?ssl=1",
            "rabbit://u:***@h1:5672,v:***@h2:5672/vhost?ssl=1",
        ),
        (
            "connect to amqp://guest:hunter2@rabbit:5672/ refused; also mysql://root:toor@db/x failed",
            "connect to amqp://guest:***@rabbit:5672/ refused; also mysql://root:***@db/x failed",
        ),
        ("amqp://:only-password@h/", "amqp://:***@h/"),
        ("amqp://u:pa:ss@h/", "amqp://u:***@h/"),
    ],
)
def test_mask_url_hides_every_password(text: str, masked: str) -> None:
    assert mask_url(text) == masked


@pytest.mark.parametrize(
    "text",
    ["amqp://localhost/%2F", "amqp://user@h/", "sqlite:////var/lib/drainer/events.db", "no url at all: 12:30"],
)
def test_mask_url_leaves_text_without_passwords_alone(text: str) -> None:
    assert mask_url(text) == text


def test_config_error_about_a_url_does_not_show_its_password() -> None:
    with pytest.raises(ConfigError) as raised:
        resolve({"amqp_url": "http://guest:hunter2@rabbit/"}, {})

    assert "hunter2" not in str(raised.value)
    assert "guest:***@rabbit" in str(raised.value)


# --- invalid values -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "env", "message"),
    [
        pytest.param({"batch_size": 0}, {}, "batch size must be at least 1", id="batch-size-0"),
        pytest.param({}, {"DRAINER_BATCH_SIZE": "-5"}, "batch size must be at least 1", id="batch-size-negative"),
        pytest.param({"max_batches": 0}, {}, "max batches must be at least 1", id="max-batches-0"),
        pytest.param({}, {"DRAINER_BATCH_SIZE": "lots"}, "DRAINER_BATCH_SIZE must be a number", id="non-numeric"),
        pytest.param({}, {"DRAINER_BATCH_SIZE": "1.5"}, "DRAINER_BATCH_SIZE must be a number", id="not-an-integer"),
        pytest.param({}, {"DRAINER_MAX_SECONDS": "soon"}, "DRAINER_MAX_SECONDS must be a number", id="non-numeric-f"),
        pytest.param({"max_seconds": 0.0}, {}, "max seconds must be greater than 0", id="max-seconds-0"),
        pytest.param({}, {"DRAINER_MAX_SECONDS": "nan"}, "max seconds must be greater than 0", id="max-seconds-nan"),
        pytest.param({}, {"DRAINER_RETRY_SECONDS": "inf"}, "retry seconds must be greater than 0", id="retry-inf"),
        pytest.param({"connect_timeout": -1.0}, {}, "connect timeout must be greater than 0", id="connect-timeout"),
        pytest.param({"socket_timeout": 0.0}, {}, "socket timeout must be at least 1 second", id="socket-timeout"),
        pytest.param({"log_format": "xml"}, {}, "log format must be json or text", id="log-format"),
        pytest.param({}, {"DRAINER_AMQP_URL": "http://rabbit/"}, "must start with amqp://", id="bad-scheme-env"),
        pytest.param({"amqp_url": "rabbitmq.local:5672"}, {}, "must start with amqp://", id="no-scheme-flag"),
        pytest.param({}, {"DRAINER_AMQP_URL": "amqp://a/;ftp://b/"}, "must start with amqp://", id="second-url-bad"),
    ],
)
def test_invalid_setting_is_a_config_error(flags: dict[str, Any], env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve(flags, env)


def test_no_amqp_url_at_all_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no AMQP URL"):
        Settings(amqp_urls=()).validate()


def test_config_paths_come_from_flags_else_environment() -> None:
    assert config.config_paths({"config_file": ["/a.conf"]}, {"DRAINER_CONFIG_FILE": "/b.conf"}) == ["/a.conf"]
    assert config.config_paths({}, {"DRAINER_CONFIG_FILE": "/b.conf, /c.conf"}) == ["/b.conf", "/c.conf"]
    assert config.config_paths({}, {}) == []


@pytest.mark.parametrize(
    "env",
    [
        {"DRAINER_HEARTBEAT": "0"},
        {"DRAINER_SOCKET_TIMEOUT": "0.5"},
        {"DRAINER_LOCK_WAIT_TIMEOUT": "0"},
        {"DRAINER_MAX_MESSAGE_BYTES": "0"},
        {"DRAINER_MAX_BATCH_BYTES": "10"},
    ],
)
def test_a_setting_that_would_turn_a_bound_off_is_refused(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        config.resolve({}, env)


def test_a_semicolon_or_space_inside_a_password_does_not_split_the_url() -> None:
    urls = config.split_amqp_urls("amqp://u:p;w d@h1/%2F; amqp://u:x@h2/%2F")
    assert urls == ("amqp://u:p;w d@h1/%2F", "amqp://u:x@h2/%2F")


def test_secrets_of_collects_every_configured_password() -> None:
    settings = config.resolve({"amqp_url": "amqp://u:p,w0rd@h1/%2F", "db_url": "mysql+pymysql://d:db%40pw@h/x"}, {})
    assert {"p,w0rd", "db%40pw", "db@pw"} <= config.secrets_of(settings)
