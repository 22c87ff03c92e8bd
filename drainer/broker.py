"""The only module that talks to pika: connect (with failover), get, ack, nack, publish, depth."""

from __future__ import annotations

import contextlib
import logging
import signal
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from drainer import retry
from drainer.config import Settings, mask_url
from drainer.errors import (
    AckFailed,
    BatchNotCommitted,
    BrokerAccessDenied,
    BrokerError,
    BrokerUnavailable,
    ConfigError,
    QueueNotFound,
)
from drainer.model import Delivery

if TYPE_CHECKING:
    import pika
    from pika.adapters.blocking_connection import BlockingChannel

log = logging.getLogger(__name__)

_PROPERTY_NAMES = (
    "content_type",
    "content_encoding",
    "headers",
    "delivery_mode",
    "priority",
    "correlation_id",
    "reply_to",
    "expiration",
    "message_id",
    "timestamp",
    "type",
    "user_id",
    "app_id",
    "cluster_id",
)


# Properties that name a kind of message, not one message: the same text on every delivery.
_REPEATED_PROPERTIES = frozenset({"content_type", "content_encoding", "type", "user_id", "app_id", "cluster_id"})


def _properties(props: Any, shared: Callable[[Any], Any]) -> dict[str, Any]:
    return {
        name: shared(value) if name in _REPEATED_PROPERTIES else value
        for name in _PROPERTY_NAMES
        if (value := getattr(props, name)) is not None
    }


class _Overdue(BaseException):  # noqa: N818
    """A broker wait outlived its deadline (raised from SIGALRM, inside pika's wait loop)."""


@contextlib.contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Bound a pika wait that has no timeout of its own (a publisher confirm from a quorum queue
    without a majority never comes, while heartbeats keep the connection up)."""

    def expire(_signum: int, _frame: Any) -> None:
        raise _Overdue()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _parameters(settings: Settings) -> list[pika.URLParameters]:
    import pika

    params = []
    for url in settings.amqp_urls:
        try:
            p = pika.URLParameters(url)
        except ValueError as exc:  # pika quotes the part it could not parse: never show it
            raise ConfigError(f"AMQP URL {mask_url(url)} is not valid (check the port and quoting)") from exc
        p.connection_attempts = 1  # tenacity owns retries, with a total budget
        p.retry_delay = 0
        p.socket_timeout = settings.connect_timeout
        p.stack_timeout = settings.connect_timeout * 2
        p.blocked_connection_timeout = settings.socket_timeout
        p.heartbeat = settings.heartbeat
        p.client_properties = {"connection_name": f"vitrage-drainer {settings.queue_name}"}
        params.append(p)
    return params


def _vhost(settings: Settings) -> str:
    path = urlsplit(settings.amqp_urls[0]).path
    from urllib.parse import unquote

    return unquote(path[1:]) if path not in ("", "/") else "/"


def _reason(exc: BaseException) -> str:
    """What went wrong in a pika error, in one line and without object reprs: the innermost cause
    (pika nests a socket error in a connector error in a workflow error in a connection error)."""
    seen: set[int] = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        inner = getattr(exc, "exception", None) or (getattr(exc, "exceptions", None) or [None])[-1]
        inner = inner or next((a for a in exc.args if isinstance(a, BaseException)), None)
        if not isinstance(inner, BaseException):
            break
        exc = inner
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc).strip(" ()'\",")
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Broker:
    """One connection and channel to RabbitMQ for the length of a run."""

    def __init__(self, connection: pika.BlockingConnection, settings: Settings) -> None:
        self._connection = connection
        self._settings = settings
        self._channel: BlockingChannel = connection.channel()
        self._oversize_channel: BlockingChannel | None = None

    @classmethod
    def connect(cls, settings: Settings) -> Broker:
        """Connect to the first broker that answers, retrying transient failures within budget."""
        import pika
        import pika.exceptions as pe
        from pika.adapters.utils.connection_workflow import AMQPConnectorException

        params = _parameters(settings)
        hosts = ", ".join(mask_url(u) for u in settings.amqp_urls)

        def transient(exc: BaseException) -> bool:
            # A handshake timeout is an AMQPConnectorException, outside the AMQPError tree.
            return isinstance(exc, pe.AMQPConnectionError | AMQPConnectorException) and not isinstance(
                exc, pe.ProbableAuthenticationError | pe.ProbableAccessDeniedError
            )

        policy = retry.bounded("broker connect", settings.retry_seconds, transient, describe=_reason)
        started = time.monotonic()
        try:
            connection = policy(pika.BlockingConnection, params)
        except pe.ProbableAuthenticationError as exc:
            raise BrokerAccessDenied(f"RabbitMQ refused the credentials at {hosts}") from exc
        except pe.ProbableAccessDeniedError as exc:
            raise BrokerAccessDenied(
                f"RabbitMQ refused vhost {_vhost(settings)!r} at {hosts}: "
                "it does not exist or the user has no access to it"
            ) from exc
        except (pe.AMQPError, AMQPConnectorException) as exc:
            tries = policy.statistics.get("attempt_number", 1)
            raise BrokerUnavailable(
                f"RabbitMQ unreachable at {hosts}: {mask_url(_reason(exc))} ({tries} attempt{'s' * (tries > 1)} "
                f"in {time.monotonic() - started:.1f} s; --retry-seconds {settings.retry_seconds:g})"
            ) from exc
        return cls(connection, settings)

    def _queue_missing(self, queue: str, exc: Exception) -> QueueNotFound:
        return QueueNotFound(
            f"queue {queue!r} does not exist in vhost {_vhost(self._settings)!r}; Vitrage's notifier "
            "declares it on its first event, or name another with --queue/--topic"
        )

    def _channel_closed(self, queue: str, exc: Any) -> BrokerError:
        if exc.reply_code == 404:
            return self._queue_missing(queue, exc)
        if exc.reply_code == 403:
            return BrokerAccessDenied(
                f"RabbitMQ refused access to queue {queue!r} in vhost {_vhost(self._settings)!r}: {exc.reply_text}"
            )
        return BrokerError(f"RabbitMQ closed the channel: {exc}")

    def depth(self, queue: str) -> tuple[int, int]:
        """(messages ready, consumers) of the queue, by a passive declare."""
        import pika.exceptions as pe

        try:
            ok = self._channel.queue_declare(queue, passive=True)
        except pe.ChannelClosedByBroker as exc:
            raise self._channel_closed(queue, exc) from exc
        except pe.AMQPError as exc:
            raise BrokerUnavailable(f"RabbitMQ connection lost: {exc!r}") from exc
        return ok.method.message_count, ok.method.consumer_count

    def fetch_batch(
        self, queue: str, limit: int, max_bytes: int, max_seconds: float, stop_requested: Callable[[], bool]
    ) -> tuple[list[Delivery], int | None]:
        """Up to `limit` unacked deliveries and about `max_bytes` of bodies (stops early on empty or
        stop), and the depth after."""
        import pika.exceptions as pe

        deliveries: list[Delivery] = []
        remaining: int | None = None
        held = 0
        until = time.monotonic() + max_seconds  # a slow broker shortens the batch, not the lease
        get = self._channel.basic_get
        # One copy of each text the batch repeats (pika decodes a new one per message); a dict that
        # dies with the batch, not sys.intern, which never frees on Python 3.12.
        cache: dict[Any, Any] = {}

        def shared(value: Any) -> Any:
            return cache.setdefault(value, value) if type(value) is str else value

        try:
            while len(deliveries) < limit and held < max_bytes and time.monotonic() < until and not stop_requested():
                method, props, body = get(queue, auto_ack=False)
                if method is None:
                    remaining = 0
                    break
                deliveries.append(
                    Delivery(
                        method.delivery_tag,
                        body,
                        shared(method.exchange),
                        shared(method.routing_key),
                        method.redelivered,
                        _properties(props, shared),
                    )
                )
                remaining = method.message_count
                held += len(body)
        except pe.ChannelClosedByBroker as exc:
            raise self._channel_closed(queue, exc) from exc
        except pe.AMQPError as exc:
            # Unacked deliveries return to the queue when the connection drops; nothing is lost.
            raise BrokerUnavailable(f"RabbitMQ connection lost while fetching: {exc!r}") from exc
        return deliveries, remaining

    def ack_through(self, tag: int) -> None:
        """Ack every delivery up to and including `tag` on the channel that received them."""
        import pika.exceptions as pe

        try:
            self._channel.basic_ack(tag, multiple=True)
            # basic_ack has no reply; servicing the connection surfaces a close the broker sent.
            self._connection.process_data_events(0)
            if not self._channel.is_open:
                raise AckFailed("channel closed before the ack was confirmed")
        except pe.AMQPError as exc:
            raise AckFailed(
                "batch committed but the ack did not reach RabbitMQ; its messages will be "
                f"redelivered and counted as duplicates by the next run ({exc!r})"
            ) from exc

    def return_unacked(self) -> None:
        """Give every unacked delivery back to the queue (nack, requeue); best effort."""
        import pika.exceptions as pe

        try:
            if self._channel.is_open:
                self._channel.basic_nack(0, multiple=True, requeue=True)
        except pe.AMQPError:
            log.warning(
                "nack failed; the broker requeues unacked messages when the connection closes",
                extra={"event": "nack_failed"},
            )

    def keepalive(self) -> None:
        """Service heartbeats while the database phase runs; pika only does so inside its calls."""
        import pika.exceptions as pe

        try:
            self._connection.process_data_events(0)
        except pe.AMQPError:
            log.warning("broker connection lost during the batch", extra={"event": "broker_lost"})

    def ensure_open(self) -> None:
        """Raise BrokerUnavailable when the connection is gone: the batch could not be acked."""
        import pika.exceptions as pe

        try:
            self._connection.process_data_events(0)
        except pe.AMQPError as exc:
            raise BrokerUnavailable(f"RabbitMQ connection lost before the commit: {exc!r}") from exc
        if not self._channel.is_open:
            raise BrokerUnavailable("RabbitMQ closed the channel before the commit")

    def _oversize_target(self, queue: str) -> BlockingChannel:
        """A confirming channel to the oversize queue: an existing queue is used as it is (an
        operator may have made it a quorum queue); a missing one is declared durable."""
        import pika.exceptions as pe

        channel = self._connection.channel()
        try:
            channel.queue_declare(queue, passive=True)
        except pe.ChannelClosedByBroker as exc:
            if exc.reply_code != 404:
                raise
            channel = self._connection.channel()
            channel.queue_declare(queue, durable=True)
        channel.confirm_delivery()
        return channel

    def park_oversize(self, queue: str, delivery: Delivery, reason: str, digest: str) -> None:
        """Publish a byte-exact copy to the oversize queue, confirmed before returning.

        A batch that fails after this is fetched again and parks the message again: copies carry
        `x-drainer-sha256` so a reader can tell repeats apart.
        """
        try:
            with _deadline(self._settings.socket_timeout):
                self._publish_parked(queue, delivery, reason, digest)
        except _Overdue:
            # The connection is mid-frame: drop it (bounded too); the broker requeues the batch.
            try:
                with _deadline(self._settings.connect_timeout):
                    self.close()
            except _Overdue:
                log.warning(
                    "broker close timed out; the process exit drops the socket", extra={"event": "close_timeout"}
                )
            raise BatchNotCommitted(
                f"oversize copy to {queue!r} not confirmed within {self._settings.socket_timeout:g}s"
            ) from None

    def _publish_parked(self, queue: str, delivery: Delivery, reason: str, digest: str) -> None:
        import pika
        import pika.exceptions as pe

        try:
            if self._oversize_channel is None or not self._oversize_channel.is_open:
                self._oversize_channel = self._oversize_target(queue)
            props = dict(delivery.properties)
            headers = dict(props.get("headers") or {})
            # A per-message TTL would let the broker drop the only copy; a user_id must match the
            # drainer's login or the broker refuses the publish. Both are kept as headers.
            for name in ("expiration", "user_id"):
                if name in props:
                    headers[f"x-original-{name.replace('_', '-')}"] = props.pop(name)
            headers.update(
                {
                    "x-drainer-reason": reason,
                    "x-drainer-sha256": digest,
                    "x-original-exchange": delivery.exchange,
                    "x-original-routing-key": delivery.routing_key,
                }
            )
            props["headers"] = headers
            props["delivery_mode"] = 2
            self._oversize_channel.basic_publish(
                "", queue, delivery.body, pika.BasicProperties(**props), mandatory=True
            )
        except pe.ChannelClosedByBroker as exc:
            if exc.reply_code == 403:
                raise BrokerAccessDenied(f"RabbitMQ refused the oversize queue {queue!r}: {exc.reply_text}") from exc
            raise BatchNotCommitted(f"could not move an oversize message to queue {queue!r}: {exc!r}") from exc
        except pe.AMQPError as exc:
            raise BatchNotCommitted(f"could not move an oversize message to queue {queue!r}: {exc!r}") from exc

    def close(self) -> None:
        """Close the connection; the broker requeues anything still unacked."""
        import pika.exceptions as pe

        try:
            if self._connection.is_open:
                self._connection.close()
        except pe.AMQPError:
            pass  # closing a broken connection: the broker already dropped it
