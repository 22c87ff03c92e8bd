"""The drainer's error family: one base, one branch per boundary, one leaf per case."""


class DrainerError(Exception):
    """Base of every error the drainer expects and reports."""


class ConfigError(DrainerError):
    """The settings are missing or invalid."""


class BrokerError(DrainerError):
    """Something went wrong talking to RabbitMQ."""

    def __init__(self, message: str, unacked: int = 0) -> None:
        super().__init__(message)
        self.unacked = unacked  # deliveries fetched before the failure; the broker requeues them


class BrokerUnavailable(BrokerError):
    """RabbitMQ could not be reached (within the retry budget)."""


class BrokerAccessDenied(BrokerError):
    """RabbitMQ refused the credentials or the vhost."""


class BrokerCertificateRefused(BrokerAccessDenied):
    """A TLS certificate was refused: the broker's by the configured CA, or ours by the broker."""


class QueueNotFound(BrokerError):
    """The queue does not exist on the vhost."""


class BrokerRefused(BrokerError):
    """RabbitMQ refused an operation on the queue (a reply code other than 403 and 404)."""


class QueueNotSupported(BrokerRefused):
    """The queue's type cannot be read with basic.get (a stream)."""


class PublishNotConfirmed(BrokerError):
    """A publish was not confirmed by the broker (nack, or no confirm in time); nothing was marked."""


class AckFailed(BrokerError):
    """A batch was committed but its ack did not reach the broker; it will be redelivered."""


class DatabaseError(DrainerError):
    """Something went wrong talking to the database."""


class DatabaseUnavailable(DatabaseError):
    """The database could not be reached (within the retry budget)."""


class DatabaseAccessDenied(DatabaseError):
    """The database refused the credentials."""


class DatabaseLocked(DatabaseError):
    """A lock held by another session (not a drainer) outlasted the retry budget; nothing was taken."""


class SchemaOutdated(DatabaseError):
    """The schema is behind the drainer's sql/ files: run `vitrage-drainer migrate`."""


class SchemaConflict(DatabaseError):
    """An already applied migration file has changed since it was applied."""


class BatchNotCommitted(DrainerError):
    """A batch could not be committed; its messages were returned to the queue."""


class OversizeQueueFull(BatchNotCommitted):
    """The oversize queue refused a copy (its length limit with overflow reject-publish)."""


class LeaseLost(BatchNotCommitted):
    """Another drainer took the queue's lease; the batch was not committed."""


class LeaseHeldByOther(DrainerError):
    """Another drainer holds the queue's lease; a command that must write alone cannot run now."""


class Interrupted(DrainerError):
    """A signal asked the run to stop before the batch was committed."""


class RecordNotFound(DrainerError):
    """The row an operator named (a rejected message, a lease) does not exist."""


class NotRepublishable(DrainerError):
    """A rejected row cannot be republished as it is (no body, already republished, still bad)."""
