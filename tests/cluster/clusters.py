"""Bring the test clusters up and down: three MariaDB Galera nodes and three RabbitMQ nodes.

    python -m tests.cluster.clusters up [galera|rabbitmq]     # fresh clusters; returns once healthy
    python -m tests.cluster.clusters down [galera|rabbitmq]   # stop every node, remove every trace
    python -m tests.cluster.clusters status                   # one line per node
    python -m tests.cluster.clusters missing                  # Debian packages still to install

Galera: three `mariadbd` nodes with the galera-4 provider, each in a network namespace of its own
(`vdgal1..3`, addresses <subnet>.1..3 on a bridge `vdgalbr` whose host side is <subnet>.254), so a
test can cut a node off its peers (a network partition) while the host still reaches it. Each node
has its own data directory, socket, SQL port (3311..3313), group communication (4571..4573), IST
(4581..4583) and SST (4591..4593) ports; default wsrep settings (wsrep_auto_increment_control=ON),
rsync SST, bootstrapped from node 1. Needs root (network namespaces); mariadbd runs as `mysql`.

RabbitMQ: three nodes of the installed rabbitmq-server (`vdrab1..3@localhost`) on 127.0.0.1,
AMQP ports 5701..5703, distribution ports 25701..25703, their own Erlang cookie, data, logs, config
and an empty plugin list (no management or Prometheus listener), clustered with `join_cluster`.

Neither touches the default services (3306, 5672, rabbit@localhost and its cookie). Everything lives
under $DRAINER_CLUSTER_DIR (default: <temp dir>/vitrage-drainer-clusters); DRAINER_CLUSTER_SUBNET
(default 10.212.0) picks the namespaces' /24. Every wait is bounded and fails with what it waited for.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

BASE = Path(os.environ.get("DRAINER_CLUSTER_DIR") or Path(tempfile.gettempdir()) / "vitrage-drainer-clusters")
SUBNET = os.environ.get("DRAINER_CLUSTER_SUBNET", "10.212.0")
NODES = (1, 2, 3)
BRIDGE = "vdgalbr"
HOST_IP = f"{SUBNET}.254"
GALERA_PROVIDERS = (
    "/usr/lib/galera/libgalera_smm.so",
    "/usr/lib/libgalera_smm.so",
    "/usr/lib64/galera-4/libgalera_smm.so",
)
RABBIT_SBIN = Path("/usr/lib/rabbitmq/bin")  # the real scripts, not /usr/sbin's wrapper that su's to rabbitmq
CLUSTER_NAME = "vitrage-drainer-test"
# mariadbd runs as the packaged `mysql` account: as root, the rsync SST daemon would drop to `nobody`
# and could not write the joiner's data directory.
DB_USER = "mysql"


class ClusterError(RuntimeError):
    """A node did not come up, go down or become healthy within its bound."""


def say(message: str) -> None:
    print(f"[clusters] {message}", file=sys.stderr, flush=True)


def wait_until(condition: Callable[[], bool], seconds: float, what: str, interval: float = 0.5) -> None:
    deadline = time.monotonic() + seconds
    while True:
        if condition():
            return
        if time.monotonic() >= deadline:
            raise ClusterError(f"timed out after {seconds:g} s waiting for {what}")
        time.sleep(interval)


def run(
    argv: Sequence[str], timeout: float = 60, check: bool = True, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, **kwargs)  # type: ignore[call-overload]
    if check and proc.returncode != 0:
        raise ClusterError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of this process still "exists": reap it if it is ours.
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def read_pid(path: Path, owner: Path) -> int | None:
    """The pid in a pid file, if that process is still one of ours (its command line names `owner`):
    a node killed with SIGKILL leaves its pid file behind, and the pid may have been reused since."""
    try:
        pid = int(path.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
    except (OSError, ValueError):
        return None
    return pid if str(owner) in cmdline else None


def stop_pid(pid: int | None, seconds: float, sig: int = signal.SIGTERM) -> None:
    """Signal a process and wait (bounded) until it is gone; SIGKILL it when the bound passes."""
    if pid is None or not pid_alive(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    try:
        wait_until(lambda: not pid_alive(pid), seconds, f"process {pid} to exit", 0.2)
    except ClusterError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not pid_alive(pid), 10, f"process {pid} to die after SIGKILL", 0.2)


def processes_under(path: Path) -> list[int]:
    """Processes whose command line names `path` (this script's own nodes, found even without a
    pid file, e.g. after an interrupted `up`)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if str(path) in cmdline:
            found.append(int(entry.name))
    return found


def spawn(argv: Sequence[str], log: Path, env: dict[str, str] | None = None) -> int:
    """Start a daemon in its own session (it outlives this script); its output goes to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env, start_new_session=True
        )
    return proc.pid


# -- Galera -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class GaleraNode:
    """One Galera node: its namespace, address, ports and files."""

    index: int

    @property
    def name(self) -> str:
        return f"node{self.index}"

    @property
    def netns(self) -> str:
        return f"vdgal{self.index}"

    @property
    def veth(self) -> str:
        return f"vdgalh{self.index}"

    @property
    def ip(self) -> str:
        return f"{SUBNET}.{self.index}"

    @property
    def port(self) -> int:
        return 3310 + self.index

    @property
    def gcomm_port(self) -> int:
        return 4570 + self.index

    @property
    def ist_port(self) -> int:
        return 4580 + self.index

    @property
    def sst_port(self) -> int:
        return 4590 + self.index

    @property
    def dir(self) -> Path:
        return BASE / "galera" / self.name

    @property
    def datadir(self) -> Path:
        return self.dir / "data"

    @property
    def socket(self) -> Path:
        return self.dir / "mariadbd.sock"

    @property
    def pid_file(self) -> Path:
        return self.dir / "mariadbd.pid"

    @property
    def cnf(self) -> Path:
        return self.dir / "my.cnf"

    @property
    def error_log(self) -> Path:
        return self.dir / "error.log"

    def url(self, database: str = "") -> str:
        """SQLAlchemy URL of this node as the host reaches it (root, no password: a test cluster)."""
        return f"mysql+pymysql://root@{self.ip}:{self.port}/{database}"

    def config(self, provider: str) -> str:
        peers = ",".join(f"{n.ip}:{n.gcomm_port}" for n in galera_nodes())
        return "\n".join(
            [
                "[mariadbd]",
                f"user = {DB_USER}",
                f"datadir = {self.datadir}",
                f"socket = {self.socket}",
                f"pid-file = {self.pid_file}",
                f"log-error = {self.error_log}",
                f"bind-address = {self.ip}",
                f"port = {self.port}",
                "skip-name-resolve",
                "binlog_format = ROW",
                "default_storage_engine = InnoDB",
                "innodb_autoinc_lock_mode = 2",
                "innodb_buffer_pool_size = 64M",
                "wsrep_on = ON",
                f"wsrep_provider = {provider}",
                f"wsrep_cluster_name = {CLUSTER_NAME}",
                f"wsrep_cluster_address = gcomm://{peers}",
                f"wsrep_node_name = {self.name}",
                f"wsrep_node_address = {self.ip}:{self.gcomm_port}",
                f"wsrep_node_incoming_address = {self.ip}:{self.port}",
                f"wsrep_provider_options = gmcast.listen_addr=tcp://{self.ip}:{self.gcomm_port};"
                f"ist.recv_addr={self.ip}:{self.ist_port}",
                f"wsrep_sst_receive_address = {self.ip}:{self.sst_port}",
                "wsrep_sst_method = rsync",
                "",
            ]
        )

    def sql(self, statement: str, timeout: float = 10) -> str:
        """Run a statement through the node's socket as root (unix_socket auth); tab-separated rows."""
        proc = run(
            ["mariadb", "--no-defaults", f"--socket={self.socket}", "-uroot", "-N", "-B", "-e", statement],
            timeout=timeout,
        )
        return proc.stdout

    def status(self) -> dict[str, str]:
        """wsrep status variables, or {} when the node does not answer."""
        try:
            out = self.sql("SHOW GLOBAL STATUS LIKE 'wsrep%'", timeout=5)
        except (ClusterError, subprocess.TimeoutExpired):
            return {}
        return dict(line.split("\t", 1) for line in out.splitlines() if "\t" in line)

    def pid(self) -> int | None:
        return read_pid(self.pid_file, self.cnf)

    def running(self) -> bool:
        pid = self.pid()
        return pid is not None and pid_alive(pid)

    def synced(self, cluster_size: int | None = None) -> bool:
        s = self.status()
        return (
            s.get("wsrep_ready") == "ON"
            and s.get("wsrep_cluster_status") == "Primary"
            and s.get("wsrep_local_state_comment") == "Synced"
            and (cluster_size is None or s.get("wsrep_cluster_size") == str(cluster_size))
        )


def galera_nodes() -> tuple[GaleraNode, ...]:
    return tuple(GaleraNode(i) for i in NODES)


def galera_node(index: int) -> GaleraNode:
    return GaleraNode(index)


def galera_provider() -> str:
    for path in GALERA_PROVIDERS:
        if os.path.exists(path):
            return path
    raise ClusterError("the galera-4 provider is not installed (apt-get install galera-4)")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run(["ip", *args], timeout=15, check=check)


def _network_up() -> None:
    if _ip("link", "show", BRIDGE, check=False).returncode == 0:
        _network_down()
    routes = _ip("route", "show").stdout
    if f"{SUBNET}." in routes:
        raise ClusterError(f"{SUBNET}.0/24 is already routed on this host; set DRAINER_CLUSTER_SUBNET")
    _ip("link", "add", BRIDGE, "type", "bridge")
    _ip("addr", "add", f"{HOST_IP}/24", "dev", BRIDGE)
    _ip("link", "set", BRIDGE, "up")
    for node in galera_nodes():
        _ip("netns", "add", node.netns)
        _ip("link", "add", node.veth, "type", "veth", "peer", "name", "eth0", "netns", node.netns)
        _ip("link", "set", node.veth, "master", BRIDGE, "up")
        _ip("-n", node.netns, "addr", "add", f"{node.ip}/24", "dev", "eth0")
        _ip("-n", node.netns, "link", "set", "eth0", "up")
        _ip("-n", node.netns, "link", "set", "lo", "up")


def _network_down() -> None:
    for node in galera_nodes():
        _ip("netns", "del", node.netns, check=False)
        _ip("link", "del", node.veth, check=False)
    _ip("link", "del", BRIDGE, check=False)


def start_galera_node(node: GaleraNode, bootstrap: bool = False, seconds: float = 120) -> None:
    """Start a node (bootstrap: a new cluster from this node) and wait until it is Synced."""
    if node.running():
        raise ClusterError(f"galera {node.name} is already running")
    argv = ["ip", "netns", "exec", node.netns, "mariadbd", f"--defaults-file={node.cnf}"]
    if bootstrap:
        argv.append("--wsrep-new-cluster")
    pid = spawn(argv, node.dir / "stdout.log")

    def synced() -> bool:
        if not pid_alive(pid):
            raise ClusterError(f"galera {node.name} exited while starting; see {node.error_log}")
        return node.synced()

    wait_until(synced, seconds, f"galera {node.name} to be Synced (see {node.error_log})")


def kill_galera_node(node: GaleraNode) -> None:
    """SIGKILL the node's mariadbd (a crash: no shutdown, no leaving the cluster)."""
    stop_pid(node.pid(), 10, signal.SIGKILL)


def stop_galera_node(node: GaleraNode, seconds: float = 60) -> None:
    stop_pid(node.pid(), seconds)


def galera_up() -> None:
    galera_down()
    provider = galera_provider()
    for tool in ("mariadbd", "mariadb-install-db", "rsync", "ip"):
        if shutil.which(tool) is None:
            raise ClusterError(f"{tool} is not installed")
    if os.geteuid() != 0:
        raise ClusterError(f"the Galera cluster needs root (network namespaces, mariadbd --user={DB_USER})")
    started = time.monotonic()
    _network_up()
    for node in galera_nodes():
        node.datadir.mkdir(parents=True, exist_ok=True)  # nodes 2 and 3 are filled by SST from a donor
        node.cnf.write_text(node.config(provider))
        shutil.chown(node.dir, DB_USER, DB_USER)
        shutil.chown(node.datadir, DB_USER, DB_USER)
    first = galera_node(1)
    run(
        [
            "mariadb-install-db",
            "--no-defaults",
            f"--user={DB_USER}",
            f"--datadir={first.datadir}",
            "--auth-root-authentication-method=socket",
            "--skip-test-db",
        ],
        timeout=120,
    )
    start_galera_node(first, bootstrap=True)
    # The host reaches the nodes from the bridge's address; grants replicate to every node.
    first.sql(
        f"CREATE USER 'root'@'{SUBNET}.%' IDENTIFIED BY ''; "
        f"GRANT ALL PRIVILEGES ON *.* TO 'root'@'{SUBNET}.%' WITH GRANT OPTION"
    )
    for node in galera_nodes()[1:]:
        start_galera_node(node)
    wait_galera_healthy()
    (BASE / "galera" / "up").write_text("")
    say(f"galera up in {time.monotonic() - started:.1f} s: " + ", ".join(n.url() for n in galera_nodes()))


def wait_galera_healthy(seconds: float = 120) -> None:
    """Every node running, Synced, in one primary component of three."""
    wait_until(
        lambda: all(n.synced(cluster_size=len(NODES)) for n in galera_nodes()),
        seconds,
        "all three galera nodes to be Synced in one primary component",
    )


def galera_down() -> None:
    heal_galera()
    for node in galera_nodes():
        stop_galera_node(node, seconds=30)
    for pid in processes_under(BASE / "galera"):
        stop_pid(pid, 30)
    _network_down()
    shutil.rmtree(BASE / "galera", ignore_errors=True)


def galera_is_up() -> bool:
    return (BASE / "galera" / "up").exists() and all(port_open(n.ip, n.port) for n in galera_nodes())


def _blackhole(netns: str, ip: str, add: bool) -> None:
    verb = "add" if add else "del"
    _ip("-n", netns, "route", verb, "blackhole", f"{ip}/32", check=add)


def partition_galera(isolated: GaleraNode) -> None:
    """Cut `isolated` off from the other nodes (both directions); the host still reaches every node."""
    for other in galera_nodes():
        if other.index != isolated.index:
            _blackhole(isolated.netns, other.ip, add=True)
            _blackhole(other.netns, isolated.ip, add=True)


def heal_galera() -> None:
    """Remove every partition route (idempotent)."""
    present = _ip("netns", "list", check=False).stdout.split()
    for node in galera_nodes():
        if node.netns in present:
            for other in galera_nodes():
                if other.index != node.index:
                    _blackhole(node.netns, other.ip, add=False)


@contextlib.contextmanager
def galera_partitioned(isolated: GaleraNode) -> Iterator[None]:
    """The partition for the length of the block; always healed, and waited healthy, afterwards."""
    try:
        partition_galera(isolated)
        yield
    finally:
        heal_galera()
        wait_galera_healthy()


# -- RabbitMQ ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RabbitNode:
    """One RabbitMQ node: its name, ports and files."""

    index: int

    @property
    def name(self) -> str:
        return f"vdrab{self.index}@localhost"

    @property
    def port(self) -> int:
        return 5700 + self.index

    @property
    def dist_port(self) -> int:
        return 25700 + self.index

    @property
    def dir(self) -> Path:
        return BASE / "rabbitmq" / f"node{self.index}"

    @property
    def pid_file(self) -> Path:
        return self.dir / "rabbitmq.pid"

    def url(self, vhost: str = "%2F") -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/{vhost}"

    def env(self) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
        return {
            **keep,
            "HOME": str(BASE / "rabbitmq"),  # the cluster's own .erlang.cookie, for servers and CLI alike
            "RABBITMQ_CONF_ENV_FILE": str(self.dir / "rabbitmq-env.conf"),  # not /etc/rabbitmq's
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.dir / "log"),
            "RABBITMQ_PID_FILE": str(self.pid_file),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    def ctl(self, *args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run(
            [str(RABBIT_SBIN / "rabbitmqctl"), "-n", self.name, *args], timeout=timeout, check=check, env=self.env()
        )

    def pid(self) -> int | None:
        return read_pid(self.pid_file, BASE / "rabbitmq")

    def running(self) -> bool:
        pid = self.pid()
        return pid is not None and pid_alive(pid)

    def write_files(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "rabbitmq-env.conf").write_text("")
        (self.dir / "enabled_plugins").write_text("[].\n")
        (self.dir / "rabbitmq.conf").write_text(
            "\n".join(
                [
                    f"listeners.tcp.1 = 127.0.0.1:{self.port}",
                    "log.console = false",
                    "log.file.level = info",
                    "",
                ]
            )
        )


def rabbit_nodes() -> tuple[RabbitNode, ...]:
    return tuple(RabbitNode(i) for i in NODES)


def rabbit_node(index: int) -> RabbitNode:
    return RabbitNode(index)


def start_rabbit_node(node: RabbitNode, seconds: float = 120) -> None:
    """Start a node (it rejoins its cluster if it was in one) and wait until it accepts clients."""
    if node.running():
        raise ClusterError(f"rabbitmq {node.name} is already running")
    node.pid_file.unlink(missing_ok=True)
    spawn([str(RABBIT_SBIN / "rabbitmq-server")], node.dir / "stdout.log", env=node.env())
    wait_until(lambda: port_open("127.0.0.1", node.port), seconds, f"rabbitmq {node.name} to listen on {node.port}")
    node.ctl("await_startup", "--timeout", str(int(seconds)), timeout=seconds + 10)


def stop_rabbit_node(node: RabbitNode, seconds: float = 60) -> None:
    """Stop the node as `systemctl stop` does (the Erlang VM exits), bounded; SIGKILL it otherwise."""
    pid = node.pid()
    if pid is None or not pid_alive(pid):
        return
    with contextlib.suppress(ClusterError, subprocess.TimeoutExpired):
        node.ctl("shutdown", "--timeout", str(int(seconds)), timeout=seconds + 10, check=False)
    stop_pid(pid, 10, signal.SIGKILL)


def kill_rabbit_node(node: RabbitNode) -> None:
    stop_pid(node.pid(), 10, signal.SIGKILL)


def rabbit_up() -> None:
    rabbit_down()
    if not (RABBIT_SBIN / "rabbitmq-server").exists():
        raise ClusterError("rabbitmq-server is not installed")
    started = time.monotonic()
    home = BASE / "rabbitmq"
    home.mkdir(parents=True, exist_ok=True)
    cookie = home / ".erlang.cookie"
    cookie.write_text(os.urandom(20).hex().upper())
    cookie.chmod(0o400)
    for node in rabbit_nodes():
        node.write_files()
    first, *rest = rabbit_nodes()
    start_rabbit_node(first)
    for node in rest:
        start_rabbit_node(node)
        node.ctl("stop_app")
        node.ctl("join_cluster", first.name)
        node.ctl("start_app")
    wait_rabbit_healthy()
    (home / "up").write_text("")
    say(f"rabbitmq up in {time.monotonic() - started:.1f} s: " + ", ".join(n.url() for n in rabbit_nodes()))


def running_rabbit_nodes(via: RabbitNode) -> set[str]:
    import json

    out = via.ctl("cluster_status", "--formatter", "json", timeout=30, check=False)
    if out.returncode != 0:
        return set()
    try:
        return set(json.loads(out.stdout).get("running_nodes", []))
    except ValueError:
        return set()


def wait_rabbit_healthy(seconds: float = 120) -> None:
    names = {n.name for n in rabbit_nodes()}
    wait_until(
        lambda: (
            running_rabbit_nodes(rabbit_node(1)) == names
            and all(port_open("127.0.0.1", n.port) for n in rabbit_nodes())
        ),
        seconds,
        "all three rabbitmq nodes running in one cluster",
        interval=1,
    )


def rabbit_down() -> None:
    for node in reversed(rabbit_nodes()):
        stop_rabbit_node(node, seconds=30)
    for pid in processes_under(BASE / "rabbitmq"):
        stop_pid(pid, 30)
    shutil.rmtree(BASE / "rabbitmq", ignore_errors=True)


def rabbit_is_up() -> bool:
    return (BASE / "rabbitmq" / "up").exists() and all(port_open("127.0.0.1", n.port) for n in rabbit_nodes())


# -- command line ---------------------------------------------------------------------------


def missing_packages() -> list[str]:
    """The Debian packages the clusters need that are not installed (galera-4 is the usual one)."""
    needed = {
        "galera-4": any(os.path.exists(p) for p in GALERA_PROVIDERS),
        "rsync": shutil.which("rsync") is not None,  # Galera's state transfer (SST)
        "iproute2": shutil.which("ip") is not None,  # the nodes' network namespaces
        "mariadb-server": shutil.which("mariadbd") is not None and shutil.which("mariadb-install-db") is not None,
        "mariadb-client": shutil.which("mariadb") is not None,
        "rabbitmq-server": (RABBIT_SBIN / "rabbitmq-server").exists(),
    }
    return [package for package, present in needed.items() if not present]


def status_lines() -> list[str]:
    lines = []
    for g in galera_nodes():
        s = g.status() if g.running() else {}
        state = (
            f"{s.get('wsrep_local_state_comment')} ready={s.get('wsrep_ready')} "
            f"{s.get('wsrep_cluster_status')} size={s.get('wsrep_cluster_size')}"
            if s
            else "down"
        )
        lines.append(f"galera {g.name} {g.ip}:{g.port}: {state}")
    for r in rabbit_nodes():
        lines.append(f"rabbitmq {r.name} 127.0.0.1:{r.port}: {'up' if r.running() else 'down'}")
    return lines


def _both(steps: dict[str, Callable[[], None]], which: Sequence[str]) -> None:
    """Run the clusters' steps side by side (a boot is mostly waiting); re-raise the first failure."""
    failures: list[BaseException] = []

    def run_step(name: str) -> None:
        try:
            steps[name]()
        except BaseException as exc:  # handed to the main thread below
            failures.append(exc)

    threads = [threading.Thread(target=run_step, args=(name,)) for name in which]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.cluster.clusters", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("up", "down", "status", "missing"))
    parser.add_argument("which", nargs="?", choices=("galera", "rabbitmq", "all"), default="all")
    args = parser.parse_args(argv)
    which = ("galera", "rabbitmq") if args.which == "all" else (args.which,)
    try:
        if args.action == "status":
            print("\n".join(status_lines()))
            return 0
        if args.action == "missing":
            print(" ".join(missing_packages()))
            return 0
        if args.action == "up":
            _both({"galera": galera_up, "rabbitmq": rabbit_up}, which)
        else:
            _both({"galera": galera_down, "rabbitmq": rabbit_down}, which)
            say(f"{' and '.join(which)} down")
    except (ClusterError, subprocess.TimeoutExpired) as exc:
        say(f"failed: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
