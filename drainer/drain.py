"""The use case: fetch a batch, decode, store it in one transaction, ack after commit; repeat."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from drainer import defaults, envelope, history
from drainer.broker import Broker
from drainer.config import Settings
from drainer.db import batch as batches
from drainer.db import history as db_history
from drainer.db import lease as leases
from drainer.db import runs
from drainer.db.batch import BatchHooks, WriteResult, Written
from drainer.db.engine import Store
from drainer.db.lease import Lease
from drainer.errors import BatchNotCommitted, BrokerError, BrokerUnavailable, Interrupted
from drainer.holder import holder_id, holder_is_dead
from drainer.model import Delivery, Event, Rejection, utcnow
from drainer.signals import StopFlag, StopNow

if TYPE_CHECKING:
    from sqlalchemy import Connection

log = logging.getLogger(__name__)

# Room for SQL escaping (a quote becomes two bytes) and the rest of the row within one packet.
_PACKET_SHARE = 0.45


@dataclass
class Progress:
    """Counters of a run so far; the CLI reports them even when the run ends in an error."""

    queue: str = ""
    fetched: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    history_applied: int = 0  # with --history vitrage: notifications applied to Vitrage's tables
    history_not_applied: int = 0  # ... and those that could not be (reason in a record each)
    oversize: int = 0
    acked: int = 0
    batches: int = 0
    returned: int = 0
    queue_remaining: int | None = None
    first_id: int | None = None
    last_id: int | None = None
    lease_holder: str | None = None
    rejected_pending: int | None = None  # rejected rows not republished yet, read at the end for the metrics
    started: float = field(default_factory=time.monotonic)

    def as_record(self) -> dict[str, object]:
        record = asdict(self)
        record.pop("started")
        record["duration_s"] = round(time.monotonic() - self.started, 3)
        return record


@dataclass(frozen=True)
class Batch:
    """One batch, decoded: events in queue order (duplicates removed) and rejections."""

    deliveries: list[Delivery]
    events: list[Event]
    rejections: list[Rejection]
    in_batch_duplicates: int
    oversize: list[Delivery]
    origin: dict[str, Delivery]  # event message_id -> its delivery, to set a refused row aside
    # Every event as delivered, in-batch repeats included: a notification whose first copy could
    # not be applied to the history (its alarm came later in the batch) is tried at its repeat.
    sequence: list[Event]
    row_sizes: dict[int, int] = field(default_factory=dict)  # tag -> row bytes, when the row (not the body) is over
    # tag -> what decoding decided for that delivery, and why: ("event", None), ("duplicate", why),
    # ("rejected", reason), ("oversize", why). What `peek` shows; the drain does not need it.
    verdicts: dict[int, tuple[str, str | None]] = field(default_factory=dict)


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def effective_max_bytes(settings: Settings, max_packet: int | None) -> int:
    """The largest body stored as a row: the setting, capped to fit the server's packet."""
    if max_packet is None:
        return settings.max_message_bytes
    return min(settings.max_message_bytes, int(max_packet * _PACKET_SHARE))


def decode_batch(deliveries: list[Delivery], max_bytes: int, now: datetime) -> Batch:
    """Decode every delivery; keep the first of in-batch duplicates; set oversize ones apart.

    Oversize means the body, or the row it becomes (the payload is re-serialised: `1e15` grows
    to `1000000000000000.0`), is larger than `max_bytes`. A message id seen twice with different
    content is a different message: the second is set aside, not counted as a duplicate.
    """
    events: list[Event] = []
    rejections: list[Rejection] = []
    oversize: list[Delivery] = []
    origin: dict[str, Delivery] = {}
    first: dict[str, Event] = {}
    rejected_keys: set[str] = set()
    sequence: list[Event] = []
    row_sizes: dict[int, int] = {}
    verdicts: dict[int, tuple[str, str | None]] = {}
    duplicates = 0
    for delivery in deliveries:
        if len(delivery.body) > max_bytes:
            oversize.append(delivery)
            verdicts[delivery.tag] = ("oversize", f"{len(delivery.body)} bytes > {max_bytes}")
            continue
        item = envelope.decode(delivery, now, max_bytes)
        if isinstance(item, Event):
            size = envelope.row_size(item)
            if size > max_bytes:
                row_sizes[delivery.tag] = size
                oversize.append(delivery)
                verdicts[delivery.tag] = ("oversize", f"a row of {size} bytes > {max_bytes}")
                continue
            seen = first.get(item.message_id)
            if seen is None or seen == item:
                sequence.append(item)
                if seen is None:
                    first[item.message_id] = item
                    origin[item.message_id] = delivery
                    events.append(item)
                    verdicts[delivery.tag] = ("event", None)
                else:
                    duplicates += 1
                    verdicts[delivery.tag] = ("duplicate", "repeats an earlier message of the batch")
                continue
            item = envelope.rejection(
                delivery, f"message_id {item.message_id!r} appears twice in the batch with different content", now
            )
        if item.dedupe_key in rejected_keys:
            duplicates += 1
            verdicts[delivery.tag] = ("duplicate", f"repeats an earlier rejected message: {item.reason}")
        else:
            rejected_keys.add(item.dedupe_key)
            rejections.append(item)
            verdicts[delivery.tag] = ("rejected", item.reason)
    return Batch(deliveries, events, rejections, duplicates, oversize, origin, sequence, row_sizes, verdicts)


class Drain:
    """One run of the drain over one queue, with its broker, store, lease and stop flag."""

    def __init__(
        self,
        settings: Settings,
        broker: Broker,
        store: Store,
        stop: StopFlag,
        progress: Progress,
        on_batch: Callable[[Progress], None] | None = None,
        run_id: str | None = None,
    ) -> None:
        self.settings = settings
        self.run_id = run_id  # the run's row in drainer_runs; None: no ledger
        self.broker = broker
        self.store = store
        self.stop = stop
        self.progress = progress
        self.on_batch = on_batch
        self.queue = settings.queue_name
        self.max_bytes = effective_max_bytes(settings, store.max_packet())
        self.history = db_history.build() if settings.history == "vitrage" else None
        self._outcomes: list[history.Outcome] = []
        self._lease_extended = time.monotonic()  # taken (for the full ttl) just before the run

    def run(self, lease: Lease | None) -> Progress:
        """Drain batches until a limit, an empty queue, the deadline or a stop; return the counts."""
        deadline = self.progress.started + self.settings.max_seconds
        limit = None if self.settings.until_empty else self.settings.max_batches
        while limit is None or self.progress.batches < limit:
            if self.stop.requested and self.progress.batches == 0:
                raise Interrupted(f"stopped by {self.stop.signal_name} before the first batch; nothing was fetched")
            if self.stop.requested or time.monotonic() >= deadline:
                break
            if lease is not None and time.monotonic() - self._lease_extended > defaults.LEASE_MARGIN:
                # The lease must outlive the batch about to be held. Each commit's fence extends it
                # by the full ttl, so back-to-back batches need no extra round trip.
                leases.renew(self.store, lease)
                self._lease_extended = time.monotonic()
            try:
                deliveries, remaining = self.broker.fetch_batch(
                    self.queue,
                    self.settings.batch_size,
                    self.settings.max_batch_bytes,
                    defaults.FETCH_SECONDS,
                    self.stop,
                )
            except BrokerError as exc:  # what was fetched before the failure goes back to the queue
                self.progress.fetched += exc.unacked
                self.progress.returned += exc.unacked
                raise
            if remaining is not None:
                self.progress.queue_remaining = remaining
            if not deliveries:
                break
            self._store_and_ack(deliveries, lease)
            if self.on_batch is not None:
                self.on_batch(self.progress)
            if remaining == 0:
                break
        return self.progress

    def _store_and_ack(self, deliveries: list[Delivery], lease: Lease | None) -> None:
        p = self.progress
        p.fetched += len(deliveries)
        self._outcomes = []
        try:
            batch = decode_batch(deliveries, self.max_bytes, utcnow())
            parked = self._park_oversize(batch.oversize, batch.row_sizes)
            hooks = BatchHooks(
                keepalive=self.broker.keepalive,
                before_commit=self._still_ackable,
                interruptible=self.stop.interruptible,
                refuse=lambda event, reason: envelope.rejection(batch.origin[event.message_id], reason, utcnow()),
                in_transaction=self._in_transaction(batch, parked),
            )
            writing = time.monotonic()  # the commit's fence extends the lease from about now
            result = batches.write_batch(
                self.store, self.queue, batch.events, [*batch.rejections, *parked], lease, hooks
            )
        except StopNow as exc:
            self._return(deliveries)
            raise Interrupted(f"stopped by {exc} before the batch was committed") from None
        except BaseException:
            self._return(deliveries)
            raise
        self._lease_extended = writing
        self._count(batch, result)
        self._count_history()
        self.broker.ack_through(deliveries[-1].tag)
        p.acked += len(deliveries)
        self._log_batch(batch, result)

    def _in_transaction(self, batch: Batch, parked: list[Rejection]) -> Callable[[Connection, Written], None] | None:
        """The writes that commit with the batch or not at all: the alarm-history projection (with
        --history vitrage), then the batch's update of its run's row in the ledger."""
        run_id = self.run_id
        if self.history is None and run_id is None:
            return None

        def write(conn: Connection, written: Written) -> None:
            if self.history is not None:
                self._project_history(conn, written, batch.sequence)
            if run_id is not None:
                runs.record_batch(self.store, conn, run_id, self._ledger_counts(batch, parked, written.result))

        return write

    @staticmethod
    def _ledger_counts(batch: Batch, parked: list[Rejection], result: WriteResult) -> runs.BatchCounts:
        """What the batch adds to its run's row: the same figures the run summary adds up."""
        return runs.BatchCounts(
            fetched=len(batch.deliveries),
            stored=result.stored,
            duplicates=result.duplicates + batch.in_batch_duplicates + len(batch.oversize) - len(parked),
            rejected=result.rejected,
            oversize=len(parked),
            first_id=result.first_id,
            last_id=result.last_id,
        )

    def _still_ackable(self) -> None:
        try:
            self.broker.ensure_open()
        except BrokerUnavailable as exc:
            # The broker already requeued the deliveries; committing would only make duplicates.
            raise BatchNotCommitted(f"batch not committed: {exc}") from exc

    def _park_oversize(self, oversize: list[Delivery], row_sizes: dict[int, int]) -> list[Rejection]:
        parked: list[Rejection] = []
        keys: set[str] = set()
        target = self.settings.oversize_queue_name
        for delivery in oversize:
            size = row_sizes.get(delivery.tag)
            what = f"its row would be {size} bytes" if size else f"{len(delivery.body)} bytes"
            reason = f"oversize: {what} > {self.max_bytes}; moved byte-exact to queue {target!r}"
            record = envelope.rejection(delivery, reason, utcnow(), keep_body=False)
            if record.dedupe_key in keys:  # the same message twice in this batch: one copy is enough
                self.progress.duplicates += 1
                continue
            keys.add(record.dedupe_key)
            with self.stop.interruptible():
                self.broker.park_oversize(target, delivery, reason, record.body_sha256)
            parked.append(record)
            log.warning(
                "oversize message moved to its queue",
                extra={"event": "oversize", "bytes": len(delivery.body), "target_queue": target},
            )
        self.progress.oversize += len(parked)
        return parked

    def _return(self, deliveries: list[Delivery]) -> None:
        self.broker.return_unacked()
        self.progress.returned += len(deliveries)
        if self.progress.queue_remaining is not None:  # they are in the queue again
            self.progress.queue_remaining += len(deliveries)

    def _count(self, batch: Batch, result: WriteResult) -> None:
        p = self.progress
        p.batches += 1
        p.stored += result.stored
        p.duplicates += result.duplicates + batch.in_batch_duplicates
        p.rejected += result.rejected
        if result.first_id is not None and p.first_id is None:
            p.first_id = result.first_id
        if result.last_id is not None:
            p.last_id = result.last_id

    def _project_history(self, conn: Connection, written: Written, sequence: Sequence[Event]) -> None:
        """Inside the batch's transaction: apply the alarm-history notifications stored now to
        Vitrage's tables, in queue order. A redelivery is applied only if no earlier copy could be
        (a change that came before its alarm's activation): never twice."""
        assert self.history is not None
        candidates = [e for e in sequence if e.event_type in history.TYPES]
        if not candidates:
            self._outcomes = []
            return
        earlier = {e.message_id for e in candidates} - written.stored_keys - written.refused_keys
        retry_keys = db_history.not_applied(conn, self.history, sorted(earlier)) if earlier else set()
        notifications = [
            n
            for e in candidates
            if (e.message_id in written.stored_keys or e.message_id in retry_keys)
            and (n := history.Notification.from_stored(e.message_id, e.event_type, e.payload)) is not None
        ]
        now = utcnow()
        outcomes = db_history.apply(conn, self.history, notifications, now)
        db_history.record(conn, self.history, outcomes, now, existing=retry_keys)
        self._outcomes = outcomes  # of this attempt; a retried attempt replaces them

    def _count_history(self) -> None:
        applied, not_applied = history.report(self._outcomes)
        self.progress.history_applied += applied
        self.progress.history_not_applied += not_applied
        self._outcomes = []

    def _log_batch(self, batch: Batch, result: WriteResult) -> None:
        log.info(
            "batch committed and acked",
            extra={
                "event": "batch",
                "queue": self.queue,
                "batch": self.progress.batches,
                "fetched": len(batch.deliveries),
                "stored": result.stored,
                "duplicates": result.duplicates + batch.in_batch_duplicates,
                "rejected": result.rejected,
                "set_aside": result.set_aside,
                "queue_remaining": self.progress.queue_remaining,
            },
        )
        for rejection in batch.rejections:
            log.warning(
                "message rejected",
                extra={"event": "rejected", "reason": rejection.reason, "bytes": rejection.body_size},
            )


# Maps how a run ended (None: it returned) to its exit code and stable error name; the CLI owns it.
Outcome = Callable[[BaseException | None], tuple[int, str | None]]


def drain(
    settings: Settings,
    run_id: str,
    stop: StopFlag,
    progress: Progress,
    on_batch: Callable[[Progress], None] | None = None,
    outcome: Outcome | None = None,
) -> Progress:
    """A whole run: open the store, record the run in the ledger, connect to the broker, take the
    queue's lease, drain, tear down, record how the run ended (when `outcome` is given)."""
    from drainer import schema

    db_url = settings.require_db_url()
    try:
        with stop.interruptible():  # a signal while connecting: nothing is held yet, stop at once
            store = Store.open(db_url, settings)
    except StopNow as exc:
        raise Interrupted(f"stopped by {exc} while connecting; nothing was fetched") from None
    broker: Broker | None = None
    lease: Lease | None = None
    recorded = False
    failure: BaseException | None = None
    try:
        with stop.interruptible():
            schema.check(store, settings.history)
            runs.start(store, run_id, holder_id(run_id), settings.queue_name)
            recorded = True
            broker = Broker.connect(settings)
            # The queue must exist before its lease row is made: a typo leaves nothing behind.
            broker.depth(settings.queue_name)
            lease = Lease(settings.queue_name, holder_id(run_id), lease_ttl(settings))
            held = leases.acquire(store, lease.name, lease.holder, lease.ttl_s, holder_is_dead)
        if held is not None:
            lease = None
            progress.lease_holder = held.holder
            log.info(
                "another drainer holds this queue's lease; nothing to do",
                extra={
                    "event": "lease_held",
                    "queue": settings.queue_name,
                    "holder": held.holder,
                    "expires_at": held.expires_at.isoformat() if held.expires_at else None,
                },
            )
            return progress
        return Drain(settings, broker, store, stop, progress, on_batch, run_id).run(lease)
    except StopNow as exc:
        # Not a success: the run did none of its work (a monitoring probe must see that).
        failure = Interrupted(f"stopped by {exc} before fetching; nothing was fetched")
        raise failure from None
    except BaseException as exc:
        failure = exc
        raise
    finally:
        if lease is not None and (broker is None or not broker.deliveries_in_doubt):
            # Released before the close, as always: the DB round trip also gives a quorum queue
            # time to settle the last ack (RabbitMQ 3.10 requeues acks not yet settled at close).
            leases.release(store, lease)
            lease = None
        if broker is not None:
            broker.close()
        if lease is not None:
            give_up_lease(store, lease, broker, settings)
        if recorded:
            _end_of_run(store, run_id, progress, failure, outcome)
        store.dispose()


def give_up_lease(store: Store, lease: Lease, broker: Broker | None, settings: Settings) -> None:
    """Release the lease, unless the broker may still hold this run's deliveries on a connection
    that died silently: then keep it until the broker must have noticed (`broker_grace`)."""
    in_doubt = broker.deliveries_in_doubt if broker is not None else 0
    if not in_doubt:
        leases.release(store, lease)
        return
    grace = broker_grace(settings)
    leases.keep(store, lease, grace)
    log.warning(
        "the broker connection ended without a clean close while messages were out: the lease is kept so "
        "that no run fetches past them before RabbitMQ requeues them",
        extra={"event": "lease_kept", "queue": lease.name, "in_doubt": in_doubt, "seconds": grace},
    )


def _database_failed(exc: BaseException | None) -> bool:
    """True when the run ended because the database failed: another write could hang for a whole
    socket timeout past the run's deadline, so the ledger keeps "no end recorded" instead."""
    from sqlalchemy.exc import DBAPIError

    from drainer.errors import DatabaseError

    return isinstance(exc, DatabaseError) or isinstance(getattr(exc, "__cause__", None), DBAPIError)


def _end_of_run(
    store: Store, run_id: str, progress: Progress, failure: BaseException | None, outcome: Outcome | None
) -> None:
    if _database_failed(failure):
        return
    if outcome is not None:
        code, error = outcome(failure)
        runs.finish(store, run_id, code, error, progress.lease_holder)
    if not (store.settings.metrics_file or store.settings.pushgateway):
        return  # only the metrics show it: every cron tick pays for start-up
    from drainer.db import rejected
    from drainer.errors import DrainerError

    try:
        progress.rejected_pending = rejected.pending_count(store)
    except DrainerError as exc:  # a gauge, never a reason to fail the run
        log.warning("could not count pending rejections", extra={"event": "count_failed", "cause": str(exc)})


def lease_ttl(settings: Settings) -> float:
    """How far each renewal extends the lease, in seconds: past the worst case of one batch (the
    fetch, the retry budget, which starts no attempt it cannot end, and a last slow statement and
    commit), so a live run never loses it while holding messages; every commit, every retry and
    any batch that starts more than LEASE_MARGIN after the last of those renew it. Plus the
    broker's own delay (`broker_grace`): a holder that froze (a paused VM, SIGSTOP, a host cut
    off) keeps its deliveries on the broker until the broker notices, and a run that took the
    lease before would store the messages behind them first. A killed run's lease lapses this
    long after its last renewal (on the same host it is taken over at once)."""
    return settings.retry_seconds + 2 * settings.socket_timeout + broker_grace(settings)


def broker_grace(settings: Settings) -> float:
    """How long RabbitMQ may take to requeue the deliveries of a connection that died without a
    close, in seconds: it closes a peer after two missed heartbeats (rabbitmq.com/heartbeats),
    so two heartbeat intervals and the lease margin."""
    return 2 * settings.heartbeat + defaults.LEASE_MARGIN
