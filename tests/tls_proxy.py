"""A TLS endpoint in front of the shared RabbitMQ: terminates TLS on a loopback port of its own and
forwards the bytes to 127.0.0.1:5672, so TLS is tested against the real broker without touching
its listeners. Certificates come from trustme (a CA per test)."""

from __future__ import annotations

import select
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class TLSProxy:
    port: int
    handshakes: int = 0  # completed server-side TLS handshakes
    failures: list[str] = field(default_factory=list)  # server-side handshake errors


def _pump(client: ssl.SSLSocket, upstream: socket.socket, stop: threading.Event) -> None:
    sockets = [client, upstream]
    try:
        while not stop.is_set():
            readable, _, _ = select.select(sockets, [], [], 0.2)
            if client in readable or client.pending():
                data = client.recv(65536)
                if not data:
                    return
                upstream.sendall(data)
            if upstream in readable:
                data = upstream.recv(65536)
                if not data:
                    return
                client.sendall(data)
    except OSError:
        return
    finally:
        for s in sockets:
            s.close()


@contextmanager
def tls_proxy(context: ssl.SSLContext, upstream: tuple[str, int] = ("127.0.0.1", 5672)) -> Iterator[TLSProxy]:
    """Listen with `context` (a server context) on a free loopback port for the block's length."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.2)
    proxy = TLSProxy(server.getsockname()[1])
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                raw, _ = server.accept()
            except OSError:
                continue
            raw.settimeout(10)
            try:
                client = context.wrap_socket(raw, server_side=True)
            except (ssl.SSLError, OSError) as exc:
                proxy.failures.append(str(exc))
                raw.close()
                continue
            proxy.handshakes += 1
            client.settimeout(None)
            up = socket.create_connection(upstream, timeout=10)
            thread = threading.Thread(target=_pump, args=(client, up, stop), daemon=True)
            thread.start()
            threads.append(thread)

    acceptor = threading.Thread(target=serve, daemon=True)
    acceptor.start()
    try:
        yield proxy
    finally:
        stop.set()
        acceptor.join(5)
        for thread in threads:
            thread.join(5)
        server.close()
