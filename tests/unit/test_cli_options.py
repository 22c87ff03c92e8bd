"""The command line's surface: each command's help, the option registry, usage rules, booleans."""

from __future__ import annotations

import re
from dataclasses import fields

import pytest

from drainer.cli import main
from drainer.cli.options import OPTIONS
from drainer.config import Settings, parse_env_bool, resolve
from drainer.errors import ConfigError

COMMANDS = [
    "drain",
    "migrate",
    "status",
    "events",
    "prune",
    "rebuild-history",
    "runs",
    "verify",
    "peek",
    "rejected list",
    "rejected show",
    "rejected republish",
    "oversize list",
    "oversize requeue",
    "lease show",
    "lease release",
]
BROKER_ONLY = {"--amqp-url", "--amqp-url-file", "--topic", "--queue", "--heartbeat"}
DRAIN_ONLY = {
    "--batch-size",
    "--max-batches",
    "--until-empty",
    "--max-seconds",
    "--max-batch-bytes",
    "--max-message-bytes",
    "--oversize-queue",
    "--metrics-file",
    "--pushgateway",
    "--progress",
}


# Where a shared option means something else for one command, its help says so.
REWORDED_DEFAULTS = {("rejected republish", "--queue"): "the row's queue"}


def help_of(command: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert main([*command.split(), "--help"], {}) == 0
    return capsys.readouterr().out


def flags_in(text: str) -> set[str]:
    return set(re.findall(r"^\s+(--[a-z-]+)", text, re.M))


@pytest.mark.parametrize(
    ("command", "absent"),
    [
        ("migrate", BROKER_ONLY | DRAIN_ONLY),
        ("events", BROKER_ONLY | DRAIN_ONLY | {"--lock-wait-timeout"}),
        ("prune", BROKER_ONLY | DRAIN_ONLY),
        ("status", DRAIN_ONLY | {"--heartbeat", "--lock-wait-timeout"}),
        ("rebuild-history", DRAIN_ONLY | {"--amqp-url", "--amqp-url-file", "--heartbeat"}),
        ("runs", BROKER_ONLY - {"--topic", "--queue"} | DRAIN_ONLY),
        ("verify", BROKER_ONLY | DRAIN_ONLY),
        ("rejected list", BROKER_ONLY | DRAIN_ONLY),
        ("rejected republish", DRAIN_ONLY | {"--topic", "--heartbeat"}),
        ("lease release", BROKER_ONLY | DRAIN_ONLY),
        ("peek", DRAIN_ONLY - {"--max-message-bytes", "--oversize-queue"}),
        ("drain", set()),
    ],
)
def test_each_command_s_help_lists_only_the_options_it_uses(command, absent, capsys) -> None:
    shown = flags_in(help_of(command, capsys))
    assert not shown & absent
    assert {"--config-file", "--db-url", "--log-format", "--verbose"} <= shown


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_s_help_shows_env_and_default_examples_and_exit_codes(command, capsys) -> None:
    text = help_of(command, capsys)
    flat = " ".join(text.split())
    for flag in flags_in(text) & set(OPTIONS):
        option = OPTIONS[flag]
        assert f"env {option.env}" in flat, flag
        default = REWORDED_DEFAULTS.get((command, flag), option.default)
        if default:
            assert f"default {default}" in flat, flag
    examples = text.split("examples:\n", 1)[1].split("\n\n", 1)[0]
    assert len(re.findall(rf"^  vitrage-drainer {command} ", examples, re.M)) >= 1
    codes = re.findall(r"^  (\d+) +[A-Z]+: ", text.split("exit codes:\n", 1)[1], re.M)
    assert {"0", "1", "2"} <= set(codes) and codes == sorted(codes, key=int)


def test_every_shared_option_is_set_by_its_own_environment_variable() -> None:
    settings = {f.name for f in fields(Settings)}
    for flag, option in OPTIONS.items():
        name = flag[2:].replace("-", "_")
        assert option.env == "DRAINER_" + name.upper(), flag
        assert name in settings or name in {"config_file", "amqp_url", "amqp_url_file", "db_url_file", "verbose"}


@pytest.mark.parametrize("value", ["1", "true", "TRUE", "yes", "On", " on "])
def test_boolean_environment_values_that_mean_true(value: str) -> None:
    assert parse_env_bool("DRAINER_UNTIL_EMPTY", value) is True
    assert resolve({}, {"DRAINER_UNTIL_EMPTY": value}).until_empty is True


@pytest.mark.parametrize("value", ["0", "false", "False", "no", "OFF"])
def test_boolean_environment_values_that_mean_false(value: str) -> None:
    assert resolve({}, {"DRAINER_PROGRESS": value}).progress is False


@pytest.mark.parametrize("value", ["maybe", "2", "y", "enabled", "tru"])
def test_any_other_boolean_environment_value_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="DRAINER_UNTIL_EMPTY must be one of 1/0, true/false, yes/no, on/off"):
        resolve({}, {"DRAINER_UNTIL_EMPTY": value})


@pytest.mark.parametrize(
    ("flags", "env"),
    [
        ({"until_empty": True, "max_batches": 10}, {}),
        ({"max_batches": 10}, {"DRAINER_UNTIL_EMPTY": "1"}),
        ({"until_empty": True}, {"DRAINER_MAX_BATCHES": "3"}),
    ],
)
def test_until_empty_and_max_batches_together_are_refused(flags, env) -> None:
    with pytest.raises(ConfigError, match="contradict each other"):
        resolve(flags, env)


def test_a_mistyped_command_names_the_near_one(capsys) -> None:
    assert main(["drian"], {}) == 2
    assert "unknown command 'drian'; did you mean drain?" in capsys.readouterr().err


def test_options_before_the_command_are_explained_not_taken_for_a_command(capsys) -> None:
    assert main(["rejected", "--db-url", "sqlite:///x.sqlite", "list"], {}) == 2
    err = capsys.readouterr().err
    assert "unknown verb 'sqlite:///x.sqlite'" in err and "options go after the verb" in err
    assert main(["--db-url", "sqlite:///x.sqlite", "drain"], {}) == 2
    assert "options go after" in capsys.readouterr().err


def test_flags_are_never_abbreviated(capsys) -> None:
    assert main(["drain", "--batch", "10", "--db-url", "sqlite://"], {}) == 2
    assert "did you mean --batch-size?" in capsys.readouterr().err


def test_an_unknown_flag_far_from_every_real_one_points_to_help(capsys) -> None:
    assert main(["status", "--frobnicate"], {}) == 2
    assert "unrecognized option --frobnicate; see `vitrage-drainer status --help`" in capsys.readouterr().err


def test_the_readme_configuration_table_lists_every_option_with_its_variable() -> None:
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    table = readme.split("| flag | environment | default | meaning |", 1)[1].split("\n\n", 1)[0]
    rows = {m[0]: m[1] for m in re.findall(r"^\| `(--[a-z-]+)`[^|]*\| `(DRAINER_[A-Z_]+)`", table, re.M)}
    assert rows == {flag: option.env for flag, option in OPTIONS.items()}


def test_a_bad_verbose_variable_is_refused_too(capsys) -> None:
    assert main(["migrate", "--db-url", "sqlite://"], {"DRAINER_VERBOSE": "maybe"}) == 2
    assert "DRAINER_VERBOSE must be one of" in capsys.readouterr().err
