"""A virtual IP for tests: a TCP forwarder on 127.0.0.1 whose target can move, as keepalived's VIP does."""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
from collections.abc import Iterator


class Vip:
    """Forward every connection to the current target; `move` drops the open ones (their node is
    gone) and sends new ones to another node; a target of None refuses them (no node holds the VIP)."""

    def __init__(self, target: tuple[str, int] | None) -> None:
        self.target = target
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.2)
        self.port = self._server.getsockname()[1]
        self._open: list[socket.socket] = []
        self.refused = 0  # connections turned away while no node held the VIP (or its node was down)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def move(self, target: tuple[str, int] | None) -> None:
        with self._lock:
            self.target = target
            for s in self._open:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
            self._open.clear()

    def close(self) -> None:
        self._stop.set()
        self.move(None)
        self._thread.join(2)
        self._server.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                target = self.target
            try:
                if target is None:
                    raise OSError("no node holds the VIP")
                upstream = socket.create_connection(target, timeout=2)
            except OSError:
                client.close()
                self.refused += 1
                continue
            with self._lock:
                self._open += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        sel = selectors.DefaultSelector()
        a.setblocking(False)
        b.setblocking(False)
        sel.register(a, selectors.EVENT_READ, b)
        sel.register(b, selectors.EVENT_READ, a)
        try:
            while not self._stop.is_set():
                for key, _ in sel.select(0.2):
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                    if not data:
                        return
                    key.data.setblocking(True)
                    key.data.sendall(data)
                    key.data.setblocking(False)
        except OSError:
            return
        finally:
            sel.close()
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.close()


@contextlib.contextmanager
def vip(target: tuple[str, int] | None) -> Iterator[Vip]:
    v = Vip(target)
    try:
        yield v
    finally:
        v.close()
