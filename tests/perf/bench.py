"""Benchmark the drainer against the real RabbitMQ and MariaDB on loopback: a script, not a test.

    python -m tests.perf.bench            # from the repository root: full run, a few minutes
    python -m tests.perf.bench --quick    # smoke run, under a minute
    python -m tests.perf.bench --json     # the figures as JSON on stdout (the table goes to stderr)

Every side of every figure is one whole process, timed from its start to its exit by the same
code (interpreter start-up, imports, connecting, the work, exit), its peak RSS read by GNU time;
the references live in tests/perf/references.py. Runs alternate A B A B; medians are reported
(these machines are noisy: the ratios count).
1. throughput: `python -m drainer drain --until-empty` vs a raw pika basic_get loop (pika only:
   connect, basic_get each message, one multiple ack, exit; no decoding, no database);
2. the drainer vs Vitrage's 2017 persistor design (oslo.messaging listener, one ORM commit per
   event), also given in-process (listener start to last commit, no start-up) beside it;
3. start-up: a run against an empty queue vs bare imports of the drainer's dependencies;
4. memory: peak RSS of one batch of instance snapshots vs a raw basic_get process that holds the
   same batch's bodies with the drainer's imports loaded (measured in the same run);
5. scaling: throughput by batch size, and the default it recommends;
6. Galera (when the test cluster is up, `python -m tests.cluster.clusters up galera`): throughput
   through a Galera node vs the single MariaDB, and the lease's cost there (taking and releasing it
   once per run; fencing each batch transaction), each against the same step without it.
7. the run ledger: the drain as it is vs the same drain with the ledger's per-batch UPDATE stubbed
   out (a child process that replaces drainer.db.runs.record_batch), at batch 1000 and batch 10.

Services come from DRAINER_TEST_AMQP_URL and DRAINER_TEST_MYSQL_URL (the tests' local defaults).
Each run creates its own database and queues and removes them at the end. Peak RSS needs GNU time
(/usr/bin/time); without it the memory figure reads "not measured".
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from tests.conftest import AMQP_URL, FIXTURES, MYSQL_URL, ROOT, fixture_payloads, oslo_v2

MIB = 1024 * 1024
BARE_IMPORTS = "import sqlalchemy, pika, pymysql, tenacity, pythonjsonlogger"
REFERENCES = [sys.executable, "-m", "tests.perf.references"]
MEMORY_FIXTURE = "driver_inst_snapshot_dynamic.json"
GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None
THROUGHPUT_BATCH = 1000
DRAINER = (sys.executable, "-m", "drainer")
# The reference of figure 6: the same command line, the ledger's in-transaction update a no-op.
NO_LEDGER = (
    sys.executable,
    "-c",
    "import sys, drainer.db.runs as r; r.record_batch = lambda *a, **k: None; "
    "from drainer.cli import main; sys.exit(main())",
)

# The targets, as ratios from one run on this machine.
TARGET_THROUGHPUT = 0.85  # drainer / raw basic_get loop (raw time / drainer time), at least
TARGET_VS_BASELINE = 12.0  # drainer msg/s / per-event-commit persistor msg/s, at least
TARGET_STARTUP = 1.5  # empty-queue run / bare imports, at most
TARGET_RSS_SLOPE, TARGET_RSS_MIB = 2.0, 60.0  # peak RSS <= 2 x batch bytes + 60 MiB (README sizing)

# A batch size counts as amortised once its net throughput is within this share of the best one.
AMORTISED_SHARE = 0.9


@dataclass(frozen=True)
class Plan:
    """How many messages and repetitions each figure uses."""

    messages: int = 20_000
    reps: int = 3
    baseline_messages: int = 2_000
    startup_reps: int = 7
    memory_messages: int = 10_000
    memory_reps: int = 3
    scaling: tuple[tuple[int, int], ...] = ((1, 1_000), (10, 2_000), (100, 20_000), (1_000, 20_000), (10_000, 20_000))
    scaling_reps: int = 3
    ledger: tuple[tuple[int, int], ...] = ((1_000, 20_000), (10, 5_000))
    ledger_reps: int = 3
    ledger_batches: int = 100  # in-process write_batch pairs (with, without the ledger hook)
    galera_messages: int = 20_000
    galera_reps: int = 3
    lease_cycles: int = 30  # acquire + release, and fenced vs unfenced batches, per database

    @classmethod
    def quick(cls) -> Plan:
        return cls(
            messages=2_000,
            reps=1,
            baseline_messages=300,
            startup_reps=3,
            memory_messages=2_000,
            memory_reps=1,
            scaling=((1, 100), (10, 300), (100, 2_000), (1_000, 2_000), (10_000, 2_000)),
            scaling_reps=1,
            ledger=((1_000, 4_000), (10, 1_000)),
            ledger_reps=3,
            ledger_batches=30,
            galera_messages=2_000,
            galera_reps=1,
            lease_cycles=5,
        )


@dataclass(frozen=True)
class ProcessRun:
    """One timed child process: wall time, peak RSS (None without GNU time), the drain summary or
    the JSON a reference printed."""

    seconds: float
    max_rss_kib: int | None
    summary: dict[str, Any] = field(default_factory=dict)


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def median_seconds(runs: Sequence[ProcessRun]) -> float:
    return median([r.seconds for r in runs])


def peak_mib(runs: Sequence[ProcessRun]) -> float | None:
    """Median peak RSS of the runs in MiB, or None when it was not measured."""
    values = [r.max_rss_kib for r in runs if r.max_rss_kib is not None]
    return round(median(values) / 1024, 1) if values else None


# -- messages -------------------------------------------------------------------------------------


def sample_payloads() -> list[dict[str, Any]]:
    return list(fixture_payloads().values())


def envelopes(payloads: Sequence[dict[str, Any]], count: int) -> list[bytes]:
    """`count` oslo v2 bodies cycling through `payloads`, each with its own oslo message_id."""
    return [oslo_v2(payloads[i % len(payloads)], message_id=str(uuid.uuid4())) for i in range(count)]


# -- services -------------------------------------------------------------------------------------


def _mysql_server() -> dict[str, Any]:
    parts = urlsplit(MYSQL_URL.replace("mysql+pymysql", "mysql"))
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 3306,
        "user": parts.username or "root",
        "password": parts.password or "",
    }


def child_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("DRAINER_")}


@dataclass
class Services:
    """This run's database, queue and oslo topic on the loopback services; removed by close()."""

    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:10])

    @property
    def database(self) -> str:
        return f"drainer_bench_{self.tag}"

    @property
    def db_url(self) -> str:
        return f"{MYSQL_URL}/{self.database}"

    @property
    def queue(self) -> str:
        return f"drainer-bench-{self.tag}.info"

    @property
    def oslo_topic(self) -> str:
        return f"drainer_bench_{self.tag}"

    def sql(self, *statements: str, database: str | None = None) -> list[tuple[Any, ...]]:
        """Run statements on the server (autocommit); the rows of the last one."""
        import pymysql

        conn = pymysql.connect(**_mysql_server(), database=database, autocommit=True)
        try:
            rows: list[tuple[Any, ...]] = []
            with conn.cursor() as cur:
                for statement in statements:
                    cur.execute(statement)
                    rows = list(cur.fetchall())
            return rows
        finally:
            conn.close()

    def amqp(self) -> Any:
        import pika

        return pika.BlockingConnection(pika.URLParameters(AMQP_URL))

    def open(self) -> None:
        self.sql(f"CREATE DATABASE {self.database} CHARACTER SET utf8mb4")
        migrate = subprocess.run(
            [sys.executable, "-m", "drainer", "migrate", "--db-url", self.db_url],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=child_env(),
        )
        if migrate.returncode != 0:
            raise RuntimeError(f"migrate failed ({migrate.returncode}):\n{migrate.stderr}")
        conn = self.amqp()
        try:
            conn.channel().queue_declare(self.queue, durable=True)
        finally:
            conn.close()

    def close(self) -> None:
        conn = self.amqp()
        try:
            channel = conn.channel()
            for queue in (self.queue, self.queue + ".oversize", self.oslo_topic + ".info"):
                channel.queue_delete(queue)
            channel.exchange_delete(self.oslo_topic)  # the baseline's control exchange
        finally:
            conn.close()
        self.sql(f"DROP DATABASE IF EXISTS {self.database}")

    def empty_tables(self, *tables: str) -> None:
        """Start every timed run from the same empty tables (untimed)."""
        self.sql(*(f"TRUNCATE TABLE {t}" for t in tables), database=self.database)

    def publish(self, bodies: Sequence[bytes], queue: str | None = None) -> None:
        """Put `bodies` on the queue (untimed) and wait until the broker counts all of them."""
        import pika

        queue = queue or self.queue
        props = pika.BasicProperties(content_type="application/json", delivery_mode=2)
        conn = self.amqp()
        try:
            channel = conn.channel()
            expected = channel.queue_declare(queue, passive=True).method.message_count + len(bodies)
            for body in bodies:
                channel.basic_publish("", queue, body, props)
            deadline = time.monotonic() + 120
            while channel.queue_declare(queue, passive=True).method.message_count < expected:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the broker did not count {len(bodies)} messages on {queue}")
                time.sleep(0.05)
        finally:
            conn.close()

    def depth(self) -> int:
        conn = self.amqp()
        try:
            return int(conn.channel().queue_declare(self.queue, passive=True).method.message_count)
        finally:
            conn.close()


@contextmanager
def services() -> Iterator[Services]:
    s = Services()
    s.open()
    try:
        yield s
    finally:
        s.close()


# -- the processes timed --------------------------------------------------------------------------


def timed_process(argv: Sequence[str]) -> tuple[float, int | None, int, bytes, bytes]:
    """Run a child to completion: (wall seconds, its peak RSS in KiB, exit code, stderr, stdout).

    The peak comes from GNU time, whose own footprint is ~2 MiB: a child's ru_maxrss as seen by
    wait4() would include the pre-exec copy of this (large) benchmark process, since Linux keeps
    the high-water mark of the address space that exec replaces."""
    with tempfile.TemporaryFile() as err, tempfile.TemporaryFile() as out, tempfile.NamedTemporaryFile("r") as rss:
        prefix = [GNU_TIME, "--format=%M", f"--output={rss.name}"] if GNU_TIME else []
        start = time.perf_counter()
        # Output to files, not pipes: a long log must not block the child.
        proc = subprocess.run([*prefix, *argv], stdout=out, stderr=err, cwd=ROOT, env=child_env())
        seconds = time.perf_counter() - start
        err.seek(0)
        out.seek(0)
        words = rss.read().split()
        max_rss = int(words[-1]) if GNU_TIME and words and words[-1].isdigit() else None
        return seconds, max_rss, proc.returncode, err.read(), out.read()


def summary_record(stderr: bytes) -> dict[str, Any]:
    for line in reversed(stderr.decode("utf-8", "replace").splitlines()):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("event") == "summary":
            return record
    return {}


def run_drainer(
    s: Services,
    batch_size: int,
    *,
    expect: int,
    until_empty: bool = True,
    db_url: str | None = None,
    command: Sequence[str] = DRAINER,
) -> ProcessRun:
    """`python -m drainer drain ...` as a subprocess; checks that it stored exactly `expect` events."""
    argv = [*command, "drain", "--db-url", db_url or s.db_url, "--amqp-url", AMQP_URL]
    argv += ["--queue", s.queue, "--batch-size", str(batch_size), "--max-seconds", "3600"]
    argv += ["--until-empty"] if until_empty else ["--max-batches", "1"]
    seconds, rss, code, stderr, _ = timed_process(argv)
    summary = summary_record(stderr)
    if code != 0 or summary.get("stored") != expect:
        tail = stderr.decode("utf-8", "replace")[-2000:]
        raise RuntimeError(f"drainer exited {code}, stored {summary.get('stored')} of {expect}:\n{tail}")
    return ProcessRun(seconds, rss, summary)


def run_reference(*args: str) -> ProcessRun:
    """A reference of tests/perf/references.py as a timed child; its JSON line is the summary."""
    seconds, rss, code, stderr, stdout = timed_process([*REFERENCES, *args])
    if code != 0:
        raise RuntimeError(f"reference {args[0]} exited {code}: {stderr.decode('utf-8', 'replace')[-2000:]}")
    return ProcessRun(seconds, rss, json.loads(stdout.decode().strip().splitlines()[-1]))


def run_bare_imports() -> ProcessRun:
    seconds, rss, code, stderr, _ = timed_process([sys.executable, "-c", BARE_IMPORTS])
    if code != 0:
        raise RuntimeError(f"bare imports failed: {stderr.decode('utf-8', 'replace')}")
    return ProcessRun(seconds, rss)


def raw_basic_get(s: Services, count: int, hold: bool = False) -> ProcessRun:
    """The ceiling as a whole process: pika only, basic_get `count` times, one multiple ack, exit.
    With `hold`, the bodies are kept and the drainer's libraries imported (the memory reference)."""
    return run_reference("raw-get", AMQP_URL, s.queue, str(count), *(["--hold", "--drainer-imports"] if hold else []))


# -- Vitrage's 2017 persistor: oslo.messaging notification listener, one ORM commit per event -----


class PersistorBaseline:
    """Vitrage's first persistor (tests/perf/references.py `persistor`), one process per run:
    timed whole, like the drainer, and also from listener start to the last commit (in-process)."""

    def __init__(self, s: Services) -> None:
        self.s = s
        self.queue = s.oslo_topic + ".info"
        run_reference("persistor", AMQP_URL, s.db_url, s.oslo_topic, "0")  # declares its queue and table

    def run(self, count: int) -> ProcessRun:
        run = run_reference("persistor", AMQP_URL, self.s.db_url, self.s.oslo_topic, str(count))
        if run.summary.get("stored") != count:
            raise RuntimeError(f"baseline stored {run.summary.get('stored')} of {count}")
        return run


# -- figures --------------------------------------------------------------------------------------


def alternate(reps: int, *steps: Callable[[], None]) -> None:
    """Run the steps A B C, A B C, ... so that a noisy machine's drifts fall on every side."""
    for rep in range(reps):
        for step in steps:
            step()
        say(f"  repetition {rep + 1}/{reps} done")


def figure_throughput(s: Services, plan: Plan, payloads: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Figures 1 and 2: raw basic_get, the drainer and the per-event-commit persistor, alternated."""
    n, nb = plan.messages, plan.baseline_messages
    drainer_runs: list[ProcessRun] = []
    raw_runs: list[ProcessRun] = []
    baseline_runs: list[ProcessRun] = []
    baseline = PersistorBaseline(s)

    def raw() -> None:
        s.publish(envelopes(payloads, n))
        raw_runs.append(raw_basic_get(s, n))

    def drainer() -> None:
        s.empty_tables("drainer_events", "drainer_rejected_messages")
        s.publish(envelopes(payloads, n))
        drainer_runs.append(run_drainer(s, THROUGHPUT_BATCH, expect=n))

    def persistor() -> None:
        s.empty_tables("persistor_events")
        s.publish(envelopes(payloads, nb), queue=baseline.queue)
        baseline_runs.append(baseline.run(nb))

    alternate(plan.reps, raw, drainer, persistor)
    drainer_m, raw_m, base_m = median_seconds(drainer_runs), median_seconds(raw_runs), median_seconds(baseline_runs)
    base_listener_m = median([r.summary["listener_s"] for r in baseline_runs])
    throughput = {
        "messages": n,
        "batch_size": THROUGHPUT_BATCH,
        "timed": "whole process, both sides",
        "drainer_s": [round(r.seconds, 3) for r in drainer_runs],
        "raw_s": [round(r.seconds, 3) for r in raw_runs],
        "drainer_median_s": round(drainer_m, 3),
        "raw_median_s": round(raw_m, 3),
        "drainer_msgs_per_s": round(n / drainer_m),
        "raw_msgs_per_s": round(n / raw_m),
        "drainer_max_rss_mib": peak_mib(drainer_runs),
        "ratio": round(raw_m / drainer_m, 3),
        "target": TARGET_THROUGHPUT,
    }
    throughput["met"] = throughput["ratio"] >= TARGET_THROUGHPUT
    versus = {
        "baseline_messages": nb,
        "timed": "whole process, both sides; the baseline also from listener start to last commit",
        "baseline_s": [round(r.seconds, 3) for r in baseline_runs],
        "baseline_median_s": round(base_m, 3),
        "baseline_msgs_per_s": round(nb / base_m, 1),
        "baseline_listener_median_s": round(base_listener_m, 3),
        "baseline_listener_msgs_per_s": round(nb / base_listener_m, 1),
        "drainer_msgs_per_s": throughput["drainer_msgs_per_s"],
        "ratio": round((n / drainer_m) / (nb / base_m), 2),
        "ratio_vs_listener": round((n / drainer_m) / (nb / base_listener_m), 2),
        "target": TARGET_VS_BASELINE,
    }
    versus["met"] = versus["ratio"] >= TARGET_VS_BASELINE
    return {"throughput": throughput, "baseline": versus}


def figure_startup(s: Services, plan: Plan) -> dict[str, Any]:
    """Figure 3: connect, check the schema, one GetEmpty, exit; vs importing the dependencies."""
    if s.depth() != 0:
        raise RuntimeError("the bench queue is not empty before the start-up figure")
    empty: list[ProcessRun] = []
    bare: list[ProcessRun] = []
    run_drainer(s, THROUGHPUT_BATCH, expect=0)  # warm the page cache and __pycache__ on both sides
    run_bare_imports()
    alternate(
        plan.startup_reps,
        lambda: empty.append(run_drainer(s, THROUGHPUT_BATCH, expect=0)),
        lambda: bare.append(run_bare_imports()),
    )
    empty_m, bare_m = median_seconds(empty), median_seconds(bare)
    result = {
        "empty_run_s": [round(r.seconds, 3) for r in empty],
        "bare_imports_s": [round(r.seconds, 3) for r in bare],
        "empty_run_median_s": round(empty_m, 3),
        "bare_imports_median_s": round(bare_m, 3),
        "empty_run_max_rss_mib": peak_mib(empty),
        "bare_imports_max_rss_mib": peak_mib(bare),
        "ratio": round(empty_m / bare_m, 3),
        "target": TARGET_STARTUP,
    }
    result["met"] = result["ratio"] <= TARGET_STARTUP
    return result


def figure_memory(s: Services, plan: Plan) -> dict[str, Any]:
    """Figure 4: peak RSS of one batch of instance snapshots, against a raw basic_get process that
    holds the same bodies with the same libraries imported (the least any batch drainer holds)."""
    payload = json.loads((FIXTURES / MEMORY_FIXTURE).read_text())
    n = plan.memory_messages
    runs: list[ProcessRun] = []
    held: list[ProcessRun] = []
    batch_bytes = 0

    def one_batch() -> None:
        nonlocal batch_bytes
        s.empty_tables("drainer_events", "drainer_rejected_messages")
        bodies = envelopes([payload], n)
        batch_bytes = sum(len(b) for b in bodies)
        s.publish(bodies)
        runs.append(run_drainer(s, n, expect=n, until_empty=False))

    def reference() -> None:
        s.publish(envelopes([payload], n))
        held.append(raw_basic_get(s, n, hold=True))

    alternate(plan.memory_reps, one_batch, reference)
    rss, ref = peak_mib(runs), peak_mib(held)
    batch_mib = batch_bytes / MIB
    limit = TARGET_RSS_SLOPE * batch_mib + TARGET_RSS_MIB
    return {
        "messages": n,
        "fixture": MEMORY_FIXTURE,
        "mean_body_bytes": round(batch_bytes / n),
        "batch_mib": round(batch_mib, 1),
        "max_rss_mib": [None if r.max_rss_kib is None else round(r.max_rss_kib / 1024, 1) for r in runs],
        "max_rss_median_mib": rss,
        "reference_max_rss_mib": [None if r.max_rss_kib is None else round(r.max_rss_kib / 1024, 1) for r in held],
        "reference_max_rss_median_mib": ref,
        "seconds_median": round(median_seconds(runs), 3),
        "ratio": None if rss is None or ref is None else round(rss / ref, 3),
        "limit_mib": round(limit, 1),
        "met": None if rss is None else rss <= limit,
    }


def figure_scaling(s: Services, plan: Plan, payloads: Sequence[dict[str, Any]], startup_s: float) -> dict[str, Any]:
    """Figure 5: throughput by batch size, round-robin over the sizes, and the default it suggests."""
    runs: dict[int, list[ProcessRun]] = {size: [] for size, _ in plan.scaling}

    def step(size: int, count: int) -> Callable[[], None]:
        def run() -> None:
            s.empty_tables("drainer_events", "drainer_rejected_messages")
            s.publish(envelopes(payloads, count))
            runs[size].append(run_drainer(s, size, expect=count))

        return run

    alternate(plan.scaling_reps, *(step(size, count) for size, count in plan.scaling))
    rows = []
    for size, count in plan.scaling:
        seconds = median_seconds(runs[size])
        net = max(seconds - startup_s, 1e-6)
        batches = -(-count // size)
        rows.append(
            {
                "batch_size": size,
                "messages": count,
                "batches": batches,
                "median_s": round(seconds, 3),
                "msgs_per_s": round(count / seconds),
                "net_msgs_per_s": round(count / net),
                "ms_per_batch": round(1000 * net / batches, 2),
                "max_rss_mib": peak_mib(runs[size]),
            }
        )
    best = max(r["net_msgs_per_s"] for r in rows)
    recommended = min(r["batch_size"] for r in rows if r["net_msgs_per_s"] >= AMORTISED_SHARE * best)
    return {"startup_s": round(startup_s, 3), "rows": rows, "recommended_batch_size": recommended}


# -- 6: Galera --------------------------------------------------------------------------------------


@dataclass
class GaleraTarget:
    """This run's database on the test Galera cluster, written through node 1; dropped by close()."""

    name: str

    @property
    def url(self) -> str:
        from tests.cluster import clusters

        return clusters.galera_node(1).url(self.name)

    def sql(self, *statements: str, database: str | None = None) -> None:
        import pymysql

        from tests.cluster import clusters

        node = clusters.galera_node(1)
        conn = pymysql.connect(host=node.ip, port=node.port, user="root", database=database, autocommit=True)
        try:
            with conn.cursor() as cur:
                for statement in statements:
                    cur.execute(statement)
        finally:
            conn.close()

    def empty_tables(self, *tables: str) -> None:
        self.sql(*(f"TRUNCATE TABLE {t}" for t in tables), database=self.name)


@contextmanager
def galera_target(tag: str) -> Iterator[GaleraTarget | None]:
    """A migrated database on the cluster, or None when the cluster is not up."""
    from tests.cluster import clusters

    if not clusters.galera_is_up():
        yield None
        return
    target = GaleraTarget(f"drainer_bench_{tag}")
    target.sql(f"CREATE DATABASE {target.name} CHARACTER SET utf8mb4")
    try:
        migrate = subprocess.run(
            [sys.executable, "-m", "drainer", "migrate", "--db-url", target.url],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=child_env(),
        )
        if migrate.returncode != 0:
            raise RuntimeError(f"migrate on Galera failed ({migrate.returncode}):\n{migrate.stderr}")
        yield target
    finally:
        target.sql(f"DROP DATABASE IF EXISTS {target.name}")


def _bench_events(payloads: Sequence[dict[str, Any]], count: int) -> list[Any]:
    from drainer.model import Event, utcnow

    now = utcnow()
    return [
        Event(str(uuid.uuid4()), now, "nova.instance", "datasources.events", "INFO", None, None, None, json.dumps(p))
        for p in (payloads[i % len(payloads)] for i in range(count))
    ]


def _fence_statements_ms(store: Any, lease: Any) -> float:
    """What a batch transaction spends on its lease: the fence at its start and before COMMIT (the
    lease row then rides in the batch's own write set: no extra commit, no extra certification)."""
    from drainer.db import lease as leases

    with store.writer.connect() as conn:
        start = time.perf_counter()
        transaction = conn.begin()
        leases.fence(store, conn, lease)
        leases.fence(store, conn, lease)
        transaction.rollback()
        return 1000 * (time.perf_counter() - start)


def lease_costs(db_url: str, plan: Plan, payloads: Sequence[dict[str, Any]]) -> dict[str, float]:
    """In-process, through the drainer's own db package: the lease's fixed cost per run (take it,
    give it back: three short transactions) and its cost per batch (the fence's own statements; and a
    batch of THROUGHPUT_BATCH events written with the fence vs without it), medians in milliseconds."""
    from drainer.config import Settings
    from drainer.db import lease as leases
    from drainer.db.batch import BatchHooks, write_batch
    from drainer.db.engine import Store

    store = Store.open(db_url, Settings(db_url=db_url))
    try:
        name = f"bench-lease-{uuid.uuid4().hex[:8]}"
        cycle_ms: list[float] = []
        fence_ms: list[float] = []
        fenced_ms: list[float] = []
        bare_ms: list[float] = []
        for i in range(plan.lease_cycles):
            lease = leases.Lease(name, f"bench:{i}", 60.0)
            start = time.perf_counter()
            if leases.acquire(store, lease.name, lease.holder, lease.ttl_s) is not None:
                raise RuntimeError("the bench lease is held by someone else")
            leases.release(store, lease)
            cycle_ms.append(1000 * (time.perf_counter() - start))
            if leases.acquire(store, lease.name, lease.holder, lease.ttl_s) is not None:
                raise RuntimeError("the bench lease is held by someone else")
            fence_ms.append(_fence_statements_ms(store, lease))
            steps = ((lease, fenced_ms), (None, bare_ms))
            for fenced, into in steps if i % 2 == 0 else reversed(steps):  # A B, B A: drifts fall on both
                events = _bench_events(payloads, THROUGHPUT_BATCH)
                start = time.perf_counter()
                write_batch(store, name, events, [], fenced, BatchHooks())
                into.append(1000 * (time.perf_counter() - start))
            leases.release(store, lease)
        return {
            "take_and_release_ms": round(median(cycle_ms), 2),
            "fence_statements_ms": round(median(fence_ms), 2),
            "batch_fenced_ms": round(median(fenced_ms), 2),
            "batch_unfenced_ms": round(median(bare_ms), 2),
        }
    finally:
        store.dispose()


def figure_galera(s: Services, plan: Plan, payloads: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Figure 6: the drainer through Galera node 1 vs the single MariaDB, alternated; the lease's cost
    on each. {"measured": False} when the test cluster is not up."""
    with galera_target(s.tag) as galera:
        if galera is None:
            return {"measured": False}
        n = plan.galera_messages
        runs: dict[str, list[ProcessRun]] = {"single": [], "galera": []}

        def drain_into(kind: str) -> Callable[[], None]:
            def run() -> None:
                target: Any = s if kind == "single" else galera
                target.empty_tables("drainer_events", "drainer_rejected_messages")
                s.publish(envelopes(payloads, n))
                runs[kind].append(
                    run_drainer(s, THROUGHPUT_BATCH, expect=n, db_url=target.url if kind == "galera" else None)
                )

            return run

        alternate(plan.galera_reps, drain_into("single"), drain_into("galera"))
        single_m, galera_m = median_seconds(runs["single"]), median_seconds(runs["galera"])
        on_galera = lease_costs(galera.url, plan, payloads)
        on_single = lease_costs(s.db_url, plan, payloads)
    fence_ms = on_galera["batch_fenced_ms"] - on_galera["batch_unfenced_ms"]
    return {
        "measured": True,
        "messages": n,
        "single_s": [round(r.seconds, 3) for r in runs["single"]],
        "galera_s": [round(r.seconds, 3) for r in runs["galera"]],
        "single_msgs_per_s": round(n / single_m),
        "galera_msgs_per_s": round(n / galera_m),
        "ratio": round(single_m / galera_m, 3),
        "lease_galera": on_galera,
        "lease_single": on_single,
        "take_and_release_ratio": round(on_galera["take_and_release_ms"] / on_single["take_and_release_ms"], 2),
        "fence_ms_per_batch": round(fence_ms, 2),
        "fence_share_of_batch": round(fence_ms / on_galera["batch_unfenced_ms"], 3),
    }


def figure_ledger(s: Services, plan: Plan, payloads: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Figure 7: what the run ledger's UPDATE inside each batch transaction costs, alternated."""
    rows = []
    for size, count in plan.ledger:
        timed: dict[str, list[ProcessRun]] = {"with": [], "without": []}

        def step(into: list[ProcessRun], command: Sequence[str], size: int, count: int) -> Callable[[], None]:
            def run() -> None:
                s.empty_tables("drainer_events", "drainer_rejected_messages")
                s.publish(envelopes(payloads, count))
                into.append(run_drainer(s, size, expect=count, command=command))

            return run

        alternate(
            plan.ledger_reps,
            step(timed["with"], DRAINER, size, count),
            step(timed["without"], NO_LEDGER, size, count),
        )
        with_s, without_s = median_seconds(timed["with"]), median_seconds(timed["without"])
        batches = -(-count // size)
        rows.append(
            {
                "batch_size": size,
                "messages": count,
                "batches": batches,
                "with_ledger_s": round(with_s, 3),
                "without_ledger_s": round(without_s, 3),
                "with_msgs_per_s": round(count / with_s),
                "without_msgs_per_s": round(count / without_s),
                "throughput_ratio": round(without_s / with_s, 3),
                "ms_per_batch": round(1000 * (with_s - without_s) / batches, 3),
            }
        )
    return {"rows": rows, "in_process": ledger_in_process(s, plan, payloads)}


def ledger_in_process(s: Services, plan: Plan, payloads: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The ledger's cost where it is paid: one batch transaction of 1,000 events (db.batch.write_batch
    with the lease fence) with and without the ledger's UPDATE, alternated, medians in ms."""
    from drainer.config import Settings
    from drainer.db import lease as leases
    from drainer.db import runs
    from drainer.db.batch import BatchHooks, write_batch
    from drainer.db.engine import Store
    from drainer.envelope import decode
    from drainer.model import Delivery, Event, utcnow

    store = Store.open(s.db_url, Settings(db_url=s.db_url))
    try:
        runs.start(store, "bench-ledger", "bench", "bench.info")
        lease = leases.Lease("bench.info", "bench:0:bench:0", 600)
        assert leases.acquire(store, lease.name, lease.holder, lease.ttl_s) is None

        def record(conn: Any, written: Any) -> None:
            result = written.result
            counts = runs.BatchCounts(1000, result.stored, 0, 0, 0, result.first_id, result.last_id)
            runs.record_batch(store, conn, "bench-ledger", counts)

        timings: dict[str, list[float]] = {"with": [], "without": []}
        for _ in range(plan.ledger_batches):
            for which, hooks in (("with", BatchHooks(in_transaction=record)), ("without", BatchHooks())):
                now = utcnow()
                batch = [
                    e
                    for e in (decode(Delivery(0, b, "", "q", False, {}), now) for b in envelopes(payloads, 1000))
                    if isinstance(e, Event)
                ]
                start = time.perf_counter()
                write_batch(store, "bench.info", batch, [], lease, hooks)
                timings[which].append(time.perf_counter() - start)
        leases.release(store, lease)
    finally:
        store.dispose()
    with_ms, without_ms = 1000 * median(timings["with"]), 1000 * median(timings["without"])
    return {
        "batch_size": 1000,
        "pairs": plan.ledger_batches,
        "with_ms": round(with_ms, 2),
        "without_ms": round(without_ms, 2),
        "ledger_ms": round(with_ms - without_ms, 2),
        "ratio": round(with_ms / without_ms, 3),
    }


# -- report ---------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            model = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _verdict(met: bool | None) -> str:
    return "not measured" if met is None else "met" if met else "MISSED"


def _mib(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} MiB"


def _figures_table(report: dict[str, Any]) -> list[str]:
    t, b, st, mem = report["throughput"], report["baseline"], report["startup"], report["memory"]
    rows = [
        (
            f"1 throughput, {t['messages']:,} msgs, whole process",
            f"{t['drainer_msgs_per_s']:,} msg/s ({t['drainer_median_s']:.2f} s)",
            f"raw basic_get process {t['raw_msgs_per_s']:,} msg/s ({t['raw_median_s']:.2f} s)",
            f"{t['ratio']:.2f}",
            ">= 0.85",
            _verdict(t["met"]),
        ),
        (
            f"2 vs 2017 persistor ({b['baseline_messages']:,}), whole process",
            f"{b['drainer_msgs_per_s']:,} msg/s",
            f"per-event commit {b['baseline_msgs_per_s']:,.0f} msg/s "
            f"(in-process {b['baseline_listener_msgs_per_s']:,.0f}: {b['ratio_vs_listener']:.1f}x)",
            f"{b['ratio']:.1f}x",
            ">= 12x",
            _verdict(b["met"]),
        ),
        (
            "3 start-up, empty queue",
            f"{st['empty_run_median_s']:.3f} s",
            f"bare imports {st['bare_imports_median_s']:.3f} s",
            f"{st['ratio']:.2f}x",
            "<= 1.5x",
            _verdict(st["met"]),
        ),
        (
            f"4 peak RSS, {mem['messages']:,} x {mem['mean_body_bytes']:,} B",
            _mib(mem["max_rss_median_mib"]),
            f"raw basic_get holding the batch {_mib(mem['reference_max_rss_median_mib'])}",
            "n/a" if mem["ratio"] is None else f"{mem['ratio']:.2f}x",
            f"<= 2 x {mem['batch_mib']:.1f} + 60 = {mem['limit_mib']:.1f} MiB",
            _verdict(mem["met"]),
        ),
    ]
    header = ("figure", "drainer", "reference", "ratio", "target", "result")
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in (header, *rows)]


def _scaling_table(scaling: dict[str, Any]) -> list[str]:
    lines = [
        f"5 scaling (whole process; 'net' subtracts the {scaling['startup_s']:.3f} s empty-queue run)",
        f"{'batch size':>10}{'messages':>10}{'batches':>9}{'median s':>10}{'msg/s':>9}{'net msg/s':>11}"
        f"{'ms/batch':>10}{'peak RSS':>12}",
    ]
    for r in scaling["rows"]:
        lines.append(
            f"{r['batch_size']:>10,}{r['messages']:>10,}{r['batches']:>9,}{r['median_s']:>10.2f}"
            f"{r['msgs_per_s']:>9,}{r['net_msgs_per_s']:>11,}{r['ms_per_batch']:>10.2f}{_mib(r['max_rss_mib']):>12}"
        )
    lines.append(
        f"recommended default batch size: {scaling['recommended_batch_size']:,} "
        f"(the smallest within {AMORTISED_SHARE:.0%} of the best net throughput)"
    )
    return lines


def _galera_lines(g: dict[str, Any]) -> list[str]:
    if not g.get("measured"):
        return ["6 Galera: not measured (the test cluster is not up: python -m tests.cluster.clusters up galera)"]
    lg, ls = g["lease_galera"], g["lease_single"]
    return [
        f"6 Galera, {g['messages']:,} msgs through node 1: {g['galera_msgs_per_s']:,} msg/s vs single MariaDB "
        f"{g['single_msgs_per_s']:,} msg/s, ratio {g['ratio']:.2f}",
        f"  lease per run (take + release): {lg['take_and_release_ms']:.1f} ms on Galera vs "
        f"{ls['take_and_release_ms']:.1f} ms single, {g['take_and_release_ratio']:.2f}x",
        f"  lease per batch on Galera: the fence's statements {lg['fence_statements_ms']:.2f} ms "
        f"(single {ls['fence_statements_ms']:.2f} ms)",
        f"  a batch of {THROUGHPUT_BATCH:,} on Galera: {lg['batch_fenced_ms']:.1f} ms fenced vs "
        f"{lg['batch_unfenced_ms']:.1f} ms unfenced, {g['fence_ms_per_batch']:+.1f} ms "
        f"({g['fence_share_of_batch']:+.1%}, within this run's noise when small)",
    ]


def _ledger_table(ledger: dict[str, Any]) -> list[str]:
    lines = [
        "7 run ledger (drain as it is vs the ledger's per-batch UPDATE stubbed out, alternated)",
        f"{'batch size':>10}{'messages':>10}{'with msg/s':>12}{'without msg/s':>15}{'ratio':>8}{'ms/batch':>10}",
    ]
    for r in ledger["rows"]:
        lines.append(
            f"{r['batch_size']:>10,}{r['messages']:>10,}{r['with_msgs_per_s']:>12,}{r['without_msgs_per_s']:>15,}"
            f"{r['throughput_ratio']:>8.3f}{r['ms_per_batch']:>10.3f}"
        )
    p = ledger["in_process"]
    lines.append(
        f"in-process, one batch transaction of {p['batch_size']:,} events ({p['pairs']} alternated pairs, medians): "
        f"{p['with_ms']:.2f} ms with the ledger, {p['without_ms']:.2f} ms without: {p['ledger_ms']:+.2f} ms "
        f"({p['ratio']:.3f}x)"
    )
    return lines


def render(report: dict[str, Any]) -> str:
    m = report["machine"]
    head = [
        f"vitrage-drainer benchmark ({report['mode']} run, {report['started']}, {report['wall_s']} s)",
        f"machine: nproc={m['nproc']}, {m['cpu_model']}; Python {m['python']}; MariaDB {report['mariadb']}",
        f"messages: oslo v2 envelopes around {report['samples']} Vitrage samples, mean "
        f"{report['mean_body_bytes']:,} B; medians of alternated runs (A B A B), drainer batch "
        f"{THROUGHPUT_BATCH:,} --until-empty",
        "",
    ]
    tables = [*_figures_table(report), "", *_scaling_table(report["scaling"]), "", *_galera_lines(report["galera"])]
    if "ledger" in report:
        tables += ["", *_ledger_table(report["ledger"])]
    return "\n".join([*head, *tables])


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.perf.bench", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts, one repetition: under a minute")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON on stdout")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    plan = Plan.quick() if args.quick else Plan()
    payloads = sample_payloads()
    one_each = envelopes(payloads, len(payloads))
    report: dict[str, Any] = {
        "mode": "quick" if args.quick else "full",
        "started": datetime.now().isoformat(timespec="seconds"),
        "machine": machine(),
        "plan": asdict(plan),
        "samples": len(payloads),
        "mean_body_bytes": round(sum(len(b) for b in one_each) / len(one_each)),
        "rss_source": "GNU time %M" if GNU_TIME else None,
    }
    began = time.monotonic()
    # The drainer as an installed wheel runs it: pip compiles a wheel's modules once, while a source
    # checkout under PYTHONDONTWRITEBYTECODE=1 would compile them on every start (about 60 ms here).
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "drainer")], check=True)
    report["drainer_bytecode"] = "compiled once, as an installed wheel has it"
    with services() as s:
        report["mariadb"] = s.sql("SELECT VERSION()")[0][0]
        say(f"database {s.database}, queue {s.queue}")
        s.publish(envelopes(payloads, 200))
        run_drainer(s, THROUGHPUT_BATCH, expect=200)  # warm-up, untimed
        say("3 start-up: empty-queue run vs bare imports")
        report["startup"] = figure_startup(s, plan)
        say("1+2 throughput: raw basic_get, drainer, per-event-commit persistor")
        report.update(figure_throughput(s, plan, payloads))
        say("4 memory: one batch of instance snapshots")
        report["memory"] = figure_memory(s, plan)
        say("5 scaling: batch sizes")
        report["scaling"] = figure_scaling(s, plan, payloads, report["startup"]["empty_run_median_s"])
        say("6 Galera: through a cluster node vs the single MariaDB; the lease's cost")
        report["galera"] = figure_galera(s, plan, payloads)
        say("7 run ledger: with and without its per-batch update")
        report["ledger"] = figure_ledger(s, plan, payloads)
    report["wall_s"] = round(time.monotonic() - began, 1)
    if args.json:
        say(render(report))
        print(json.dumps(report, indent=2))
    else:
        print(render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
