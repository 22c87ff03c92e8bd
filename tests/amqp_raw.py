"""Publish hand-built AMQP 0-9-1 frames over a raw socket: the content headers no client library
writes (a millisecond timestamp, a double, every field type) exactly as Java, Node or Go
producers put them on the wire. Test support only; independent of pika and of drainer.amqp_codec."""

from __future__ import annotations

import socket
import struct
from urllib.parse import unquote, urlsplit

FRAME_END = b"\xce"


def shortstr(value: str | bytes) -> bytes:
    data = value.encode() if isinstance(value, str) else value
    return struct.pack(">B", len(data)) + data


def longstr(value: str | bytes) -> bytes:
    data = value.encode() if isinstance(value, str) else value
    return struct.pack(">I", len(data)) + data


def table(*entries: tuple[str | bytes, bytes]) -> bytes:
    """A field table from (name, encoded value with its type octet) pairs, in the order given."""
    body = b"".join(shortstr(name) + value for name, value in entries)
    return struct.pack(">I", len(body)) + body


# One encoder per AMQP 0-9-1 field type (RabbitMQ's reading: s = signed 16, l = signed 64).
def t(v: bool) -> bytes:
    return b"t" + struct.pack(">B", int(v))


def b(v: int) -> bytes:
    return b"b" + struct.pack(">b", v)


def B(v: int) -> bytes:  # noqa: N802
    return b"B" + struct.pack(">B", v)


def s(v: int) -> bytes:
    return b"s" + struct.pack(">h", v)


def u(v: int) -> bytes:
    return b"u" + struct.pack(">H", v)


def I(v: int) -> bytes:  # noqa: N802, E743
    return b"I" + struct.pack(">i", v)


def i(v: int) -> bytes:
    return b"i" + struct.pack(">I", v)


def l(v: int) -> bytes:  # noqa: E741, E743
    return b"l" + struct.pack(">q", v)


def f(v: float) -> bytes:
    return b"f" + struct.pack(">f", v)


def d(v: float) -> bytes:
    return b"d" + struct.pack(">d", v)


def D(scale: int, unscaled: int) -> bytes:  # noqa: N802
    return b"D" + struct.pack(">Bi", scale, unscaled)


def S(v: str | bytes) -> bytes:  # noqa: N802
    return b"S" + longstr(v)


def x(v: bytes) -> bytes:
    return b"x" + longstr(v)


def T(v: int) -> bytes:  # noqa: N802
    return b"T" + struct.pack(">Q", v)


def F(*entries: tuple[str | bytes, bytes]) -> bytes:  # noqa: N802
    return b"F" + table(*entries)


def A(*values: bytes) -> bytes:  # noqa: N802
    body = b"".join(values)
    return b"A" + struct.pack(">I", len(body)) + body


V = b"V"

_FLAGS = {
    "content_type": 15,
    "content_encoding": 14,
    "headers": 13,
    "delivery_mode": 12,
    "priority": 11,
    "correlation_id": 10,
    "reply_to": 9,
    "expiration": 8,
    "message_id": 7,
    "timestamp": 6,
    "type": 5,
    "user_id": 4,
    "app_id": 3,
    "cluster_id": 2,
}


def properties(**fields: bytes) -> bytes:
    """Basic property bytes from already encoded fields (e.g. headers=table(...),
    delivery_mode=b"\\x02", message_id=shortstr("m1")), written in the spec's order."""
    flags = 0
    for name in fields:
        flags |= 1 << _FLAGS[name]
    ordered = sorted(fields.items(), key=lambda item: -_FLAGS[item[0]])
    return struct.pack(">H", flags) + b"".join(value for _, value in ordered)


class BrokerClosed(Exception):
    """The broker closed the connection or channel; args: reply code, reply text."""


class RawPublisher:
    """A minimal AMQP 0-9-1 client: PLAIN login, one channel in confirm mode, basic.publish."""

    def __init__(self, url: str, timeout: float = 10) -> None:
        parts = urlsplit(url)
        self.sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5672), timeout=timeout)
        self.buf = b""
        self.sock.sendall(b"AMQP\x00\x00\x09\x01")
        self._expect(10, 10)  # connection.start
        user, password = unquote(parts.username or "guest"), unquote(parts.password or "guest")
        login = b"\x00" + user.encode() + b"\x00" + password.encode()
        self._method(0, 10, 11, table() + shortstr("PLAIN") + longstr(login) + shortstr("en_US"))
        tune = self._expect(10, 30)
        channel_max, frame_max, _ = struct.unpack(">HIH", tune[:8])
        self.frame_max = frame_max
        self._method(0, 10, 31, struct.pack(">HIH", channel_max, frame_max, 0))
        vhost = unquote(parts.path[1:]) if parts.path not in ("", "/") else "/"
        self._method(0, 10, 40, shortstr(vhost) + shortstr("") + b"\x00")
        self._expect(10, 41)
        self._method(1, 20, 10, shortstr(""))
        self._expect(20, 11)
        self._method(1, 85, 10, b"\x00")  # confirm.select
        self._expect(85, 11)
        self.published = 0

    def _send(self, frame_type: int, channel: int, payload: bytes) -> None:
        self.sock.sendall(struct.pack(">BHI", frame_type, channel, len(payload)) + payload + FRAME_END)

    def _method(self, channel: int, class_id: int, method_id: int, args: bytes) -> None:
        self._send(1, channel, struct.pack(">HH", class_id, method_id) + args)

    def _frame(self) -> tuple[int, int, bytes]:
        while True:
            if len(self.buf) >= 7:
                frame_type, channel, size = struct.unpack(">BHI", self.buf[:7])
                if len(self.buf) >= 8 + size:
                    payload = self.buf[7 : 7 + size]
                    self.buf = self.buf[8 + size :]
                    return frame_type, channel, payload
            chunk = self.sock.recv(65536)
            if not chunk:
                raise BrokerClosed(0, "socket closed by the broker")
            self.buf += chunk

    def _expect(self, class_id: int, method_id: int) -> bytes:
        while True:
            frame_type, _channel, payload = self._frame()
            if frame_type != 1:
                continue  # heartbeats
            got = struct.unpack(">HH", payload[:4])
            if got in ((10, 50), (20, 40)):  # connection.close, channel.close
                code = struct.unpack(">H", payload[4:6])[0]
                text = payload[7 : 7 + payload[6]].decode("utf-8", "replace")
                raise BrokerClosed(code, text)
            if got == (class_id, method_id):
                return payload[4:]

    def publish(self, queue: str, body: bytes, props: bytes, exchange: str = "") -> None:
        """basic.publish with these exact property bytes; waits for the broker's confirm."""
        self._method(1, 60, 40, struct.pack(">H", 0) + shortstr(exchange) + shortstr(queue) + b"\x00")
        self._send(2, 1, struct.pack(">HHQ", 60, 0, len(body)) + props)
        step = self.frame_max - 8
        for start in range(0, len(body), step):
            self._send(3, 1, body[start : start + step])
        self.published += 1
        ack = self._expect(60, 80)  # basic.ack (a nack is 60,120 and would time out here)
        assert struct.unpack(">Q", ack[:8])[0] == self.published

    def close(self) -> None:
        try:
            self._method(0, 10, 50, struct.pack(">H", 200) + shortstr("") + struct.pack(">HH", 0, 0))
            self._expect(10, 51)
        except (BrokerClosed, OSError):
            pass
        finally:
            self.sock.close()

    def __enter__(self) -> RawPublisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
