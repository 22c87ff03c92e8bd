"""The pure parts of a run: batch decoding, the size cap, exit codes and migration files."""

from __future__ import annotations

import hashlib
import inspect
import json
import re
from datetime import datetime
from pathlib import Path

import pytest

from drainer import errors, schema
from drainer.cli import Exit, exit_code_for
from drainer.config import Settings
from drainer.drain import decode_batch, effective_max_bytes
from drainer.errors import SchemaConflict
from drainer.model import Delivery, Event, Rejection
from drainer.schema import Migration
from tests.conftest import require_module

NOW = datetime(2030, 1, 2, 3, 4, 5)
SQL = Path(__file__).resolve().parents[2] / "sql"
MIB = 1024 * 1024


def delivery(tag: int, body: bytes) -> Delivery:
    return Delivery(tag=tag, body=body, exchange="vitrage", routing_key="vitrage_persistor.info", redelivered=False)


def notification(message_id: str, **payload: object) -> bytes:
    inner = {"message_id": message_id, "event_type": "nova.instance", "payload": {"id": message_id, **payload}}
    return json.dumps({"oslo.version": "2.0", "oslo.message": json.dumps(inner)}).encode()


# --- decode_batch -------------------------------------------------------------------------------------


def test_redelivered_message_is_stored_once() -> None:
    first = delivery(1, notification("m-1", state="ACTIVE"))
    again = delivery(2, notification("m-1", state="ACTIVE"))

    batch = decode_batch([first, again], MIB, NOW)

    assert [e.message_id for e in batch.events] == ["m-1"]
    assert batch.in_batch_duplicates == 1


def test_first_of_in_batch_duplicates_is_kept() -> None:
    first = delivery(1, notification("m-1", state="BUILD"))
    later = delivery(2, notification("m-1", state="ACTIVE"))

    batch = decode_batch([first, later], MIB, NOW)

    assert len(batch.events) == 1
    assert json.loads(batch.events[0].payload)["state"] == "BUILD"
    assert batch.origin == {"m-1": first}


def test_events_keep_queue_order() -> None:
    ids = ["m-3", "m-1", "m-2", "m-1", "m-5", "m-4", "m-3"]
    deliveries = [delivery(tag, notification(mid)) for tag, mid in enumerate(ids, start=1)]

    batch = decode_batch(deliveries, MIB, NOW)

    assert [e.message_id for e in batch.events] == ["m-3", "m-1", "m-2", "m-5", "m-4"]
    assert batch.in_batch_duplicates == 2
    assert batch.deliveries == deliveries


def test_identical_undecodable_bodies_are_rejected_once() -> None:
    deliveries = [delivery(1, b"not json"), delivery(2, b"[1]"), delivery(3, b"not json")]

    batch = decode_batch(deliveries, MIB, NOW)

    assert [r.body for r in batch.rejections] == [b"not json", b"[1]"]
    assert batch.in_batch_duplicates == 1
    assert batch.events == []


def test_events_and_rejections_are_separated() -> None:
    deliveries = [delivery(1, notification("m-1")), delivery(2, b"\xff"), delivery(3, notification("m-2"))]

    batch = decode_batch(deliveries, MIB, NOW)

    assert all(isinstance(e, Event) for e in batch.events)
    assert all(isinstance(r, Rejection) for r in batch.rejections)
    assert [e.message_id for e in batch.events] == ["m-1", "m-2"]
    assert [r.body for r in batch.rejections] == [b"\xff"]
    assert batch.in_batch_duplicates == 0


def test_oversize_delivery_is_set_apart_undecoded() -> None:
    small = delivery(1, notification("m-1"))
    big = delivery(2, notification("m-2", blob="x" * 2000))
    max_bytes = 1000

    batch = decode_batch([small, big], max_bytes, NOW)

    assert batch.oversize == [big]
    assert [e.message_id for e in batch.events] == ["m-1"]
    assert batch.rejections == []
    assert "m-2" not in batch.origin


def test_body_exactly_at_the_limit_is_not_oversize() -> None:
    body = notification("m-1")
    at_limit = delivery(1, body)
    one_over = delivery(2, body + b" ")

    batch = decode_batch([at_limit, one_over], len(body), NOW)

    assert [e.message_id for e in batch.events] == ["m-1"]
    assert batch.oversize == [one_over]


def test_oversize_bodies_are_not_counted_as_duplicates() -> None:
    big = notification("m-1", blob="x" * 2000)

    batch = decode_batch([delivery(1, big), delivery(2, big)], 100, NOW)

    assert len(batch.oversize) == 2
    assert batch.in_batch_duplicates == 0


def test_empty_batch_decodes_to_nothing() -> None:
    batch = decode_batch([], MIB, NOW)

    assert (batch.events, batch.rejections, batch.oversize, batch.in_batch_duplicates) == ([], [], [], 0)


# --- effective_max_bytes ------------------------------------------------------------------------------


def test_max_message_bytes_is_used_when_the_packet_size_is_unknown() -> None:
    assert effective_max_bytes(Settings(max_message_bytes=4 * MIB), None) == 4 * MIB


def test_max_message_bytes_is_used_when_the_packet_is_large() -> None:
    assert effective_max_bytes(Settings(max_message_bytes=4 * MIB), 64 * MIB) == 4 * MIB


@pytest.mark.parametrize("max_packet", [1 * MIB, 4 * MIB, 16 * MIB - 1])
def test_max_message_bytes_is_capped_to_fit_the_packet(max_packet: int) -> None:
    cap = effective_max_bytes(Settings(max_message_bytes=64 * MIB), max_packet)

    assert cap == int(max_packet * 0.45)
    assert 2 * cap < max_packet  # a body whose every byte is escaped still fits the packet


# --- exit codes ---------------------------------------------------------------------------------------


def test_exit_codes_are_the_sysexits_values() -> None:
    assert Exit.FINDINGS is Exit.SOFTWARE  # verify's "1 with findings" is an alias, not a new value
    assert {e.name: int(e) for e in Exit} == {
        "OK": 0,
        "SOFTWARE": 1,
        "USAGE": 2,
        "DATAERR": 65,
        "NOINPUT": 66,
        "UNAVAILABLE": 69,
        "TEMPFAIL": 75,
        "PROTOCOL": 76,
        "NOPERM": 77,
        "CONFIG": 78,
    }


@pytest.mark.parametrize(
    ("error", "code", "name"),
    [
        (errors.ConfigError("bad flag"), Exit.USAGE, "config_error"),
        (errors.QueueNotFound("no queue"), Exit.NOINPUT, "queue_not_found"),
        (errors.BrokerAccessDenied("refused"), Exit.NOPERM, "broker_access_denied"),
        (errors.DatabaseAccessDenied("refused"), Exit.NOPERM, "database_access_denied"),
        (errors.SchemaOutdated("behind"), Exit.CONFIG, "schema_outdated"),
        (errors.SchemaConflict("changed"), Exit.CONFIG, "schema_conflict"),
        (errors.AckFailed("ack lost"), Exit.TEMPFAIL, "ack_failed_after_commit"),
        (errors.Interrupted("SIGTERM"), Exit.TEMPFAIL, "interrupted"),
        (errors.BatchNotCommitted("rolled back"), Exit.TEMPFAIL, "batch_not_committed"),
        (errors.LeaseLost("taken"), Exit.TEMPFAIL, "batch_not_committed"),
        (errors.OversizeQueueFull("full"), Exit.TEMPFAIL, "oversize_queue_full"),
        (errors.DatabaseLocked("LOCK TABLES"), Exit.TEMPFAIL, "database_locked"),
        (errors.QueueNotSupported("stream"), Exit.PROTOCOL, "queue_not_supported"),
        (errors.BrokerRefused("405"), Exit.PROTOCOL, "broker_refused"),
        (errors.BrokerCertificateRefused("CA"), Exit.NOPERM, "broker_certificate_refused"),
        (errors.BrokerUnavailable("down"), Exit.UNAVAILABLE, "broker_unavailable"),
        (errors.BrokerError("odd"), Exit.UNAVAILABLE, "broker_unavailable"),
        (errors.DatabaseUnavailable("down"), Exit.UNAVAILABLE, "database_unavailable"),
        (errors.DatabaseError("odd"), Exit.UNAVAILABLE, "database_unavailable"),
        (errors.DrainerError("unclassified"), Exit.SOFTWARE, "unexpected_error"),
        (ValueError("a bug"), Exit.SOFTWARE, "unexpected_error"),
        (KeyError("a bug"), Exit.SOFTWARE, "unexpected_error"),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else None,
)
def test_error_maps_to_its_documented_exit_code(error: BaseException, code: Exit, name: str) -> None:
    assert exit_code_for(error) == (code, name)


def _error_classes() -> list[type[errors.DrainerError]]:
    return [
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.DrainerError) and cls is not errors.DrainerError
    ]


@pytest.mark.parametrize("error_class", _error_classes(), ids=lambda c: c.__name__)
def test_every_drainer_error_has_an_exit_code_other_than_a_bug(error_class: type[errors.DrainerError]) -> None:
    code, _ = exit_code_for(error_class("x"))

    assert code not in (Exit.OK, Exit.SOFTWARE)


# --- migrations ---------------------------------------------------------------------------------------


def _created(statements: list[str]) -> list[tuple[str, str]]:
    found = []
    for statement in statements:
        match = re.match(r"CREATE (TABLE|INDEX) IF NOT EXISTS (\w+)", statement)
        assert match, f"not a CREATE statement: {statement[:60]!r}"
        found.append((match[1], match[2]))
    return found


def _migration(path: Path) -> Migration:
    text = path.read_text(encoding="utf-8")
    return Migration(path.name, hashlib.sha256(text.encode()).hexdigest(), text)


def test_mysql_migration_splits_into_its_create_statements() -> None:
    statements = _migration(SQL / "mysql" / "001_drainer_tables.sql").statements()

    assert _created(statements) == [
        ("TABLE", "drainer_events"),
        ("TABLE", "drainer_rejected_messages"),
        ("TABLE", "drainer_leases"),
    ]


def test_sqlite_migration_splits_into_its_create_statements() -> None:
    statements = _migration(SQL / "sqlite" / "001_drainer_tables.sql").statements()

    assert _created(statements) == [
        ("TABLE", "drainer_events"),
        ("INDEX", "ix_drainer_events_collector_timestamp"),
        ("INDEX", "ix_drainer_events_entity"),
        ("INDEX", "ix_drainer_events_event_type"),
        ("TABLE", "drainer_rejected_messages"),
        ("INDEX", "ix_drainer_rejected_received_at"),
        ("TABLE", "drainer_leases"),
    ]


@pytest.mark.parametrize("dialect", ["mysql", "sqlite"])
def test_split_statements_carry_no_comments_and_no_terminator(dialect: str) -> None:
    for statement in _migration(SQL / dialect / "001_drainer_tables.sql").statements():
        assert not statement.endswith(";")
        assert "\n--" not in statement and not statement.startswith("--")


def test_statements_split_at_line_end_semicolons_only() -> None:
    sql = "-- a comment; with a semicolon\nCREATE TABLE a (x TEXT DEFAULT 'p;q');\n\nCREATE TABLE b (y INT)"

    assert Migration("001_x.sql", "c", sql).statements() == [
        "CREATE TABLE a (x TEXT DEFAULT 'p;q')",
        "CREATE TABLE b (y INT)",
    ]


@pytest.mark.parametrize("dialect", ["mysql", "sqlite"])
def test_migrations_are_the_sql_files_in_name_order_with_their_checksums(dialect: str) -> None:
    files = sorted((SQL / dialect).glob("[0-9]*_*.sql"))

    assert schema.migrations(dialect) == [_migration(p) for p in files]


def test_changed_migration_is_refused() -> None:
    files = [Migration("001_drainer_tables.sql", "new-checksum", "CREATE TABLE x (y INT);")]

    with pytest.raises(SchemaConflict, match="001_drainer_tables.sql changed after it was applied"):
        schema._check_applied({"001_drainer_tables.sql": "old-checksum"}, files)


def test_applied_migrations_are_not_pending() -> None:
    files = [Migration("001_a.sql", "c1", ""), Migration("002_b.sql", "c2", ""), Migration("003_c.sql", "c3", "")]

    pending = schema._check_applied({"001_a.sql": "c1"}, files)

    assert [m.name for m in pending] == ["002_b.sql", "003_c.sql"]


def test_fresh_database_has_every_migration_pending() -> None:
    files = schema.migrations("sqlite")

    assert schema._check_applied({}, files) == files


def test_migration_unknown_to_this_drainer_is_ignored() -> None:
    files = [Migration("001_a.sql", "c1", "")]

    assert schema._check_applied({"001_a.sql": "c1", "002_from_newer_drainer.sql": "c9"}, files) == []


def test_a_deadlock_hidden_behind_a_lost_savepoint_is_still_transient() -> None:
    import pymysql

    from drainer.db.engine import is_transient

    try:
        try:
            raise pymysql.err.OperationalError(1213, "Deadlock found when trying to get lock")
        except pymysql.err.OperationalError:
            raise pymysql.err.OperationalError(1305, "SAVEPOINT sa_savepoint_1 does not exist")  # noqa: B904
    except pymysql.err.OperationalError as exc:
        assert is_transient(exc)
    assert not is_transient(pymysql.err.OperationalError(1305, "SAVEPOINT does not exist"))


def test_the_progress_bar_ends_on_the_run_s_totals_as_integers(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    require_module("tqdm")
    from drainer import tty
    from drainer.drain import Progress

    screen = io.StringIO()
    monkeypatch.setattr("sys.stderr", screen)
    run = Progress(fetched=0, queue_remaining=20_000)
    with tty.batch_bar(run, True, multi_batch=True) as on_batch:
        assert on_batch is not None
        on_batch(Progress(fetched=10_000, stored=9_990, rejected=10, queue_remaining=10_000))
        # The last fetch found the queue empty: no batch callback, the bar still ends on the totals.
        run.fetched, run.stored, run.rejected, run.queue_remaining = 20_000, 19_990, 10, 0
    final = screen.getvalue().split("\r")[-1]
    assert "20000/20000" in final and "stored=19990" in final and "rejected=10" in final
    assert "e+" not in screen.getvalue()


def test_no_progress_bar_off_a_tty(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from drainer import tty
    from drainer.drain import Progress

    monkeypatch.setattr("sys.stderr", io.StringIO())
    with tty.batch_bar(Progress(), None, multi_batch=True) as on_batch:
        assert on_batch is None


@pytest.mark.parametrize("command", [[], ["drain"], ["migrate"], ["status"], ["events"], ["prune"]])
def test_every_help_page_renders(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    from drainer.cli import main

    assert main([*command, "--help"], {}) == 0
    assert "usage: vitrage-drainer" in capsys.readouterr().out


def test_a_drain_catches_sigterm_before_it_imports_its_libraries() -> None:
    # A SIGTERM while the logging, SQLAlchemy and pika load (most of the start-up) must reach the run, which
    # then ends as `interrupted` with its summary, instead of killing the process with 143 and no record.
    import subprocess
    import sys

    probe = """
import signal, sys
seen = {}
class Watch:
    def find_spec(self, name, path=None, target=None):
        if name in ("pythonjsonlogger", "sqlalchemy", "pika") and name not in seen:
            seen[name] = signal.getsignal(signal.SIGTERM)
        return None
sys.meta_path.insert(0, Watch())
from drainer.cli import main
main(["drain", "--db-url", "sqlite:///nowhere/x.sqlite", "--retry-seconds", "1"])
import json
print(json.dumps({name: callable(handler) for name, handler in seen.items()}))
"""
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    caught = json.loads(done.stdout.splitlines()[-1])
    assert {"pythonjsonlogger", "sqlalchemy"} <= set(caught) and all(caught.values()), caught
