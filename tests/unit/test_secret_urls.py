"""No output of any command contains a configured password, whatever the shape of the URL it is in.
Real processes (run_cli); no service is reached: every URL here is refused before or at connect."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli

DB_PASSWORD = "S3cretPW"
AMQP_PASSWORD = "Pw5ecret"

MALFORMED_DB_URLS = [
    f"user:{DB_PASSWORD}@127.0.0.1/db",  # no scheme
    f"mysql+pymysql//user:{DB_PASSWORD}@127.0.0.1/db",  # no colon
    f"mysql+pymysql:/user:{DB_PASSWORD}@127.0.0.1/db",  # one slash
    f"mysql+pymysql:user:{DB_PASSWORD}@127.0.0.1/db",  # no slashes
    f"mysql+pymysql://user:{DB_PASSWORD}@127.0.0.1:port/db",  # port not a number
    f"mysql+pymysql://user:{DB_PASSWORD}@127.0.0.1:99999/db",  # port out of range
    f"mysql+pymysql://user:{DB_PASSWORD}@[127.0.0.1/db",  # broken IPv6 bracket
    f"postgresql://user:{DB_PASSWORD}@127.0.0.1/db",  # unsupported backend
    f"mysql+pymysql://user:{DB_PASSWORD}@127.0.0.1/db?bogus_option=1\x1b[31m",  # control character
]
MALFORMED_AMQP_URLS = [
    f"guest:{AMQP_PASSWORD}@127.0.0.1:5672/%2F",
    f"amqp//guest:{AMQP_PASSWORD}@127.0.0.1:5672/%2F",
    f"amqp:/guest:{AMQP_PASSWORD}@127.0.0.1/",
    f"amqp://guest:{AMQP_PASSWORD}@127.0.0.1:port/",
    f"amqp://guest:{AMQP_PASSWORD}@[127.0.0.1/",
    f"rabbit//guest:{AMQP_PASSWORD}@h1,guest:{AMQP_PASSWORD}@h2/",
    f"http://guest:{AMQP_PASSWORD}@127.0.0.1/",
]
FAST = ["--retry-seconds", "1", "--connect-timeout", "1"]


def assert_no_secret(result, *secrets: str) -> None:
    assert result.code not in (0, 1), result.stderr  # refused as a setting, never a crash
    for secret in secrets:
        assert secret not in result.stdout and secret not in result.stderr, (result.stdout, result.stderr)


@pytest.mark.parametrize("url", MALFORMED_DB_URLS)
@pytest.mark.parametrize("command", [["drain"], ["status", "--json"], ["migrate"], ["events"]])
def test_a_malformed_database_url_is_never_printed_with_its_password(url: str, command: list[str]) -> None:
    assert_no_secret(run_cli(*command, "--db-url", url, *FAST), DB_PASSWORD)


@pytest.mark.parametrize("url", MALFORMED_DB_URLS[:4])
def test_a_malformed_database_url_from_the_environment_is_never_printed(url: str) -> None:
    assert_no_secret(run_cli("status", "--json", *FAST, env={"DRAINER_DB_URL": url}), DB_PASSWORD)


@pytest.mark.parametrize("url", MALFORMED_DB_URLS[:4])
def test_a_malformed_connection_in_the_config_file_is_never_printed(url: str, tmp_path: Path) -> None:
    conf = tmp_path / "vitrage.conf"
    conf.write_text(f"[database]\nconnection = {url}\n")
    for command in (["status", "--json"], ["drain"]):
        assert_no_secret(run_cli(*command, "--config-file", str(conf), *FAST), DB_PASSWORD)


@pytest.mark.parametrize("url", MALFORMED_AMQP_URLS)
@pytest.mark.parametrize("command", [["drain"], ["status", "--json"]])
def test_a_malformed_amqp_url_is_never_printed_with_its_password(url: str, command: list[str], tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'x.sqlite'}"
    assert_no_secret(run_cli(*command, "--amqp-url", url, "--db-url", db, *FAST), AMQP_PASSWORD)


@pytest.mark.parametrize("url", MALFORMED_AMQP_URLS[:3])
def test_a_malformed_transport_url_in_the_config_file_is_never_printed(url: str, tmp_path: Path) -> None:
    conf = tmp_path / "vitrage.conf"
    conf.write_text(f"[DEFAULT]\ntransport_url = {url}\n")
    db = f"sqlite:///{tmp_path / 'x.sqlite'}"
    assert_no_secret(run_cli("drain", "--config-file", str(conf), "--db-url", db, *FAST), AMQP_PASSWORD)


@pytest.mark.parametrize(
    ("option", "password"),
    [
        ("[DEFAULT]\ntransport_url = rabbit://guest:{}@127.0.0.1:5672/\n", "Xk$fjQ2pLm"),
        ("[DEFAULT]\ntransport_url = rabbit://guest:{}@127.0.0.1:5672/\n", "Xk${fjQ2pLm}"),
        ("[database]\nconnection = mysql+pymysql://u:{}@127.0.0.1/db\n", "Ab$cdEfGh"),
        ("[database]\nconnection = mysql+pymysql://u:{}@127.0.0.1/db\n", "$cdEfGh"),
    ],
)
@pytest.mark.parametrize("command", [["drain"], ["status", "--json"]])
def test_a_password_with_a_single_dollar_in_the_config_file_is_never_printed(
    option: str, password: str, command: list[str], tmp_path: Path
) -> None:
    # oslo.config reads `$name` as a reference to another option: the error must not name it,
    # since the "name" is the rest of the password.
    conf = tmp_path / "vitrage.conf"
    conf.write_text(option.format(password))
    db = f"sqlite:///{tmp_path / 'x.sqlite'}"
    extra = [] if "[database]" in option else ["--db-url", db]
    result = run_cli(*command, "--config-file", str(conf), *extra, *FAST)
    assert result.code == 2, result.stderr
    tail = password.split("$", 1)[1].strip("{}")
    assert_no_secret(result, password, tail)


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        (["--amqp-ssl-version", "TLSv1_3"], {}, "'TLSv1_3'"),
        (["--amqp-ssl-ca-file", "/no/such/ca.pem"], {}, "'/no/such/ca.pem'"),
        ([], {"DRAINER_BATCH_SIZE": "ten"}, "'ten'"),
        ([], {"DRAINER_HEARTBEAT": "0"}, "heartbeat"),
        (["--amqp-url", f"amqp://guest:{AMQP_PASSWORD}@127.0.0.1:99999/"], {}, "amqp://guest:***@127.0.0.1:99999/"),
        (["--amqp-url", "amqp://127.0.0.1/\x1b[2J"], {}, "\\x1b[2J"),
    ],
)
def test_a_setting_that_cannot_be_used_exits_2_naming_it(
    args: list[str], env: dict[str, str], named: str, tmp_path: Path
) -> None:
    db = f"sqlite:///{tmp_path / 'x.sqlite'}"
    result = run_cli("drain", "--db-url", db, *args, *FAST, env=env)
    assert result.code == 2, result.stderr
    assert named in result.summary.get("detail", "") + result.summary.get("message", "")
    assert AMQP_PASSWORD not in result.stderr and "\x1b" not in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["events", "--db-url", f"mysql+pymysql://user:{DB_PASSWORD}@127.0.0.1:99999/db"],
        ["status", "--json", "--db-url", "sqlite://", "--amqp-url", f"amqp://guest:{AMQP_PASSWORD}@127.0.0.1:99999/"],
    ],
)
def test_a_port_out_of_range_is_a_setting_to_fix_not_an_unreachable_server(args: list[str]) -> None:
    result = run_cli(*args, *FAST)
    assert result.code == 2, result.stderr
    assert "out of range" in result.stderr
    assert_no_secret(result, DB_PASSWORD, AMQP_PASSWORD)
