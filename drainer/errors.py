"""The drainer's error family: one base, one branch per boundary, one leaf per case."""


class DrainerError(Exception):
    """Base of every error the drainer expects and reports."""


class ConfigError(DrainerError):
    """The settings are missing or invalid."""


class BrokerError(DrainerError):
    """Something went wrong talking to RabbitMQ."""


class BrokerUnavailable(BrokerError):
    """RabbitMQ could not be reached (within the retry budget)."""


class BrokerAccessDenied(BrokerError):
    """RabbitMQ refused the credentials or the vhost."""


class QueueNotFound(BrokerError):
    """The queue does not exist on the vhost."""


class AckFailed(BrokerError):
    """A batch was committed but its ack did not reach the broker; it will be redelivered."""


class DatabaseError(DrainerError):
    """Something went wrong talking to the database."""


class DatabaseUnavailable(DatabaseError):
    """The database could not be reached (within the retry budget)."""


class DatabaseAccessDenied(DatabaseError):
    """The database refused the credentials."""


class SchemaOutdated(DatabaseError):
    """The schema is behind the drainer's sql/ files: run `vitrage-drainer migrate`."""


class SchemaConflict(DatabaseError):
    """An already applied migration file has changed since it was applied."""


class BatchNotCommitted(DrainerError):
    """A batch could not be committed; its messages were returned to the queue."""


class LeaseLost(BatchNotCommitted):
    """Another drainer took the queue's lease; the batch was not committed."""


class LeaseHeldByOther(DrainerError):
    """Another drainer holds the queue's lease; a command that must write alone cannot run now."""


class Interrupted(DrainerError):
    """A signal asked the run to stop before the batch was committed."""
