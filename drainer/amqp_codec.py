"""AMQP 0-9-1 field tables and Basic content-header properties, decoded faithfully and re-encoded
byte-exact; pure (no pika). broker.py decodes every content header with it instead of pika's
`pika.data`, which turns a float or double into an int and raises on a timestamp past year 9999.

Field types follow RabbitMQ's reading of the spec (its "AMQP 0-9-1 errata": `s` is a signed 16-bit
integer, `l` a signed 64-bit one, `x` a byte array), since RabbitMQ is the broker that parsed the
producer's bytes before they reach us.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any


class FieldDecodeError(ValueError):
    """The bytes are not a valid AMQP 0-9-1 field table or property list; the text says where."""


# Basic class property flags, bit 15 first (AMQP 0-9-1 section 4.2.6.1, pika.spec.BasicProperties).
PROPERTY_NAMES = (
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
_SHORTSTR, _TABLE, _OCTET, _TIMESTAMP = "s", "F", "B", "T"
_PROPERTY_KINDS = dict(zip(PROPERTY_NAMES, "ssFBBssssTssss", strict=True))

# Fixed-size numeric field types: struct format and size.
_FIXED = {
    "b": struct.Struct(">b"),  # signed 8
    "B": struct.Struct(">B"),  # unsigned 8
    "s": struct.Struct(">h"),  # signed 16 (RabbitMQ errata)
    "U": struct.Struct(">h"),  # signed 16 (spec)
    "u": struct.Struct(">H"),  # unsigned 16
    "I": struct.Struct(">i"),  # signed 32
    "i": struct.Struct(">I"),  # unsigned 32
    "l": struct.Struct(">q"),  # signed 64 (RabbitMQ errata)
    "L": struct.Struct(">q"),  # signed 64 (spec: long-long-int)
    "f": struct.Struct(">f"),  # IEEE 754 single
    "d": struct.Struct(">d"),  # IEEE 754 double
    "T": struct.Struct(">Q"),  # timestamp: a 64-bit count of seconds, any value (kept as the int sent)
}
_U8 = struct.Struct(">B")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_DECIMAL = struct.Struct(">Bi")


def _need(buf: bytes, offset: int, size: int, what: str) -> None:
    if offset + size > len(buf):
        raise FieldDecodeError(f"{what} at offset {offset} runs past the end ({len(buf)} bytes)")


def _text(raw: bytes) -> str | bytes:
    # Strings are UTF-8 by the spec; a producer's other bytes are kept as they are, not replaced.
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


def decode_value(buf: bytes, offset: int) -> tuple[Any, int]:
    """One field value (type octet first) at `offset` -> (natural Python value, next offset).

    Natural values: bool, int (all integers and timestamps), float (`f`, `d`), Decimal (`D`), str
    (bytes when a long string is not UTF-8), bytes (`x`), list (`A`), dict (`F`), None (`V`).
    Raises FieldDecodeError for an unknown type or a value that runs past the end.
    """
    _need(buf, offset, 1, "field type")
    kind = chr(buf[offset])
    offset += 1
    fixed = _FIXED.get(kind)
    if fixed is not None:
        _need(buf, offset, fixed.size, f"field of type {kind!r}")
        return fixed.unpack_from(buf, offset)[0], offset + fixed.size
    if kind == "t":
        _need(buf, offset, 1, "boolean")
        return buf[offset] != 0, offset + 1
    if kind in "Sx":
        _need(buf, offset, 4, "string length")
        (length,) = _U32.unpack_from(buf, offset)
        offset += 4
        _need(buf, offset, length, f"string of {length} bytes")
        raw = bytes(buf[offset : offset + length])
        return (_text(raw) if kind == "S" else raw), offset + length
    if kind == "D":
        from decimal import Decimal  # rare in headers: not paid on every cron tick

        _need(buf, offset, 5, "decimal")
        scale, unscaled = _DECIMAL.unpack_from(buf, offset)
        return Decimal(unscaled).scaleb(-scale), offset + 5
    if kind == "F":
        return decode_table(buf, offset)
    if kind == "A":
        _need(buf, offset, 4, "array length")
        (length,) = _U32.unpack_from(buf, offset)
        offset += 4
        end = offset + length
        _need(buf, offset, length, f"array of {length} bytes")
        items = []
        while offset < end:
            item, offset = decode_value(buf, offset)
            items.append(item)
        if offset != end:
            raise FieldDecodeError(f"array element runs past its array's end at offset {end}")
        return items, offset
    if kind == "V":
        return None, offset
    raise FieldDecodeError(f"unknown field type {kind!r} (0x{ord(kind):02x}) at offset {offset - 1}")


def _table_entries(buf: bytes, offset: int) -> tuple[list[tuple[str | bytes, Any, bytes]], int]:
    """(key, natural value, raw value bytes with its type octet) per entry, in wire order."""
    _need(buf, offset, 4, "table length")
    (length,) = _U32.unpack_from(buf, offset)
    offset += 4
    end = offset + length
    _need(buf, offset, length, f"table of {length} bytes")
    entries = []
    while offset < end:
        _need(buf, offset, 1, "field name length")
        size = buf[offset]
        _need(buf, offset + 1, size, "field name")
        key = _text(bytes(buf[offset + 1 : offset + 1 + size]))
        start = offset + 1 + size
        value, offset = decode_value(buf, start)
        entries.append((key, value, bytes(buf[start:offset])))
    if offset != end:
        raise FieldDecodeError(f"table entry runs past its table's end at offset {end}")
    return entries, offset


def decode_table(buf: bytes, offset: int) -> tuple[dict[str | bytes, Any], int]:
    """A field table (length first) at `offset` -> (dict of natural values, next offset).
    A name repeated in the table keeps its last value, as every AMQP client does."""
    entries, offset = _table_entries(buf, offset)
    return {key: value for key, value, _ in entries}, offset


def decode_properties(raw: bytes) -> dict[str, Any]:
    """Basic class properties (flag words, then the present fields) -> name: natural value.

    `timestamp` is the int sent (seconds by the spec; producers also put milliseconds there).
    Raises FieldDecodeError when the bytes do not parse, naming the property and offset.
    """
    flags, offset = _flags(raw)
    found: dict[str, Any] = {}
    for bit, name in enumerate(PROPERTY_NAMES):
        if not flags & (1 << (15 - bit)):
            continue
        try:
            found[name], offset = _property(raw, offset, _PROPERTY_KINDS[name])
        except (FieldDecodeError, struct.error) as exc:
            raise FieldDecodeError(f"property {name}: {exc}") from None
    return found


def _flags(raw: bytes) -> tuple[int, int]:
    # Flag words follow each other while bit 0 (continuation) is set; Basic uses only the first.
    offset, flags, word = 0, 0, 1
    index = 0
    while word & 1:
        _need(raw, offset, 2, "property flags")
        (word,) = _U16.unpack_from(raw, offset)
        if index == 0:
            flags = word
        offset += 2
        index += 1
    return flags, offset


def _property(raw: bytes, offset: int, kind: str) -> tuple[Any, int]:
    if kind == _SHORTSTR:
        _need(raw, offset, 1, "short string length")
        size = raw[offset]
        _need(raw, offset + 1, size, f"short string of {size} bytes")
        return _text(bytes(raw[offset + 1 : offset + 1 + size])), offset + 1 + size
    if kind == _TABLE:
        return decode_table(raw, offset)
    if kind == _OCTET:
        _need(raw, offset, 1, "octet")
        return raw[offset], offset + 1
    _need(raw, offset, 8, "timestamp")
    return _U64.unpack_from(raw, offset)[0], offset + 8


def _property_spans(raw: bytes) -> tuple[int, dict[str, tuple[int, int]]]:
    """First flag word and, per present property, its (start, end) in `raw`."""
    flags, offset = _flags(raw)
    spans = {}
    for bit, name in enumerate(PROPERTY_NAMES):
        if flags & (1 << (15 - bit)):
            _, end = _property(raw, offset, _PROPERTY_KINDS[name])
            spans[name] = (offset, end)
            offset = end
    return flags, spans


def _shortstr(value: str | bytes) -> bytes:
    data = value.encode("utf-8") if isinstance(value, str) else value
    if len(data) > 255:
        raise ValueError(f"short string of {len(data)} bytes (255 at most)")
    return _U8.pack(len(data)) + data


def _longstr(value: str | bytes) -> bytes:
    data = value.encode("utf-8") if isinstance(value, str) else value
    return b"S" + _U32.pack(len(data)) + data


def reencode_properties(
    raw: bytes, add_headers: dict[str, str | bytes], move_to_headers: Iterable[tuple[str, str]] = ()
) -> bytes:
    """The same properties with `add_headers` set (as long strings, replacing entries of the same
    name), each (property, header) of `move_to_headers` present moved into a header, and
    delivery_mode 2 (persistent). Every other byte is copied as received: field types, order,
    repeated names and values that Python could not hold exactly all survive.
    Raises FieldDecodeError when `raw` does not parse (encode fresh properties instead).
    """
    flags, spans = _property_spans(raw)
    moved = dict(move_to_headers)
    extra: dict[str, bytes] = {}
    for prop, header in moved.items():
        if prop in spans:
            start, end = spans[prop]
            extra[header] = _longstr(raw[start + 1 : end])  # a short string's bytes, as sent
    extra.update({name: _longstr(value) for name, value in add_headers.items()})

    entries: list[bytes] = []
    if "headers" in spans:
        table, _ = _table_entries(raw, spans["headers"][0])
        entries = [_shortstr(key) + value for key, _, value in table if key not in extra]
    entries += [_shortstr(name) + value for name, value in extra.items()]
    body = b"".join(entries)

    out_flags = (flags | 1 << 13 | 1 << 12) & ~0x1
    for prop in moved:
        out_flags &= ~(1 << (15 - PROPERTY_NAMES.index(prop)))
    parts = [_U16.pack(out_flags)]
    for bit, name in enumerate(PROPERTY_NAMES):
        if not out_flags & (1 << (15 - bit)):
            continue
        if name == "headers":
            parts.append(_U32.pack(len(body)) + body)
        elif name == "delivery_mode":
            parts.append(_U8.pack(2))
        else:
            start, end = spans[name]
            parts.append(raw[start:end])
    return b"".join(parts)


def encode_properties(values: dict[str, Any]) -> bytes:
    """Fresh Basic properties from natural values: short strings, octets, an int timestamp and a
    headers dict of str/bytes values (long strings). For the few properties the drainer writes
    itself; anything received is re-encoded with reencode_properties instead."""
    flags = 0
    parts = []
    for bit, name in enumerate(PROPERTY_NAMES):
        if values.get(name) is None:
            continue
        flags |= 1 << (15 - bit)
        kind, value = _PROPERTY_KINDS[name], values[name]
        if kind == _SHORTSTR:
            parts.append(_shortstr(value))
        elif kind == _OCTET:
            parts.append(_U8.pack(value))
        elif kind == _TIMESTAMP:
            parts.append(_U64.pack(value))
        else:
            body = b"".join(_shortstr(k) + _longstr(v) for k, v in value.items())
            parts.append(_U32.pack(len(body)) + body)
    return _U16.pack(flags) + b"".join(parts)
