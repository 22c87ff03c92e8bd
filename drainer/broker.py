"""The only module that talks to pika: connect (with failover and TLS), get, ack, nack, publish,
depth. Every exception a pika call can raise is translated here, into the drainer's own errors."""

from __future__ import annotations

import contextlib
import logging
import signal
import struct
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from drainer import amqp_codec, retry
from drainer.config import Settings, mask_url
from drainer.errors import (
    AckFailed,
    BatchNotCommitted,
    BrokerAccessDenied,
    BrokerCertificateRefused,
    BrokerError,
    BrokerRefused,
    BrokerUnavailable,
    ConfigError,
    OversizeQueueFull,
    PublishNotConfirmed,
    QueueNotFound,
    QueueNotSupported,
)
from drainer.model import Delivery

if TYPE_CHECKING:
    import pika
    from pika.adapters.blocking_connection import BlockingChannel

log = logging.getLogger(__name__)

# Properties that name a kind of message, not one message: the same text on every delivery.
_REPEATED_PROPERTIES = frozenset({"content_type", "content_encoding", "type", "user_id", "app_id", "cluster_id"})

# Reply codes (AMQP 0-9-1 section 1.9) that mean the broker went away, not that it refused something.
_GONE_CODES = frozenset({320, 501, 504, 505, 541})


def _lost_errors() -> tuple[type[BaseException], ...]:
    """What a pika call raises when the connection or channel is gone under it: its own exception
    classes, and the ValueError ("Timeout closed before call") and AssertionError it raises from
    a closed connection's timers and callbacks."""
    import pika.exceptions as pe

    return (pe.AMQPError, pe.ChannelError, pe.ReentrancyError, ValueError, AssertionError, OSError)


def _connection_lost(exc: BaseException) -> BrokerError:
    return BrokerUnavailable(f"RabbitMQ connection lost: {exc!r}")


def _received_properties(raw: bytes) -> Any:
    """A pika BasicProperties holding amqp_codec's faithful decoding of `raw` (so pika's own
    isinstance checks still hold), with the bytes and any decoding error attached."""
    import pika

    props = pika.BasicProperties()
    try:
        values = amqp_codec.decode_properties(raw)
        error = None
    except amqp_codec.FieldDecodeError as exc:
        values, error = {}, str(exc)
    for name, value in values.items():
        setattr(props, name, value)
    props.drainer_raw = raw
    props.drainer_error = error
    return props


def _decode_content_headers_faithfully(connection: pika.BlockingConnection) -> None:
    """Make this one connection decode Basic content headers with amqp_codec instead of pika.data.

    pika.data turns a float or double header into an int (0.75 -> 0) and raises on a timestamp
    beyond year 9999 (a millisecond epoch), which drops the connection before the message is seen
    (pika 1.3/1.4 `data.decode_value`). Only content-header frames are taken over, on this
    connection's own frame reader; method and body frames, and every other connection, are
    pika's as before.
    """
    from pika import frame, spec

    impl = connection._impl
    if not callable(getattr(impl, "_read_frame", None)) or not hasattr(impl, "_frame_buffer"):
        raise RuntimeError("this pika version has no Connection._read_frame; pin pika>=1.3,<2")
    pika_read_frame = impl._read_frame

    def read_frame() -> tuple[int, Any]:
        buf = impl._frame_buffer
        if len(buf) < 7 or buf[0] != spec.FRAME_HEADER:
            return pika_read_frame()
        channel, size = struct.unpack_from(">HL", buf, 1)
        end = spec.FRAME_HEADER_SIZE + size + spec.FRAME_END_SIZE
        if end > len(buf):
            return 0, None  # wait for the rest of the frame, as pika does
        class_id = struct.unpack_from(">H", buf, 7)[0] if size >= 12 else None
        if class_id != spec.BasicProperties.INDEX or buf[end - 1] != spec.FRAME_END:
            return pika_read_frame()
        (body_size,) = struct.unpack_from(">Q", buf, 11)
        return end, frame.Header(channel, body_size, _received_properties(bytes(buf[19 : end - 1])))

    impl._read_frame = read_frame


def _properties(props: Any, shared: Callable[[Any], Any]) -> dict[str, Any]:
    return {
        name: shared(value) if name in _REPEATED_PROPERTIES else value
        for name in amqp_codec.PROPERTY_NAMES
        if (value := getattr(props, name)) is not None
    }


def _tls_options(settings: Settings, url: str) -> Any:
    """pika SSLOptions for an amqps:// URL, with oslo.messaging's meaning of the settings (its
    `_fetch_ssl_params` with py-amqp's `_wrap_socket_sni`): with `ssl_ca_file`, the broker's
    certificate must chain to that CA and name the host; without it, the chain is checked against
    the system's CAs but not the host name; `ssl_version` pins the protocol and, without a CA
    file, turns verification off (an `ssl.SSLContext(PROTOCOL_TLSv1_2)` verifies nothing)."""
    import ssl

    import pika

    host = urlsplit(url).hostname or ""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    version = (settings.amqp_ssl_version or "").lower()
    pinned = {"tlsv1": ssl.TLSVersion.TLSv1, "tlsv1_1": ssl.TLSVersion.TLSv1_1, "tlsv1_2": ssl.TLSVersion.TLSv1_2}
    if version in pinned:
        context.minimum_version = context.maximum_version = pinned[version]
    try:
        if settings.amqp_ssl_ca_file:
            context.load_verify_locations(settings.amqp_ssl_ca_file)
        elif version:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            log.warning(
                "ssl_version without ssl_ca_file: the broker's certificate is not verified, as oslo.messaging "
                "does with these settings; set ssl_ca_file to verify it",
                extra={"event": "tls_unverified", "host": host},
            )
        else:
            context.check_hostname = False
            context.load_default_certs(ssl.Purpose.SERVER_AUTH)
        if settings.amqp_ssl_cert_file:
            context.load_cert_chain(settings.amqp_ssl_cert_file, settings.amqp_ssl_key_file or None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"TLS files for the broker cannot be used: {exc}") from exc
    return pika.SSLOptions(context, server_hostname=host)


# RabbitMQ's 404 reply text for a durable classic queue whose home node is down (3.x: "home node
# 'rabbit@h3' of durable queue 'q' in vhost '/' is down or inaccessible").
_HOME_NODE_DOWN = "is down or inaccessible"


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
        if urlsplit(url).scheme == "amqps":
            p.ssl_options = _tls_options(settings, url)
        params.append(p)
    return params


def _vhost(settings: Settings) -> str:
    path = urlsplit(settings.amqp_urls[0]).path
    return unquote(path[1:]) if path not in ("", "/") else "/"


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and everything inside it: chained causes, and the attempts pika wraps in its
    connection-workflow errors (as `exceptions` and positional args)."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        nested = [*getattr(current, "exceptions", ()), *current.args, current.__cause__, current.__context__]
        todo.extend(e for e in nested if isinstance(e, BaseException))


# OpenSSL alert reasons a server sends when it refuses the client's certificate.
_CLIENT_CERT_REFUSED = ("CERTIFICATE_REQUIRED", "BAD_CERTIFICATE", "UNKNOWN_CA", "CERTIFICATE_UNKNOWN")


def _tls_failure(exc: BaseException, hosts: str) -> BrokerError | None:
    """A TLS failure inside a connect error, as a refused certificate (77) or an unusable
    handshake (69); None when TLS is not the cause."""
    import ssl

    for cause in _causes(exc):
        # pika sometimes keeps only the text of the SSLError (IncompatibleProtocolError's args).
        text = str(cause)
        if not isinstance(cause, ssl.SSLError) and "SSLError" in text:
            refused = next((word for word in _CLIENT_CERT_REFUSED if word in text), None)
            if refused is not None:
                return BrokerCertificateRefused(
                    f"the broker at {hosts} refused this client's TLS certificate ({refused}); "
                    "check ssl_cert_file and ssl_key_file"
                )
        if isinstance(cause, ssl.SSLCertVerificationError):
            return BrokerCertificateRefused(
                f"the broker's TLS certificate at {hosts} was refused: {cause.verify_message} "
                "(check ssl_ca_file and the host name in the URL)"
            )
        if isinstance(cause, ssl.SSLError):
            reason = cause.reason or str(cause)
            if any(word in reason for word in _CLIENT_CERT_REFUSED):
                return BrokerCertificateRefused(
                    f"the broker at {hosts} refused this client's TLS certificate ({reason}); "
                    "check ssl_cert_file and ssl_key_file"
                )
            return BrokerUnavailable(f"TLS handshake with {hosts} failed: {reason}")
    return None


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
        self._publish_channel: BlockingChannel | None = None
        self._abandoned = False
        # Deliveries fetched and neither acked nor given back to a broker that confirmed it knows:
        # after a silent loss the broker may hold them on our dead connection for a while.
        self._held = 0

    @property
    def deliveries_in_doubt(self) -> int:
        """How many deliveries this connection may still hold on the broker's side after the run:
        fetched, not acked, and not given back over a connection that then closed cleanly (the
        broker requeues them only once it notices the connection is gone, up to two heartbeats)."""
        return self._held

    def _note_loss(self, exc: BaseException) -> None:
        import pika.exceptions as pe

        if isinstance(exc, pe.ConnectionClosedByBroker):
            self._held = 0  # the broker closed it: it has requeued what the connection held

    @classmethod
    def connect(cls, settings: Settings) -> Broker:
        """Connect to the first broker that answers, retrying transient failures within budget."""
        import pika
        import pika.exceptions as pe
        from pika.adapters.utils.connection_workflow import AMQPConnectorException

        params = _parameters(settings)
        hosts = ", ".join(mask_url(u) for u in settings.amqp_urls)

        def transient(exc: BaseException) -> bool:
            # A handshake timeout is an AMQPConnectorException, outside the AMQPError tree. A TLS
            # failure is a setting or a certificate: retrying cannot mend it.
            return (
                isinstance(exc, pe.AMQPConnectionError | AMQPConnectorException)
                and not isinstance(exc, pe.ProbableAuthenticationError | pe.ProbableAccessDeniedError)
                and _tls_failure(exc, hosts) is None
            )

        policy = retry.bounded("broker connect", settings.retry_seconds, transient, describe=_reason)
        started = time.monotonic()
        try:
            connection = policy(pika.BlockingConnection, params)
            _decode_content_headers_faithfully(connection)
        except pe.ProbableAuthenticationError as exc:
            raise BrokerAccessDenied(f"RabbitMQ refused the credentials at {hosts}") from exc
        except pe.ProbableAccessDeniedError as exc:
            raise BrokerAccessDenied(
                f"RabbitMQ refused vhost {_vhost(settings)!r} at {hosts}: "
                "it does not exist or the user has no access to it"
            ) from exc
        except (pe.AMQPError, AMQPConnectorException, *_lost_errors()) as exc:
            tls = _tls_failure(exc, hosts)
            if tls is not None:
                raise tls from exc
            tries = policy.statistics.get("attempt_number", 1)
            raise BrokerUnavailable(
                f"RabbitMQ unreachable at {hosts}: {mask_url(_reason(exc))} ({tries} attempt{'s' * (tries > 1)} "
                f"in {time.monotonic() - started:.1f} s; --retry-seconds {settings.retry_seconds:g})"
            ) from exc
        try:
            return cls(connection, settings)
        except _lost_errors() as exc:
            raise BrokerUnavailable(
                f"RabbitMQ closed the connection at {hosts} before a channel opened: {exc!r}"
            ) from (exc)

    def _refused(self, queue: str, doing: str, exc: Any) -> BrokerError:
        """The broker's close of a channel (or the connection) as what it is, naming queue and vhost."""
        code, text = exc.reply_code, exc.reply_text
        where = f"queue {queue!r} in vhost {_vhost(self._settings)!r}"
        if code == 404 and _HOME_NODE_DOWN in str(text):
            # The queue exists; its messages wait on a node that is down (a classic queue is not
            # replicated). A retry once the node is back finds them: unavailable, not missing.
            return BrokerUnavailable(f"{where} cannot be read now: {text}")
        if code == 404 and queue == self._settings.oversize_queue_name:
            return QueueNotFound(
                f"{where} does not exist: the drainer declares it when it parks its first oversize message, "
                "so nothing has been parked from this queue (or name another with --oversize-queue)"
            )
        if code == 404:
            return QueueNotFound(
                f"{where} does not exist; Vitrage's notifier declares it on its first event, "
                "or name another with --queue/--topic"
            )
        if code == 403:
            return BrokerAccessDenied(f"RabbitMQ refused {doing} on {where}: {text}")
        if code == 540 and "stream" in text:
            return QueueNotSupported(
                f"{where} is a stream queue, which RabbitMQ does not serve with basic.get "
                f"(540 NOT_IMPLEMENTED); nothing was taken from it. Point the drainer at a classic or "
                "quorum queue bound to the same exchange and routing key (the stream keeps its messages)"
            )
        if code in _GONE_CODES:
            return BrokerUnavailable(f"RabbitMQ closed the connection during {doing} on {where}: {code} {text}")
        return BrokerRefused(f"RabbitMQ refused {doing} on {where}: {code} {text}")

    @contextlib.contextmanager
    def _pika_call(self, queue: str, doing: str, lost: Callable[[BaseException], BrokerError | BatchNotCommitted]):
        """Translate whatever the pika calls inside raise: a broker refusal into what it is, a lost
        connection or channel into `lost(exc)`."""
        import pika.exceptions as pe

        try:
            yield
        except (pe.ChannelClosedByBroker, pe.ConnectionClosedByBroker) as exc:
            self._note_loss(exc)
            raise self._refused(queue, doing, exc) from exc
        except _lost_errors() as exc:
            raise lost(exc) from exc

    def depth(self, queue: str) -> tuple[int, int]:
        """(messages ready, consumers) of the queue, by a passive declare."""
        with self._pika_call(queue, "a passive declare", _connection_lost):
            ok = self._channel.queue_declare(queue, passive=True)
        return ok.method.message_count, ok.method.consumer_count

    def probe_readable(self, queue: str) -> None:
        """Raise what a drain would meet on this queue (QueueNotSupported for a stream) without
        taking anything from it: called only when the queue reports no ready message, so a
        basic.get answers empty; a message that arrived meanwhile is given back at once."""
        channel = None
        with self._pika_call(queue, "basic.get", _connection_lost):
            channel = self._connection.channel()
            method, _props, _body = channel.basic_get(queue, auto_ack=False)
            if method is not None:
                channel.basic_nack(method.delivery_tag, requeue=True)
            channel.close()

    def depth_if_exists(self, queue: str) -> int | None:
        """Messages ready in a queue that may not exist (None then), on a channel of its own so the
        broker's 404 closes nothing else."""
        # An absent queue is an answer here, not a warning: pika logs every 404 close at WARNING.
        pika_channel = logging.getLogger("pika.channel")
        level = pika_channel.level
        pika_channel.setLevel(logging.ERROR)
        try:
            with self._pika_call(queue, "a passive declare", _connection_lost):
                channel = self._connection.channel()
                ok = channel.queue_declare(queue, passive=True)
                channel.close()
        except QueueNotFound:
            return None
        finally:
            pika_channel.setLevel(level)
        return int(ok.method.message_count)

    def fetch_batch(
        self, queue: str, limit: int, max_bytes: int, max_seconds: float, stop_requested: Callable[[], bool]
    ) -> tuple[list[Delivery], int | None]:
        """Up to `limit` unacked deliveries and about `max_bytes` of bodies (stops early on empty or
        stop), and the depth after. A BrokerError raised here carries in `unacked` how many were
        fetched before it (the broker requeues them)."""
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

        def lost(exc: BaseException) -> BrokerError:
            # Unacked deliveries return to the queue when the connection drops; nothing is lost.
            return BrokerUnavailable(f"RabbitMQ connection lost while fetching: {exc!r}")

        # basic.get has no timeout of its own: a broker that stops answering while the connection
        # stays up would hold the run until heartbeats fail (two of them, 120 s by default).
        bound = max_seconds + self._settings.socket_timeout
        try:
            with _deadline(bound), self._pika_call(queue, "basic.get", lost):
                while (
                    len(deliveries) < limit and held < max_bytes and time.monotonic() < until and not stop_requested()
                ):
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
                            getattr(props, "drainer_raw", b""),
                            getattr(props, "drainer_error", None),
                        )
                    )
                    remaining = method.message_count
                    held += len(body)
        except _Overdue:
            self._held += len(deliveries) + 1  # and the Get-Ok that never arrived may hold one more
            error = BrokerUnavailable(
                f"RabbitMQ did not answer basic.get on queue {queue!r} within {bound:g} s (the fetch bound "
                "and --socket-timeout) although the connection is up"
            )
            error.unacked = len(deliveries)
            raise error from None
        except BrokerError as exc:
            import pika.exceptions as pe

            # The broker closed the channel or connection itself: it requeues what they held. A
            # silent loss leaves those, and the Get-Ok that was in flight, on the broker's side.
            refused = isinstance(exc.__cause__, pe.ChannelClosedByBroker | pe.ConnectionClosedByBroker)
            self._held = 0 if refused else self._held + len(deliveries) + 1
            exc.unacked = len(deliveries)
            raise
        self._held += len(deliveries)
        return deliveries, remaining

    def ack_through(self, tag: int) -> None:
        """Ack every delivery up to and including `tag` on the channel that received them."""

        def lost(exc: BaseException) -> BrokerError:
            return AckFailed(
                "batch committed but the ack did not reach RabbitMQ; its messages will be "
                f"redelivered and counted as duplicates by the next run ({exc!r})"
            )

        try:
            with self._pika_call("", "basic.ack", lost):
                self._channel.basic_ack(tag, multiple=True)
                # basic_ack has no reply; servicing the connection surfaces a close the broker sent.
                self._connection.process_data_events(0)
        except AckFailed:
            raise
        except BrokerError as exc:  # any close after the commit: the ack is what failed
            raise lost(exc) from exc
        if not self._channel.is_open:
            raise AckFailed("channel closed before the ack was confirmed")
        self._held = 0

    def return_unacked(self) -> None:
        """Give every unacked delivery back to the queue (nack, requeue); best effort."""
        try:
            if self._channel.is_open:
                # Not yet "given back": a silent broker swallows the nack too. close() decides.
                self._channel.basic_nack(0, multiple=True, requeue=True)
        except _lost_errors():
            log.warning(
                "nack failed; the broker requeues unacked messages when the connection closes",
                extra={"event": "nack_failed"},
            )

    def keepalive(self) -> None:
        """Service heartbeats while the database phase runs; pika only does so inside its calls."""
        try:
            self._connection.process_data_events(0)
        except _lost_errors() as exc:
            self._note_loss(exc)
            log.warning("broker connection lost during the batch", extra={"event": "broker_lost"})

    def ensure_open(self) -> None:
        """Raise BrokerUnavailable when the connection is gone: the batch could not be acked."""
        try:
            self._connection.process_data_events(0)
        except _lost_errors() as exc:
            self._note_loss(exc)
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
            self.close()
            raise BatchNotCommitted(
                f"oversize copy to {queue!r} not confirmed within {self._settings.socket_timeout:g}s"
            ) from None

    def _publish_parked(self, queue: str, delivery: Delivery, reason: str, digest: str) -> None:
        import pika
        import pika.exceptions as pe

        def lost(exc: BaseException) -> BatchNotCommitted:
            return BatchNotCommitted(f"could not move an oversize message to queue {queue!r}: {exc!r}")

        properties = pika.BasicProperties()
        encoded = parked_properties(delivery, reason, digest)
        properties.encode = lambda: [encoded]  # type: ignore[method-assign]  # pika frames these bytes as they are
        try:
            with self._pika_call(queue, "publishing an oversize copy", lost):
                if self._oversize_channel is None or not self._oversize_channel.is_open:
                    self._oversize_channel = self._oversize_target(queue)
                self._oversize_channel.basic_publish("", queue, delivery.body, properties, mandatory=True)
        except BrokerRefused as exc:
            raise BatchNotCommitted(f"could not move an oversize message: {exc}") from exc
        except BatchNotCommitted as exc:
            if isinstance(exc.__cause__, pe.NackError):
                raise OversizeQueueFull(
                    f"the oversize queue {queue!r} in vhost {_vhost(self._settings)!r} refused the copy of a "
                    f"{len(delivery.body)}-byte message (nack: the queue is full, x-max-length or "
                    "x-max-length-bytes with overflow reject-publish). Nothing was lost: the batch went back "
                    "to the queue. Move the oversize queue's messages elsewhere or raise its limit"
                ) from exc
            raise

    def ack_one(self, tag: int) -> None:
        """Ack one delivery (not the ones before it) on the channel that received it."""

        def lost(exc: BaseException) -> BrokerError:
            return AckFailed(f"the ack did not reach RabbitMQ; the message stays in its queue ({exc!r})")

        try:
            with self._pika_call("", "basic.ack", lost):
                self._channel.basic_ack(tag, multiple=False)
                # basic_ack has no reply; servicing the connection surfaces a close the broker sent.
                self._connection.process_data_events(0)
        except AckFailed:
            raise
        except BrokerError as exc:
            raise lost(exc) from exc
        if not self._channel.is_open:
            raise AckFailed("channel closed before the ack was confirmed; the message stays in its queue")
        self._held = max(0, self._held - 1)

    def publish_confirmed(self, queue: str, body: bytes, properties: bytes | dict[str, Any]) -> None:
        """Publish `body` to `queue` through the default exchange, mandatory, and wait (at most the
        socket timeout) for the broker's confirm. `properties` are encoded content-header property
        bytes (amqp_codec: sent exactly as they are), or BasicProperties field values.

        Raises QueueNotFound (no such queue), BrokerAccessDenied, BrokerRefused (the broker refused
        the properties, e.g. a user_id other than the login), PublishNotConfirmed (a nack, no confirm
        in time, or the connection lost: the message may or may not be in the queue; a second
        publish of something stored is absorbed by its dedupe key).
        """
        try:
            with _deadline(self._settings.socket_timeout):
                self._publish(queue, body, properties)
        except _Overdue:
            self.close()  # the connection is mid-frame: drop it (close() bounds its own wait)
            raise PublishNotConfirmed(
                f"the publish to {queue!r} was not confirmed within {self._settings.socket_timeout:g}s"
            ) from None

    def _publish(self, queue: str, body: bytes, properties: bytes | dict[str, Any]) -> None:
        import pika
        import pika.exceptions as pe

        def lost(exc: BaseException) -> BrokerError:
            return PublishNotConfirmed(
                f"the publish to {queue!r} was not confirmed (the message may or may not be in the queue): {exc!r}"
            )

        if isinstance(properties, bytes):
            encoded = properties
            props = pika.BasicProperties()
            props.encode = lambda: [encoded]  # type: ignore[method-assign]  # pika frames these bytes as they are
        else:
            props = pika.BasicProperties(**properties)
        try:
            with self._pika_call(queue, "publishing", lost):
                if self._publish_channel is None or not self._publish_channel.is_open:
                    channel = self._connection.channel()
                    channel.queue_declare(queue, passive=True)
                    channel.confirm_delivery()
                    self._publish_channel = channel
                self._publish_channel.basic_publish("", queue, body, props, mandatory=True)
        except PublishNotConfirmed as exc:
            if isinstance(exc.__cause__, pe.UnroutableError):
                raise QueueNotFound(f"queue {queue!r} in vhost {_vhost(self._settings)!r} does not exist") from exc
            if isinstance(exc.__cause__, pe.NackError):
                raise PublishNotConfirmed(
                    f"RabbitMQ refused the publish to {queue!r} (nack: is the queue full?)"
                ) from exc
            raise

    def close(self) -> None:
        """Close the connection, waiting at most the connect timeout for the broker's reply (a
        broker that stopped answering would otherwise hold the exit); the broker requeues anything
        still unacked, at the latest when the process exit drops the socket."""
        if self._abandoned:
            return
        try:
            with _deadline(self._settings.connect_timeout):
                if self._connection.is_open:
                    self._connection.close()
                    self._held = 0  # Close-Ok: the broker has requeued whatever was unacked
        except _Overdue:
            self._abandoned = True  # half closed: a second close would wait for the same reply
            log.warning("broker close timed out; the process exit drops the socket", extra={"event": "close_timeout"})
        except _lost_errors():
            pass  # closing a broken connection: the broker already dropped it


# Delivery properties a copy must not keep as they are: a per-message TTL would let the broker drop
# the only copy, a user_id must match the drainer's login or the broker refuses the publish.
_MOVED_TO_HEADERS = (("expiration", "x-original-expiration"), ("user_id", "x-original-user-id"))


def parked_properties(delivery: Delivery, reason: str, digest: str) -> bytes:
    """The property bytes of an oversize copy: the received ones re-encoded byte-exact (every
    header keeps its field type), expiration and user_id moved to headers, persistent, plus
    `x-drainer-*` and `x-original-*` headers. Properties that could not be decoded travel as
    `x-drainer-raw-properties` (base64 of the received bytes)."""
    import base64

    added: dict[str, str | bytes] = {
        "x-drainer-reason": reason,
        "x-drainer-sha256": digest,
        "x-original-exchange": delivery.exchange,
        "x-original-routing-key": delivery.routing_key,
    }
    if not delivery.raw_properties:
        return amqp_codec.encode_properties({"headers": added, "delivery_mode": 2})
    if delivery.properties_error is None:
        try:
            return amqp_codec.reencode_properties(delivery.raw_properties, added, _MOVED_TO_HEADERS)
        except amqp_codec.FieldDecodeError:
            pass  # not what was decoded at fetch time; keep the bytes as a header instead
    added["x-drainer-raw-properties"] = base64.b64encode(delivery.raw_properties).decode("ascii")
    return amqp_codec.encode_properties({"headers": added, "delivery_mode": 2})
