"""Exit codes (sysexits(3)) and the one mapping from the drainer's errors to them."""

from __future__ import annotations

from enum import IntEnum

from drainer.errors import (
    AckFailed,
    BatchNotCommitted,
    BrokerAccessDenied,
    BrokerCertificateRefused,
    BrokerError,
    BrokerRefused,
    ConfigError,
    DatabaseAccessDenied,
    DatabaseError,
    DatabaseLocked,
    Interrupted,
    LeaseHeldByOther,
    NotRepublishable,
    OversizeQueueFull,
    PublishNotConfirmed,
    QueueNotFound,
    QueueNotSupported,
    RecordNotFound,
    SchemaConflict,
    SchemaOutdated,
)


class Exit(IntEnum):
    """sysexits(3) values; README "Exit codes" explains each."""

    OK = 0  # done: batches stored and acked, queue empty, or another drainer holds the lease
    SOFTWARE = 1  # a bug: unexpected exception (traceback in the JSON record)
    FINDINGS = 1  # `verify`: the stored history is not consistent (the "1 with findings")
    USAGE = 2  # bad flags, environment or config file
    DATAERR = 65  # the data refuses the operation: a rejected row that cannot be republished as it is
    NOINPUT = 66  # the queue does not exist on the vhost, or the row named does not exist
    UNAVAILABLE = 69  # broker or database unreachable within the retry budget
    TEMPFAIL = 75  # batch not committed (messages returned) or committed but not acked; a publish not
    # confirmed; a lease held by a live drainer
    PROTOCOL = 76  # the broker refused an operation on the queue (e.g. basic.get on a stream)
    NOPERM = 77  # broker or database refused the credentials or the vhost
    CONFIG = 78  # database schema missing, behind, or changed: run migrate


# The sentence --help shows for a code when a command gives none of its own.
MEANINGS: dict[Exit, str] = {
    Exit.OK: "done",
    Exit.SOFTWARE: "a bug: the error record carries the traceback",
    Exit.USAGE: "a bad flag, environment variable or config file (also a database, or a SQLite file's folder, "
    "that does not exist)",
    Exit.DATAERR: "the data refuses the operation (e.g. a rejected row that cannot be republished as it is)",
    Exit.NOINPUT: "the queue does not exist on the vhost",
    Exit.PROTOCOL: "the broker refused an operation on the queue (e.g. basic.get on a stream queue); the record "
    "names the code, queue and vhost",
    Exit.UNAVAILABLE: "the broker or the database did not answer within --retry-seconds",
    Exit.TEMPFAIL: "a batch was not committed (its messages are back in the queue), or not acked after its commit",
    Exit.NOPERM: "the broker or the database refused the credentials, the vhost or a statement",
    Exit.CONFIG: "the database has no drainer schema, or an older one: run `vitrage-drainer migrate`",
}


# The same codes for the commands that reach only the database.
DB_UNAVAILABLE = (Exit.UNAVAILABLE, "the database did not answer within --retry-seconds")
DB_NOPERM = (Exit.NOPERM, "the database refused the credentials or a statement")

# Most specific first: the first match decides.
_CODES: tuple[tuple[type[BaseException], Exit, str], ...] = (
    (ConfigError, Exit.USAGE, "config_error"),
    (QueueNotFound, Exit.NOINPUT, "queue_not_found"),
    (RecordNotFound, Exit.NOINPUT, "not_found"),
    (NotRepublishable, Exit.DATAERR, "not_republishable"),
    (PublishNotConfirmed, Exit.TEMPFAIL, "publish_not_confirmed"),
    (QueueNotSupported, Exit.PROTOCOL, "queue_not_supported"),
    (BrokerRefused, Exit.PROTOCOL, "broker_refused"),
    (BrokerCertificateRefused, Exit.NOPERM, "broker_certificate_refused"),
    (BrokerAccessDenied, Exit.NOPERM, "broker_access_denied"),
    (DatabaseAccessDenied, Exit.NOPERM, "database_access_denied"),
    (SchemaOutdated, Exit.CONFIG, "schema_outdated"),
    (SchemaConflict, Exit.CONFIG, "schema_conflict"),
    (AckFailed, Exit.TEMPFAIL, "ack_failed_after_commit"),
    (Interrupted, Exit.TEMPFAIL, "interrupted"),
    (OversizeQueueFull, Exit.TEMPFAIL, "oversize_queue_full"),
    (DatabaseLocked, Exit.TEMPFAIL, "database_locked"),
    (LeaseHeldByOther, Exit.TEMPFAIL, "lease_held"),
    (BatchNotCommitted, Exit.TEMPFAIL, "batch_not_committed"),
    (BrokerError, Exit.UNAVAILABLE, "broker_unavailable"),
    (DatabaseError, Exit.UNAVAILABLE, "database_unavailable"),
)


def exit_code_for(exc: BaseException) -> tuple[Exit, str]:
    """(exit code, stable error name) for an error; anything unknown is a bug (1)."""
    for kind, code, name in _CODES:
        if isinstance(exc, kind):
            return code, name
    return Exit.SOFTWARE, "unexpected_error"
