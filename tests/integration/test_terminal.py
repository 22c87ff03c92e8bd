"""At the terminal: what a person sees in a real pseudo-terminal (rendered by a terminal emulator),
and what a machine reads off a TTY, for the same commands."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from drainer.cli import build_parser
from tests.conftest import ROOT, oslo_v2, run_cli, run_in_terminal

pytestmark = pytest.mark.integration

STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[+-]\d{4}"
RECORD = re.compile(
    rf"^{STAMP} (INFO|WARNING|ERROR|DEBUG) +(?P<logger>[\w.]+) \[(?P<run>[0-9a-f]{{12}})\] (?P<msg>.+)$"
)

PRUNE_USAGE = (
    "usage: vitrage-drainer prune (--before-id ID | --older-than AGE | --history-older-than AGE | "
    "--runs-older-than AGE) [options]"
)


def records(lines: list[str]) -> list[re.Match[str]]:
    return [m for line in lines if (m := RECORD.match(line))]


def field(line: str, name: str) -> str:
    match = re.search(rf"(?:^|\s){name}=(\S+)", line)
    assert match, f"no {name}= in {line!r}"
    return match[1]


# 1. Progress and logs share the terminal


def test_progress_bar_and_records_share_the_terminal_in_whole_lines(rabbit, mysql_db):
    run_cli("migrate", "--db-url", mysql_db.url)
    rabbit.publish([oslo_v2({"seq": i}) for i in range(4000)] + [b"not json"])
    args = ["drain", "--db-url", mysql_db.url, "--amqp-url", rabbit.url, "--queue", rabbit.queue]
    screen = run_in_terminal(*args, "--until-empty", "--batch-size", "500")

    assert screen.code == 0, screen.text
    bars = [line for line in screen.lines if line.startswith("draining:")]
    assert len(bars) == 1, screen.text  # redrawn in place, never left in pieces
    seen = records(screen.lines)
    assert len(seen) == len(screen.lines) - 1, screen.text  # every other line is one whole record
    assert len({m["run"] for m in seen}) == 1
    batches = [m for m in seen if "batch committed and acked" in m["msg"]]
    assert [int(field(m[0], "batch")) for m in batches] == list(range(1, 10))
    assert seen[-1]["msg"].startswith("drain finished") and screen.lines.index(bars[0]) < len(screen.lines) - 1
    # The bar ends on the run's true totals, as integers, the same as the summary's.
    assert "4001/4001" in bars[0] and "stored=4000 " in bars[0] and bars[0].endswith("rejected=1]")
    assert field(seen[-1][0], "stored") == "4000" and "e+" not in screen.text
    assert rabbit.depth() == 0 and mysql_db.rows("SELECT COUNT(*) AS n FROM drainer_events")[0].n == 4000


def test_json_records_at_a_terminal_are_whole_lines_too(rabbit, sqlite_db):
    run_cli("migrate", "--db-url", sqlite_db.url)
    rabbit.publish([oslo_v2({"seq": i}) for i in range(600)])
    args = ["drain", "--db-url", sqlite_db.url, "--amqp-url", rabbit.url, "--queue", rabbit.queue]
    screen = run_in_terminal(*args, "--until-empty", "--batch-size", "100", "--log-format", "json")

    assert screen.code == 0, screen.text
    others = [line for line in screen.lines if not line.startswith("draining:")]
    assert len(others) == len(screen.lines) - 1
    parsed = [json.loads(line) for line in others]
    assert [r["event"] for r in parsed] == ["batch"] * 6 + ["summary"]


# 2. Usage errors for people


@pytest.mark.parametrize(
    ("args", "env", "usage", "sentence"),
    [
        pytest.param(
            [],
            {},
            "usage: vitrage-drainer [-h] [--version] COMMAND ...",
            f"vitrage-drainer: error: choose a command: {', '.join(build_parser().commands())} "
            "(then `vitrage-drainer COMMAND --help`)",
            id="no-command",
        ),
        pytest.param(
            ["drain", "--untill-empty"],
            {},
            "usage: vitrage-drainer drain [options]",
            "vitrage-drainer drain: error: unrecognized option --untill-empty; did you mean --until-empty?",
            id="typo",
        ),
        pytest.param(
            ["drain", "--batch", "10"],
            {},
            "usage: vitrage-drainer drain [options]",
            "vitrage-drainer drain: error: unrecognized option --batch; did you mean --batch-size?",
            id="abbreviation",
        ),
        pytest.param(
            ["prune", "--older-than", "-1d"],
            {},
            PRUNE_USAGE,
            "vitrage-drainer prune: error: argument --older-than: age '-1d' must be a positive number and a "
            "unit: s, m, h, d or w (e.g. 30d or 12h)",
            id="negative-age",
        ),
        pytest.param(
            ["prune", "--older-than", "0d"],
            {},
            PRUNE_USAGE,
            "vitrage-drainer prune: error: argument --older-than: age '0d' must be greater than zero",
            id="zero-age",
        ),
        pytest.param(
            ["drain", "--db-url", "sqlite://"],
            {"DRAINER_UNTIL_EMPTY": "maybe"},
            "usage: vitrage-drainer drain [options]",
            "vitrage-drainer drain: error: DRAINER_UNTIL_EMPTY must be one of 1/0, true/false, yes/no, on/off; "
            "got 'maybe'",
            id="bool-env",
        ),
    ],
)
def test_a_usage_error_at_a_terminal_is_the_usage_line_and_one_sentence(args, env, usage, sentence):
    screen = run_in_terminal(*args, env=env)
    assert screen.code == 2
    assert screen.lines == [usage, sentence]


def test_the_same_usage_error_off_a_terminal_is_one_json_record():
    result = run_cli("drain", "--untill-empty")
    assert result.code == 2 and result.stdout == ""
    [record] = result.records
    assert record["error"] == "config_error" and record["exit_code"] == 2
    assert record["message"] == "vitrage-drainer drain: unrecognized option --untill-empty; did you mean --until-empty?"
    assert len(result.stderr.splitlines()) == 1


def test_until_empty_with_max_batches_is_refused_and_takes_nothing(rabbit, sqlite_db):
    run_cli("migrate", "--db-url", sqlite_db.url)
    rabbit.publish([oslo_v2({"seq": i}) for i in range(30)])
    base = ["drain", "--db-url", sqlite_db.url, "--amqp-url", rabbit.url, "--queue", rabbit.queue, "--batch-size", "1"]
    for args, env in (
        (["--until-empty", "--max-batches", "10"], {}),
        (["--max-batches", "10"], {"DRAINER_UNTIL_EMPTY": "yes"}),
    ):
        screen = run_in_terminal(*base, *args, env=env)
        assert screen.code == 2 and "contradict each other" in screen.lines[-1], screen.text
    assert rabbit.depth() == 30
    assert run_cli(*base, env={"DRAINER_UNTIL_EMPTY": "no"}).code == 0  # off: one batch of one
    assert rabbit.depth() == 29


# 3. Help that teaches (rendered at a terminal)


def test_prune_help_at_a_terminal_shows_units_defaults_examples_and_exit_codes():
    screen = run_in_terminal("prune", "--help", columns=140)
    text = " ".join(" ".join(screen.lines).split())
    assert screen.code == 0
    assert screen.lines[0] == PRUNE_USAGE
    assert "a number and a unit, s, m, h, d or w (30d, 12h)" in text
    assert "--db-url URL SQLAlchemy URL" in text and "(env DRAINER_DB_URL; default none, required)" in text
    assert "vitrage-drainer prune --older-than 30d --dry-run" in text
    assert "78 CONFIG:" in text and "77 NOPERM:" in text
    for foreign in ("--amqp-url", "--topic", "--queue", "--batch-size", "--heartbeat"):
        assert foreign not in text


# 4. Destructive commands are careful


def _stored(db) -> list[int]:
    return [r.id for r in db.rows("SELECT id FROM drainer_events ORDER BY id")]


def test_prune_at_a_terminal_says_what_it_will_delete_and_asks(rabbit, db, drainer):
    rabbit.publish([oslo_v2({"seq": i}) for i in range(10)])
    assert drainer("drain").code == 0
    dry = drainer("prune", "--before-id", "4", "--dry-run")
    sentence = next(r["message"] for r in dry.records if r["event"] == "prune_plan")
    assert sentence.startswith("prune would delete 3 of 10 stored events (30%): those with id < 4, ids 1 to 3,")

    declined = run_in_terminal("prune", "--db-url", db.url, "--before-id", "4", answer="n")
    assert declined.code == 0 and _stored(db) == list(range(1, 11))
    plan_line = next(line for line in declined.lines if "prune would delete" in line)
    assert RECORD.match(plan_line)["msg"].startswith(sentence + "  event=prune_plan")  # the dry run's words
    assert declined.lines[declined.lines.index(plan_line) + 1] == "Delete them? [y/N] n"

    confirmed = run_in_terminal("prune", "--db-url", db.url, "--before-id", "4", answer="y")
    assert confirmed.code == 0 and _stored(db) == list(range(4, 11))


def test_prune_of_every_event_or_beyond_the_share_needs_yes_off_a_terminal(rabbit, db, drainer):
    rabbit.publish([oslo_v2({"seq": i}) for i in range(10)])
    assert drainer("drain").code == 0

    everything = drainer("prune", "--older-than", "1s")  # collector_timestamp is older than a second
    assert everything.code == 2 and "every stored event" in everything.summary["message"]
    beyond = drainer("prune", "--before-id", "7")  # 60% > the default --max-share 50%
    assert beyond.code == 2 and "--max-share 50%" in beyond.summary["message"]
    assert _stored(db) == list(range(1, 11))

    assert drainer("prune", "--before-id", "3").summary["deleted"] == 2  # 20%: no question off a TTY
    assert drainer("prune", "--before-id", "7", "--max-share", "60").summary["deleted"] == 4
    assert _stored(db) == list(range(7, 11))
    assert drainer("prune", "--older-than", "1s", "--yes").summary["deleted"] == 4
    assert _stored(db) == []


# 5. Logs you can read


def test_text_records_carry_date_level_logger_and_run_id_and_no_pika_noise(sqlite_db):
    run_cli("migrate", "--db-url", sqlite_db.url)
    args = ["drain", "--db-url", sqlite_db.url, "--amqp-url", "amqp://guest:guest@127.0.0.1:1/%2F"]
    screen = run_in_terminal(*args, "--retry-seconds", "2")

    assert screen.code == 69
    seen = records(screen.lines)
    assert len(seen) == len(screen.lines), screen.text  # nothing but our own records, one per line
    assert {m["logger"] for m in seen} == {"drainer.retry", "drainer.cli"} and len({m["run"] for m in seen}) == 1
    retries = [m[0] for m in seen if m["logger"] == "drainer.retry"]
    assert retries and all('cause="Connection refused"' in line for line in retries)
    summary = seen[-1][0]
    attempts, took = re.search(
        r"Connection refused \((\d+) attempts in ([\d.]+) s; --retry-seconds 2\)", summary
    ).groups()
    assert int(attempts) == len(retries) + 1
    # The words match the figures: the retries took no longer than the run, nor than their budget.
    assert 0 < float(took) <= min(2.0, float(field(summary, "duration_s")))


def test_verbose_shows_pika_s_own_records(sqlite_db):
    run_cli("migrate", "--db-url", sqlite_db.url)
    args = ["drain", "--db-url", sqlite_db.url, "--amqp-url", "amqp://guest:guest@127.0.0.1:1/%2F"]
    screen = run_in_terminal(*args, "--retry-seconds", "1", "--verbose")
    assert screen.code == 69
    assert any(
        m["logger"].startswith("pika.") and "Socket failed to connect" in m["msg"] for m in records(screen.lines)
    )


def test_a_queue_that_does_not_exist_is_one_record_without_pika_s_reprs(rabbit, sqlite_db):
    run_cli("migrate", "--db-url", sqlite_db.url)
    args = ["drain", "--db-url", sqlite_db.url, "--amqp-url", rabbit.url, "--queue", f"missing-{uuid.uuid4().hex}"]
    screen = run_in_terminal(*args)
    assert screen.code == 66
    assert len(records(screen.lines)) == len(screen.lines) == 1, screen.text
    assert "Channel.Close" not in screen.text and "<" not in screen.text


def test_the_summary_is_the_last_record_also_after_a_metrics_failure(rabbit, db, drainer):
    rabbit.publish([oslo_v2({"seq": 1})])
    result = drainer("drain", "--pushgateway", "http://127.0.0.1:1")
    assert result.code == 0
    events = [r["event"] for r in result.records]
    assert events == ["batch", "metrics_failed", "summary"]


# 6. status for people and for probes


def test_status_at_a_terminal_is_a_table_without_python_reprs(rabbit, db, drainer):
    rabbit.publish([oslo_v2({"seq": i, "vitrage_sample_date": "2026-01-01T00:00:00Z"}) for i in range(1500)])
    assert drainer("drain", "--until-empty").code == 0
    rabbit.publish([oslo_v2({"x": 1}), oslo_v2({"x": 2})])
    screen = run_in_terminal("status", "--db-url", db.url, "--amqp-url", rabbit.url, "--queue", rabbit.queue)

    assert screen.code == 0
    table = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in screen.lines)
    assert table["waiting messages"] == "2" and table["stored events"] == "1,500"
    assert table["newest event"].startswith("2026-01-01 00:00:00 UTC, ") and table["newest event"].endswith(" ago")
    assert table["lease"] == "free" and table["exit code"] == "0 (OK)"
    assert not re.search(r"[{}\[\]']|None", screen.text)


def test_status_of_a_missing_queue_exits_66_in_the_table_and_in_json(rabbit, sqlite_db):
    run_cli("migrate", "--db-url", sqlite_db.url)
    args = ["status", "--db-url", sqlite_db.url, "--amqp-url", rabbit.url, "--queue", f"missing-{uuid.uuid4().hex}"]
    screen = run_in_terminal(*args)
    assert screen.code == 66
    assert screen.lines[-2].startswith("error              queue_not_found: queue 'missing-")
    assert screen.lines[-1] == "exit code          66 (NOINPUT)"
    result = run_cli(*args, "--json")
    report = json.loads(result.stdout)
    assert result.code == 66 and report["exit_code"] == 66 and report["errors"][0]["error"] == "queue_not_found"
    assert "newest_event_age_s" in report and "lag_seconds" not in report


# 7. Read-only commands change nothing


def broker_options(command: list[str], rabbit) -> list[str]:
    return ["--amqp-url", rabbit.url, "--queue", rabbit.queue] if command[0] in ("status", "drain") else []


@pytest.mark.parametrize("command", [["events"], ["prune", "--before-id", "5"], ["status"]])
def test_a_database_never_migrated_says_run_migrate(rabbit, mysql_db, command):
    result = run_cli(*command, "--db-url", mysql_db.url, *broker_options(command, rabbit))
    assert result.code == 78
    assert "run `vitrage-drainer migrate`" in result.stderr
    assert mysql_db.rows("SHOW TABLES") == []


@pytest.mark.parametrize("command", [["events"], ["prune", "--before-id", "5"], ["status"], ["drain"]])
def test_a_sqlite_file_that_does_not_exist_is_reported_not_created(rabbit, tmp_path, command):
    path = tmp_path / "typo.sqlite"
    result = run_cli(*command, "--db-url", f"sqlite:///{path}", *broker_options(command, rabbit))
    assert result.code == 78
    assert f"SQLite database {path} does not exist" in result.stderr
    assert not path.exists()


@pytest.mark.parametrize("command", [["migrate"], ["events"], ["status"], ["drain"]])
def test_a_sqlite_folder_that_does_not_exist_is_a_configuration_error_even_for_migrate(rabbit, tmp_path, command):
    # migrate creates a missing file, never its folder: "run migrate" would be advice that fails.
    path = tmp_path / "no-such-folder" / "vitrage.sqlite"
    url = f"sqlite:///{path}"
    result = run_cli(*command, "--db-url", url, "--retry-seconds", "1", *broker_options(command, rabbit))
    assert result.code == 2, result.stderr
    assert result.summary["error"] == "config_error"  # status and drain too: its last record has the code
    said = result.summary.get("detail", "") + result.summary["message"]
    assert f"the folder {path.parent} of SQLite database {path} does not exist" in said
    assert not path.parent.exists()
    assert rabbit.depth() == 0


def test_a_mysql_database_that_does_not_exist_is_a_configuration_error(mysql_db):
    missing = mysql_db.url.rsplit("/", 1)[0] + f"/no_such_db_{uuid.uuid4().hex[:8]}"
    result = run_cli("events", "--db-url", missing, "--retry-seconds", "1")
    assert result.code == 2
    assert result.summary["error"] == "config_error" and "does not exist" in result.summary["message"]


# 8. The demo is safe and says what it did


def test_the_demo_keeps_to_its_own_queue_and_file_and_says_where_the_data_is(rabbit, tmp_path):
    topic = f"demo-{uuid.uuid4().hex[:8]}"  # the demo's own topic, apart from other runs of this test
    rabbit.publish([oslo_v2({"production": True})] * 5)
    elsewhere = tmp_path / "production.sqlite"
    production = {"DRAINER_QUEUE": rabbit.queue, "DRAINER_DB_URL": f"sqlite:///{elsewhere}"}
    demo = [sys.executable, str(ROOT / "tests" / "demo.py"), "--topic", topic]
    try:
        first = run_in_terminal(env=production, argv=demo, cwd=tmp_path, timeout=180)
        again = run_in_terminal(env=production, argv=demo, cwd=tmp_path, timeout=180)
    finally:
        conn = rabbit.connection()
        conn.channel().queue_delete(f"{topic}.info")
        conn.close()

    assert first.code == 0 and again.code == 0, first.text + again.text
    assert rabbit.depth() == 5 and not elsewhere.exists()  # the shell's DRAINER_* were left alone
    data = tmp_path / "demo.sqlite"
    assert f"stored 21 events in {data}" in first.lines
    assert f"appended 21 events to {data}: it now holds 42 (21 from earlier runs)" in again.lines
    command = shlex.split(again.lines[again.lines.index("look at them with:") + 1])
    assert Path(command[0]).name == "vitrage-drainer" and command[1] == "events"
    shown = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert shown.returncode == 0 and len([json.loads(line) for line in shown.stdout.splitlines()]) == 3


def test_the_demo_into_a_fresh_mysql_database_as_its_docstring_shows(rabbit, mysql_db):
    # The demo looks at the table before it migrates: MySQL says 1146 (ProgrammingError), not what SQLite says.
    topic = f"demo-{uuid.uuid4().hex[:8]}"
    demo = [sys.executable, str(ROOT / "tests" / "demo.py"), "--db-url", mysql_db.url, "--topic", topic]
    try:
        done = subprocess.run(demo, capture_output=True, text=True, timeout=180, cwd=ROOT)
    finally:
        conn = rabbit.connection()
        conn.channel().queue_delete(f"{topic}.info")
        conn.close()
    assert done.returncode == 0, done.stdout + done.stderr
    assert mysql_db.rows("SELECT COUNT(*) FROM drainer_events")[0][0] == 21


def test_the_demo_never_defaults_to_vitrage_s_own_topic():
    from tests import demo

    assert demo.DEMO_TOPIC != "vitrage_persistor"
