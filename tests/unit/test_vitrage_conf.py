"""vitrage.conf read by the drainer and by oslo.config itself, compared value by value."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from drainer import vitrage_conf
from drainer.config import read_config_files, resolve
from drainer.errors import ConfigError
from tests.conftest import require_module

cfg = require_module("oslo_config.cfg")


# Options the cases refer to with $name: oslo.config substitutes registered options only, and
# Vitrage registers hundreds; these stand for them.
REFERENCED = [("database", "pw"), ("DEFAULT", "rabbit_pw"), ("other", "host")]


def oslo_values(paths: list[str]) -> dict[tuple[str, str], Any]:
    """What Vitrage's own ConfigOpts gives for each option the drainer reads."""
    conf = cfg.ConfigOpts()
    for group, name in REFERENCED:
        conf.register_opt(cfg.StrOpt(name), group=None if group == "DEFAULT" else group)
    for option in vitrage_conf.OPTIONS:
        kind = cfg.BoolOpt if option.kind == "bool" else cfg.StrOpt
        opt = kind(option.name, default=option.default, secret=option.secret)
        conf.register_opt(opt, group=None if option.group == "DEFAULT" else option.group)
    conf([], project="vitrage", default_config_files=paths, default_config_dirs=[], use_env=False)
    out = {}
    for option in vitrage_conf.OPTIONS:
        group = conf if option.group == "DEFAULT" else getattr(conf, option.group)
        out[(option.group, option.name)] = getattr(group, option.name)
    return out


def drainer_values(paths: list[str]) -> dict[tuple[str, str], Any]:
    conf = vitrage_conf.read(paths)
    return {(o.group, o.name): conf.get(o.group, o.name) for o in vitrage_conf.OPTIONS}


# Each case: the text of one or more files, as operators write them.
CASES = {
    "dollar-escaped": ["[database]\nconnection = mysql+pymysql://vitrage:Pa$$w0rd@db/vitrage\n"],
    "backslash-dollar": ["[database]\nconnection = mysql+pymysql://vitrage:Pa\\$w0rd@db/vitrage\n"],
    "substitution-same-section": [
        "[database]\npw = S3cret\nconnection = mysql+pymysql://vitrage:$pw@db/vitrage\n",
    ],
    "substitution-braced-from-default": [
        "[DEFAULT]\nrabbit_pw = guest\ntransport_url = rabbit://guest:${rabbit_pw}@h:5672/\n",
    ],
    "substitution-dotted": [
        "[other]\nhost = db1\n[database]\nconnection = mysql+pymysql://u:p@${other.host}/vitrage\n",
    ],
    "dollar-not-a-name": ["[database]\nconnection = mysql+pymysql://u:Pa$1w0rd@db/vitrage\n"],
    "dollar-at-end": ["[database]\nconnection = mysql+pymysql://u:pw$@db/vitrage\n"],
    "quoted": ['[database]\nconnection = "mysql+pymysql://u:p@db/vitrage"\n'],
    "single-quoted": ["[persistency]\npersistor_topic = 'vitrage_persistor_2'\n"],
    "inline-hash-is-not-a-comment": ["[database]\nconnection = mysql+pymysql://u:p#x@db/vitrage # note\n"],
    "colon-assignment": ["[persistency]\npersistor_topic: from_colon\n"],
    "comments-and-blank": ["# c\n; c\n[DEFAULT]\n\n# transport_url = rabbit://no\ntransport_url = rabbit://a:b@h/\n"],
    "continuation": ["[database]\nconnection = mysql+pymysql://u:p@db/\n  vitrage\n"],
    "section-case": ["[DATABASE]\nconnection = mysql+pymysql://u:p@db/upper\n"],
    "default-lowercase-is-another-section": ["[default]\ntransport_url = rabbit://x:y@h/\n"],
    "key-case-sensitive": ["[database]\nConnection = mysql+pymysql://u:p@db/ignored\n"],
    "repeated-key-last-wins": ["[persistency]\npersistor_topic = a\npersistor_topic = b\n"],
    "later-file-wins": [
        "[persistency]\npersistor_topic = first\n[database]\nconnection = sqlite:///a\n",
        "[persistency]\npersistor_topic = second\n",
    ],
    "notification-transport": [
        "[DEFAULT]\ntransport_url = rabbit://a:b@rpc/\n"
        "[oslo_messaging_notifications]\ntransport_url = rabbit://c:d@notify/\n",
    ],
    "ssl-options": [
        "[oslo_messaging_rabbit]\nssl = True\nssl_ca_file = /etc/ssl/ca.pem\nssl_version = TLSv1_2\n"
        "ssl_cert_file = /c.pem\nssl_key_file = /k.pem\n",
    ],
    "ssl-yes": ["[oslo_messaging_rabbit]\nssl = yes\n"],
    "ssl-off": ["[oslo_messaging_rabbit]\nssl = OFF\n"],
    "empty-value": ["[database]\nconnection =\n"],
}


@pytest.mark.parametrize("texts", CASES.values(), ids=CASES.keys())
def test_the_drainer_reads_each_option_as_oslo_config_does(texts: list[str], tmp_path: Path) -> None:
    paths = []
    for i, text in enumerate(texts):
        path = tmp_path / f"{i}.conf"
        path.write_text(text)
        paths.append(str(path))
    assert drainer_values(paths) == oslo_values(paths)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[database]\nconnection = mysql+pymysql://u:Pa$word@db/v\n", "refers to a $name"),
        (
            "[DEFAULT]\ntransport_url = rabbit://h/\n"
            "[oslo_messaging_rabbit]\nssl = true\nssl_ca_file = $ca_dir/ca.pem\n",
            "refers to $ca_dir",  # outside a URL the reference is named
        ),
        ("[DEFAULT]\ntransport_url = rabbit://h/\n[oslo_messaging_rabbit]\nssl = maybe\n", "must be true or false"),
        ("connection = x\n", "before the first [section]"),
        ("[database\nconnection = x\n", "invalid section header"),
        ("[database]\n  continued\n", "unexpected continuation"),
    ],
)
def test_what_oslo_config_refuses_is_a_config_error_naming_it(text: str, words: str, tmp_path: Path) -> None:
    path = tmp_path / "vitrage.conf"
    path.write_text(text)
    with pytest.raises(ConfigError, match=words.replace("$", r"\$").replace("[", r"\[")):
        read_config_files([str(path)])
    with pytest.raises(Exception):  # noqa: B017 - oslo.config refuses the same file, in its own words
        oslo_values([str(path)])


def test_a_password_written_with_a_doubled_dollar_reaches_the_database_url(tmp_path: Path) -> None:
    path = tmp_path / "vitrage.conf"
    path.write_text("[database]\nconnection = mysql+pymysql://vitrage:Pa$$w0rd@db/vitrage\n")
    assert resolve({"config_file": [str(path)]}, {}).db_url == "mysql+pymysql://vitrage:Pa$w0rd@db/vitrage"


def test_ssl_true_in_the_config_file_turns_tls_on_with_its_files(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    path = tmp_path / "vitrage.conf"
    path.write_text(
        "[DEFAULT]\ntransport_url = rabbit://u:p@h1,u:p@h2:5671/v\n"
        f"[oslo_messaging_rabbit]\nssl = true\nssl_ca_file = {ca}\nssl_version = tlsv1_2\n"
    )
    settings = resolve({"config_file": [str(path)]}, {})
    assert settings.amqp_urls == ("amqps://u:p@h1:5672/v", "amqps://u:p@h2:5671/v")
    assert (settings.amqp_ssl_ca_file, settings.amqp_ssl_version) == (str(ca), "tlsv1_2")


def test_the_transport_url_query_overrides_the_rabbit_section(tmp_path: Path) -> None:
    path = tmp_path / "vitrage.conf"
    path.write_text(
        "[DEFAULT]\ntransport_url = rabbit://u:p@h/?ssl=0\n[oslo_messaging_rabbit]\nssl = true\nssl_ca_file = /nope\n"
    )
    settings = resolve({"config_file": [str(path)]}, {})
    assert settings.amqp_urls == ("amqp://u:p@h:5672/%2F",) and settings.amqp_ssl_ca_file is None


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"DRAINER_AMQP_SSL_VERSION": "TLSv1_3"}, "ssl_version 'TLSv1_3' is not one oslo.messaging accepts"),
        ({"DRAINER_AMQP_SSL_CA_FILE": "/no/such/ca.pem"}, "ssl_ca_file '/no/such/ca.pem' cannot be read"),
        ({"DRAINER_AMQP_URL": "amqp://u:S3cretPW@h:notaport/"}, "AMQP URL amqp://u:\\*\\*\\*@h:notaport/ is not"),
        ({"DRAINER_AMQP_URL": "amqp://u:S3cretPW@h\x1b[31m/"}, r"\\x1b"),
    ],
)
def test_a_setting_that_cannot_be_used_is_a_config_error_naming_it(env: dict[str, str], words: str) -> None:
    with pytest.raises(ConfigError, match=words) as caught:
        resolve({}, env)
    assert "S3cretPW" not in str(caught.value)
