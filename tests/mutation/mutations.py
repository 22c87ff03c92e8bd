"""The named mutations: each breaks one line that carries a guarantee of the README, and names the
tests that must fail when it is broken. Edits are exact snippets (whitespace included), never line
numbers; `python -m tests.mutation.check --verify` says which ones no longer apply after a refactor.
"""

from __future__ import annotations

from dataclasses import dataclass

FAULTS = "tests/faults/test_faults.py"
GUARDS = "tests/faults/test_guarantees.py"
DRAIN = "tests/integration/test_drain.py"
OPS = "tests/integration/test_operations.py"
STORE = "tests/integration/test_store.py"
UNIT = "tests/unit/test_drain_logic.py"
HELD = "tests/faults/test_held_deliveries.py"
ENVELOPE = "tests/unit/test_envelope.py"

ACK_AFTER_COMMIT = "1 ack after commit"
STORED_ONCE = "2 stored once"
KEPT = "3 bad messages kept byte-exact, never blocking"
ORDER = "4 ids in queue order (the lease)"
BOUNDED = "5 every wait bounded, memory bounded"
SECRETS = "5 secrets never printed"
EXITS = "exit codes"
SCHEMA = "schema checked before draining"
OPERATIONS = "operations"
HISTORY = "2 alarm history applied once, with the batch"
HISTORY_TESTS = "tests/integration/test_history.py"


@dataclass(frozen=True)
class Edit:
    """Replace `find`, which must occur exactly once in `path`, with `replace`."""

    path: str
    find: str
    replace: str


@dataclass(frozen=True)
class Mutation:
    name: str
    what: str  # the bug the mutant plants, in a few words
    guarantee: str
    edits: tuple[Edit, ...]
    tests: tuple[str, ...]  # pytest node ids; at least one must fail
    budget_s: float | None = None  # seconds for its test run, when the default is not enough


def one(name: str, what: str, guarantee: str, path: str, find: str, replace: str, *tests: str) -> Mutation:
    return Mutation(name, what, guarantee, (Edit(path, find, replace),), tests)


MUTATIONS: tuple[Mutation, ...] = (
    # -- the four the issue found surviving the whole suite ------------------------------------------
    one(
        "lease-renewal-noop",
        "`lease.renew` returns at once",
        ORDER,
        "drainer/db/lease.py",
        '    step(store, "renewing the lease", renew_once, retrying)\n',
        "    return\n",
        f"{GUARDS}::test_a_lease_is_renewed_while_a_batch_is_retried_and_a_second_drainer_finds_it_held",
    ),
    one(
        "no-max-seconds-deadline",
        "the `--max-seconds` check removed from the drain loop",
        BOUNDED,
        "drainer/drain.py",
        "if self.stop.requested or time.monotonic() >= deadline:",
        "if self.stop.requested:",
        f"{DRAIN}::test_max_seconds_stops_a_long_drain_with_everything_fetched_acked_and_the_rest_queued",
    ),
    one(
        "oversize-origin-headers-dropped",
        "`x-original-exchange` and `x-original-routing-key` left off a parked copy",
        KEPT,
        "drainer/broker.py",
        '        "x-original-exchange": delivery.exchange,\n        "x-original-routing-key": delivery.routing_key,\n',
        "",
        f"{GUARDS}::test_a_parked_copy_carries_every_header_and_property_of_the_original",
    ),
    one(
        "no-fence-before-commit",
        "the lease check just before COMMIT removed",
        ORDER,
        "drainer/db/batch.py",
        "                if lease is not None:\n                    leases.fence(store, conn, lease)\n"
        "            # Outside the interruptible part",
        "            # Outside the interruptible part",
        f"{STORE}::test_a_write_that_outlasts_its_lease_is_not_committed",
    ),
    # -- the lease: take, renew, fence, release ------------------------------------------------------
    one(
        "no-fence-first",
        "the lease fence at the start of a batch transaction removed (the row is not locked)",
        ORDER,
        "drainer/db/batch.py",
        "                    # take the lease while this batch is being written, however slow it is.\n"
        "                    leases.fence(store, conn, lease)\n",
        "                    # take the lease while this batch is being written, however slow it is.\n"
        "                    pass\n",
        f"{STORE}::test_the_lease_row_stays_locked_while_a_batch_is_written[mysql]",
    ),
    one(
        "fence-never-refuses",
        "the fence ignores that its conditional UPDATE matched no row",
        ORDER,
        "drainer/db/lease.py",
        "    if result.rowcount != 1:\n        raise LeaseLost(",
        "    if False:\n        raise LeaseLost(",
        f"{STORE}::test_a_batch_without_the_lease_is_not_committed",
        f"{GUARDS}::test_a_run_whose_lease_was_taken_exits_75_and_returns_its_batch",
    ),
    one(
        "held-lease-taken",
        "`acquire` takes a lease another live drainer holds",
        ORDER,
        "drainer/db/lease.py",
        "free = (t.c.holder.is_(None)) | (t.c.expires_at <= now)",
        "free = t.c.name == name",
        f"{FAULTS}::test_a_live_lease_holds_off_another_run_until_it_expires",
    ),
    one(
        "expired-lease-never-taken",
        "`acquire` never takes over an expired lease",
        ORDER,
        "drainer/db/lease.py",
        "free = (t.c.holder.is_(None)) | (t.c.expires_at <= now)",
        "free = t.c.holder.is_(None)",
        f"{FAULTS}::test_a_live_lease_holds_off_another_run_until_it_expires",
    ),
    one(
        "lease-not-released",
        "a finished run keeps its lease until it expires",
        ORDER,
        "drainer/db/lease.py",
        '    """Give the lease up so the next run need not wait for it to expire; best effort."""\n',
        '    """Give the lease up so the next run need not wait for it to expire; best effort."""\n    return\n',
        f"{DRAIN}::test_a_finished_run_gives_its_lease_up",
    ),
    one(
        "ttl-without-the-broker-s-share",
        "the lease's ttl leaves out the broker's two heartbeats: a run frozen with a batch loses the lease first",
        ORDER,
        "drainer/drain.py",
        "    return settings.retry_seconds + 2 * settings.socket_timeout + broker_grace(settings)\n",
        "    return settings.retry_seconds + 2 * settings.socket_timeout + defaults.LEASE_MARGIN\n",
        f"{HELD}::test_a_run_frozen_while_fetching_keeps_later_runs_from_storing_past_its_batch",
    ),
    one(
        "lease-released-with-deliveries-in-doubt",
        "a run whose broker connection died silently with messages out releases its lease at once",
        ORDER,
        "drainer/drain.py",
        "    in_doubt = broker.deliveries_in_doubt if broker is not None else 0\n",
        "    in_doubt = 0\n",
        f"{HELD}::test_a_broker_that_stops_answering_basic_get_ends_the_run_in_the_fetch_bound_and_keeps_the_lease",
    ),
    # -- ack after commit ----------------------------------------------------------------------------
    Mutation(
        "ack-before-commit",
        "the batch is acked before it is written",
        ACK_AFTER_COMMIT,
        (
            Edit(
                "drainer/drain.py",
                "            writing = time.monotonic()",
                "            self.broker.ack_through(deliveries[-1].tag)\n            writing = time.monotonic()",
            ),
            Edit(
                "drainer/drain.py",
                "        self.broker.ack_through(deliveries[-1].tag)\n        p.acked += len(deliveries)\n",
                "        p.acked += len(deliveries)\n",
            ),
        ),
        (f"{FAULTS}::test_lock_wait_timeout_is_retried_then_exits_75_without_partial_rows",),
    ),
    one(
        "no-ack",
        "a committed batch is never acked",
        ACK_AFTER_COMMIT,
        "drainer/drain.py",
        "        self.broker.ack_through(deliveries[-1].tag)\n        p.acked += len(deliveries)\n",
        "        p.acked += len(deliveries)\n",
        f"{DRAIN}::test_batch_limit_stores_one_batch_and_leaves_the_rest",
    ),
    one(
        "ack-only-the-last",
        "the ack covers only the batch's last delivery",
        ACK_AFTER_COMMIT,
        "drainer/broker.py",
        "self._channel.basic_ack(tag, multiple=True)",
        "self._channel.basic_ack(tag, multiple=False)",
        f"{DRAIN}::test_batch_limit_stores_one_batch_and_leaves_the_rest",
    ),
    one(
        "commit-without-a-broker",
        "the batch commits although the broker connection is gone (no check before COMMIT)",
        ACK_AFTER_COMMIT,
        "drainer/db/batch.py",
        "            hooks.before_commit()\n",
        "",
        f"{FAULTS}::test_broker_connection_lost_during_the_write_is_not_committed",
    ),
    one(
        "signal-interrupts-commit",
        "a signal may interrupt the COMMIT itself",
        ACK_AFTER_COMMIT,
        "drainer/db/batch.py",
        "        with conn.begin():\n            with hooks.interruptible():",
        "        with hooks.interruptible():\n            with conn.begin():",
        f"{GUARDS}::test_sigterm_while_the_commit_is_held_exits_0_with_everything_acked",
    ),
    one(
        "signal-always-raises",
        "every SIGTERM raises inside the run, interruptible or not",
        ACK_AFTER_COMMIT,
        "drainer/signals.py",
        "        if self._interruptible:\n            self._interruptible = False\n            raise StopNow",
        "        if True:\n            self._interruptible = False\n            raise StopNow",
        f"{GUARDS}::test_sigterm_while_the_commit_is_held_exits_0_with_everything_acked",
    ),
    # -- stored once: dedupe keys --------------------------------------------------------------------
    one(
        "oslo-message-id-ignored",
        "the oslo `message_id` is not the dedupe key",
        STORED_ONCE,
        "drainer/envelope.py",
        '        ("oslo message_id", notification.get("message_id")),\n',
        "",
        f"{DRAIN}::test_duplicates_in_one_batch_and_across_runs_are_stored_once",
    ),
    one(
        "body-digest-not-of-the-body",
        "the fallback key hashes the stripped body, not the body",
        STORED_ONCE,
        "drainer/envelope.py",
        'return "sha256:" + hashlib.sha256(body).hexdigest()',
        'return "sha256:" + hashlib.sha256(body.strip()).hexdigest()',
        f"{DRAIN}::test_dedupe_key_falls_back_to_amqp_message_id_then_body_hash",
    ),
    one(
        "stored-keys-not-filtered",
        "keys already stored are not filtered out of a batch",
        STORED_ONCE,
        "drainer/db/batch.py",
        "fresh, reused = _new_events(store, conn, events)",
        "fresh, reused = list(events), []",
        f"{STORE}::test_a_stored_key_is_a_duplicate_not_a_second_row",
        f"{FAULTS}::test_commit_then_crash_redeliveries_are_absorbed",
    ),
    one(
        "in-batch-duplicates-kept",
        "two deliveries of one message in a batch both become rows",
        STORED_ONCE,
        "drainer/drain.py",
        "            if seen is None or seen == item:",
        "            if True:\n                seen = None",
        f"{UNIT}::test_redelivered_message_is_stored_once",
        f"{DRAIN}::test_duplicates_in_one_batch_and_across_runs_are_stored_once",
    ),
    one(
        "rejection-key-ignores-message-id",
        "two different messages with the same bad body share one rejection key",
        STORED_ONCE,
        "drainer/envelope.py",
        "    salt = producer_properties(delivery.properties)\n",
        '    salt = ""\n',
        f"{ENVELOPE}::test_the_same_bad_body_with_two_message_ids_is_kept_twice_and_a_redelivery_once",
    ),
    one(
        "history-redelivery-applied-again",
        "a redelivered alarm-history notification is applied to Vitrage's tables again",
        HISTORY,
        "drainer/drain.py",
        "if (e.message_id in written.stored_keys or e.message_id in retry_keys)",
        "if True",
        f"{HISTORY_TESTS}::test_a_redelivered_notification_is_never_applied_twice",
    ),
    one(
        "history-not-in-the-batch",
        "the batch transaction commits without applying its alarm history",
        HISTORY,
        "drainer/db/batch.py",
        "hooks.in_transaction(conn, Written(events, keys, result, frozenset(refused_keys)))",
        "pass",
        f"{HISTORY_TESTS}::test_alarm_history_is_applied_in_the_batch_and_raw_rows_are_kept",
    ),
    # -- bad messages kept byte-exact, never blocking the queue --------------------------------------
    one(
        "rejected-body-not-exact",
        "a rejected body is stored after a lossy UTF-8 round trip",
        KEPT,
        "drainer/envelope.py",
        "body=delivery.body if keep_body else None,",
        'body=delivery.body.decode("utf-8", "replace").encode() if keep_body else None,',
        f"{DRAIN}::test_poison_messages_are_kept_byte_exact_and_neighbours_stored",
    ),
    one(
        "rejections-not-stored",
        "rejected messages are acked but never written",
        KEPT,
        "drainer/db/batch.py",
        "_insert_rejections(store, conn, queue, new_rejections)",
        "pass",
        f"{DRAIN}::test_poison_messages_are_kept_byte_exact_and_neighbours_stored",
    ),
    one(
        "refused-row-without-body",
        "an event the database refuses is set aside without its bytes",
        KEPT,
        "drainer/drain.py",
        "envelope.rejection(batch.origin[event.message_id], reason, utcnow()),",
        "envelope.rejection(batch.origin[event.message_id], reason, utcnow(), keep_body=False),",
        f"{FAULTS}::test_a_row_the_database_refuses_is_set_aside_and_the_rest_committed",
    ),
    *(
        one(
            f"refused-{number}-blocks-the-queue",
            f"MySQL error {number} ({why}) is not a refused row: the batch fails and returns, forever",
            KEPT,
            "drainer/db/engine.py",
            f"        {number},  # {why}\n",
            "",
            f"{GUARDS}::test_a_row_the_database_refuses_is_set_aside_byte_exact[{number}]",
        )
        for number, why in (
            (1366, "incorrect string value (encoding)"),
            (1406, "data too long"),
            (1292, "incorrect datetime"),
            (1264, "out of range"),
            (4025, "CHECK constraint failed (MariaDB JSON_VALID)"),
        )
    ),
    one(
        "row-outgrowing-the-packet-blocks-the-queue",
        "a row larger than the packet share (its body is not) goes into the INSERT (1153, connection dropped)",
        KEPT,
        "drainer/drain.py",
        "            if size > max_bytes:\n                row_sizes[delivery.tag] = size",
        "            if False:\n                row_sizes[delivery.tag] = size",
        f"{GUARDS}::test_a_row_the_database_refuses_is_set_aside_byte_exact[1153]",
    ),
    one(
        "refused-sqlite-row-blocks-the-queue",
        "SQLite's refusal of a row (constraint, no error number) fails the batch",
        KEPT,
        "drainer/db/engine.py",
        "    return number is None and isinstance(exc, DataError | IntegrityError)",
        "    return False",
        f"{GUARDS}::test_a_row_the_database_refuses_is_set_aside_byte_exact[sqlite]",
    ),
    # -- every wait bounded, memory bounded ----------------------------------------------------------
    one(
        "no-fetch-time-bound",
        "a batch keeps fetching from a slow broker past the fetch time bound",
        BOUNDED,
        "drainer/broker.py",
        "held < max_bytes and time.monotonic() < until and not stop_requested()",
        "held < max_bytes and not stop_requested()",
        f"{GUARDS}::test_a_slow_broker_shortens_the_batch_to_the_fetch_time_bound",
    ),
    one(
        "no-basic-get-deadline",
        "a broker that stops answering basic.get holds the run until heartbeats fail",
        BOUNDED,
        "drainer/broker.py",
        '            with _deadline(bound), self._pika_call(queue, "basic.get", lost):\n',
        '            with self._pika_call(queue, "basic.get", lost):\n',
        f"{HELD}::test_a_broker_that_stops_answering_basic_get_ends_the_run_in_the_fetch_bound_and_keeps_the_lease",
    ),
    one(
        "no-batch-bytes-bound",
        "a batch grows past `--max-batch-bytes`",
        BOUNDED,
        "drainer/broker.py",
        "len(deliveries) < limit and held < max_bytes and time.monotonic() < until",
        "len(deliveries) < limit and time.monotonic() < until",
        f"{FAULTS}::test_a_batch_stops_growing_at_max_batch_bytes",
    ),
    one(
        "no-confirm-deadline",
        "the wait for an oversize copy's publisher confirm is unbounded",
        BOUNDED,
        "drainer/broker.py",
        "            with _deadline(self._settings.socket_timeout):\n                self._publish_parked(",
        "            if True:\n                self._publish_parked(",
        f"{GUARDS}::test_an_oversize_copy_never_confirmed_exits_75_in_bounded_time",
    ),
    one(
        "unbounded-broker-close",
        "closing a connection whose broker stopped answering waits for its reply",
        BOUNDED,
        "drainer/broker.py",
        "            with _deadline(self._settings.connect_timeout):\n                if self._connection.is_open:",
        "            if True:\n                if self._connection.is_open:",
        f"{GUARDS}::test_an_oversize_copy_never_confirmed_exits_75_in_bounded_time",
    ),
    one(
        "no-retry-budget",
        "transient errors are retried far past `--retry-seconds`",
        BOUNDED,
        "drainer/retry.py",
        "stop=stop_before_delay(budget_s),",
        "stop=stop_before_delay(budget_s * 1000),",
        f"{FAULTS}::test_lock_wait_timeout_is_retried_then_exits_75_without_partial_rows",
    ),
    one(
        "no-retry",
        "a transient error fails the batch at once",
        BOUNDED,
        "drainer/retry.py",
        "retry=retry_if_exception(retryable),",
        "retry=retry_if_exception(lambda _exc: False),",
        f"{GUARDS}::test_a_retry_that_succeeds_stores_the_batch_in_queue_order",
    ),
    one(
        "no-database-read-timeout",
        "a database that never answers is waited for without a read timeout",
        BOUNDED,
        "drainer/db/engine.py",
        '                "read_timeout": math.ceil(settings.socket_timeout),\n',
        "",
        f"{FAULTS}::test_database_that_never_answers_exits_69_in_bounded_time",
    ),
    one(
        "no-metadata-lock-wait-timeout",
        "the session's `lock_wait_timeout` (table locks) is left at the server's default",
        BOUNDED,
        "drainer/db/engine.py",
        'f"innodb_lock_wait_timeout = {wait}, lock_wait_timeout = {wait}"',
        'f"innodb_lock_wait_timeout = {wait}"',
        f"{FAULTS}::test_lock_wait_timeout_is_retried_then_exits_75_without_partial_rows",
    ),
    one(
        "no-sqlite-busy-timeout",
        "SQLite's busy timeout is left at the driver's default instead of `--lock-wait-timeout`",
        BOUNDED,
        "drainer/db/engine.py",
        'create_engine(parsed, connect_args={"timeout": settings.lock_wait_timeout}, poolclass=None)',
        "create_engine(parsed, poolclass=None)",
        f"{GUARDS}::test_a_sqlite_write_lock_is_waited_for_only_lock_wait_timeout",
    ),
    one(
        "no-broker-connect-timeouts",
        "pika's own connect and handshake timeouts instead of `--connect-timeout`",
        BOUNDED,
        "drainer/broker.py",
        "        p.socket_timeout = settings.connect_timeout\n        p.stack_timeout = settings.connect_timeout * 2\n",
        "",
        f"{FAULTS}::test_broker_that_never_answers_exits_69_in_bounded_time",
    ),
    one(
        "no-pushgateway-timeout",
        "a Pushgateway push without a timeout",
        BOUNDED,
        "drainer/metrics.py",
        "registry=registry, timeout=timeout)",
        "registry=registry, timeout=None)",
        f"{OPS}::test_a_pushgateway_that_never_answers_delays_the_run_only_by_the_push_timeout",
    ),
    # -- oversize parking ----------------------------------------------------------------------------
    one(
        "oversize-stored-as-a-row",
        "an oversize body is decoded instead of parked (an undecodable one becomes a row)",
        KEPT,
        "drainer/drain.py",
        "        if len(delivery.body) > max_bytes:",
        "        if False:",
        f"{FAULTS}::test_oversize_message_is_kept_byte_exact_in_its_queue_and_neighbours_are_stored",
        f"{GUARDS}::test_an_oversize_body_that_is_not_json_is_parked_not_written_as_a_row",
    ),
    one(
        "parked-copy-not-persistent",
        "a parked copy keeps a transient delivery mode",
        KEPT,
        "drainer/amqp_codec.py",
        '        elif name == "delivery_mode":\n            parts.append(_U8.pack(2))\n',
        "",
        f"{GUARDS}::test_a_parked_copy_carries_every_header_and_property_of_the_original",
    ),
    one(
        "parked-copy-keeps-its-ttl",
        "a parked copy keeps the original's per-message TTL (the broker may drop the only copy)",
        KEPT,
        "drainer/broker.py",
        '_MOVED_TO_HEADERS = (("expiration", "x-original-expiration"), ("user_id", "x-original-user-id"))',
        '_MOVED_TO_HEADERS = (("user_id", "x-original-user-id"),)',
        f"{GUARDS}::test_a_parked_copy_carries_every_header_and_property_of_the_original",
    ),
    one(
        "parked-copy-without-digest",
        "a parked copy lacks `x-drainer-sha256`",
        KEPT,
        "drainer/broker.py",
        '        "x-drainer-sha256": digest,\n',
        "",
        f"{GUARDS}::test_a_parked_copy_carries_every_header_and_property_of_the_original",
    ),
    one(
        "oversize-403-not-noperm",
        "a 403 from the broker (here on the oversize queue) reported as refused (75), not as no permission (77)",
        EXITS,
        "drainer/broker.py",
        "        if code == 403:\n            return BrokerAccessDenied(",
        "        if False:\n            return BrokerAccessDenied(",
        f"{GUARDS}::test_a_403_on_the_oversize_queue_exits_77_and_returns_the_batch",
    ),
    # -- exit codes ----------------------------------------------------------------------------------
    one(
        "ack-lost-reported-ok",
        "a batch committed but not acked exits 0",
        EXITS,
        "drainer/cli/exits.py",
        '(AckFailed, Exit.TEMPFAIL, "ack_failed_after_commit"),',
        '(AckFailed, Exit.OK, "ack_failed_after_commit"),',
        f"{FAULTS}::test_ack_lost_after_commit_is_reported_and_the_redeliveries_stored_once",
    ),
    one(
        "interrupted-reported-ok",
        "an interrupted run exits 0",
        EXITS,
        "drainer/cli/exits.py",
        '(Interrupted, Exit.TEMPFAIL, "interrupted"),',
        '(Interrupted, Exit.OK, "interrupted"),',
        f"{FAULTS}::test_sigterm_while_insert_is_blocked_exits_75_promptly_and_returns_the_batch",
    ),
    one(
        "not-committed-reported-unavailable",
        "a batch not committed exits 69 instead of 75",
        EXITS,
        "drainer/cli/exits.py",
        '(BatchNotCommitted, Exit.TEMPFAIL, "batch_not_committed"),',
        '(BatchNotCommitted, Exit.UNAVAILABLE, "batch_not_committed"),',
        f"{FAULTS}::test_lock_wait_timeout_is_retried_then_exits_75_without_partial_rows",
    ),
    one(
        "missing-queue-reported-unavailable",
        "a missing queue exits 69 instead of 66",
        EXITS,
        "drainer/cli/exits.py",
        '    (QueueNotFound, Exit.NOINPUT, "queue_not_found"),\n',
        "",
        f"{FAULTS}::test_missing_queue_exits_66_and_names_queue_and_vhost",
    ),
    one(
        "schema-outdated-reported-usage",
        "a schema to migrate exits 2 instead of 78",
        EXITS,
        "drainer/cli/exits.py",
        '(SchemaOutdated, Exit.CONFIG, "schema_outdated"),',
        '(SchemaOutdated, Exit.USAGE, "schema_outdated"),',
        f"{DRAIN}::test_missing_schema_exits_78_and_says_run_migrate",
    ),
    one(
        "bug-reported-ok",
        "an unexpected exception in a drain exits 0",
        EXITS,
        "drainer/cli/drain.py",
        'code, error, message, trace = Exit.SOFTWARE, "unexpected_error"',
        'code, error, message, trace = Exit.OK, "unexpected_error"',
        f"{GUARDS}::test_an_unexpected_error_exits_1_with_its_traceback_and_no_password",
    ),
    one(
        "unknown-error-reported-ok",
        "an error the mapping does not know exits 0",
        EXITS,
        "drainer/cli/exits.py",
        '    return Exit.SOFTWARE, "unexpected_error"',
        '    return Exit.OK, "unexpected_error"',
        f"{UNIT}::test_error_maps_to_its_documented_exit_code",
    ),
    # -- the schema check before a drain -------------------------------------------------------------
    one(
        "schema-behind-ignored",
        "a drain runs although a migration file is not applied",
        SCHEMA,
        "drainer/schema.py",
        "    if pending:\n        raise SchemaOutdated(",
        "    if False:\n        raise SchemaOutdated(",
        f"{DRAIN}::test_schema_behind_exits_78_and_keeps_every_message",
    ),
    one(
        "columns-not-checked",
        "a drain runs although a column it writes is missing",
        SCHEMA,
        "drainer/schema.py",
        "    db.check_columns(store)\n",
        "",
        f"{DRAIN}::test_a_table_lacking_a_column_exits_78_and_keeps_every_message",
    ),
    # -- secrets never printed -----------------------------------------------------------------------
    one(
        "traceback-not-scrubbed",
        "a traceback is logged without scrubbing",
        SECRETS,
        "drainer/logs.py",
        "record.exc_text = self.scrub(logging.Formatter().formatException(record.exc_info))",
        "record.exc_text = logging.Formatter().formatException(record.exc_info)",
        f"{GUARDS}::test_an_unexpected_error_exits_1_with_its_traceback_and_no_password",
    ),
    one(
        "passwords-not-registered",
        "configured passwords are not scrubbed from free text",
        SECRETS,
        "drainer/logs.py",
        "    _SECRETS.update(s for s in secrets if s)\n",
        "",
        f"{GUARDS}::test_an_unexpected_error_exits_1_with_its_traceback_and_no_password",
    ),
    one(
        "url-passwords-shown",
        "`mask_url` leaves URLs as they are",
        SECRETS,
        "drainer/config.py",
        "    text = _URL.sub(_mask_one, text)\n    return _USERINFO.sub(",
        "    return text\n    return _USERINFO.sub(",
        f"{OPS}::test_a_failing_run_never_prints_a_short_password_from_a_secret_file",
    ),
    # -- operations ----------------------------------------------------------------------------------
    one(
        "metrics-failure-fails-the-run",
        "a metrics push that fails turns a stored, acked run into exit 1",
        OPERATIONS,
        "drainer/metrics.py",
        "        except Exception as exc:  # the events are stored and acked whatever happens to a gauge",
        "        except ZeroDivisionError as exc:  # mutant",
        f"{OPS}::test_a_metrics_failure_does_not_fail_the_run",
    ),
    one(
        "oslo-mysql-spelling-refused",
        "oslo.db's `mysql://` URL needs a driver that is not installed",
        OPERATIONS,
        "drainer/db/engine.py",
        '        parsed = parsed.set(drivername=f"{parsed.get_backend_name()}+pymysql")',
        "        pass",
        f"{OPS}::test_oslo_mysql_url_spelling_migrates_and_drains",
    ),
    one(
        "text-log-format-ignored",
        "text logs (a terminal, `--log-format text`) are written as JSON",
        OPERATIONS,
        "drainer/cli/__init__.py",
        "    logs.setup(fmt, run_id, verbose=verbose)",
        '    logs.setup("json", run_id, verbose=verbose)',
        "tests/integration/test_terminal.py::test_text_records_carry_date_level_logger_and_run_id_and_no_pika_noise",
    ),
    one(
        "status-text-values-lost",
        "`status` without `--json` prints no values",
        OPERATIONS,
        "drainer/status.py",
        '("waiting messages", _count(report.get("queue_depth"))),',
        '("waiting messages", "-"),',
        "tests/integration/test_terminal.py::test_status_at_a_terminal_is_a_table_without_python_reprs",
    ),
    one(
        "fetch-connection-loss-swallowed",
        "a broker connection lost while fetching ends the fetch quietly",
        EXITS,
        "drainer/broker.py",
        '            return BrokerUnavailable(f"RabbitMQ connection lost while fetching: {exc!r}")',
        '            return BatchNotCommitted(f"fetch: {exc!r}")',
        f"{GUARDS}::test_a_broker_connection_lost_while_fetching_exits_69_and_keeps_every_message",
    ),
)
