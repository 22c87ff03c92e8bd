"""Bodies compressed by kombu (oslo.messaging `[oslo_messaging_rabbit] kombu_compression`), undone
with a bound on the output; pure.

kombu compresses the body and names the method in the message header `compression`, with the
content types of its registry (kombu/compression.py): `application/x-gzip` (aliases gzip, zlib;
written by `zlib.compress`, so a zlib stream, not a gzip file), `application/x-bz2` (bzip2, bzip),
`application/x-lzma` (lzma, xz), `application/zstd` (zstd, zstandard) and `application/x-brotli`
(brotli). The last two need the `compression` extra (backports.zstd before Python 3.14, brotli).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

HEADER = "compression"

_ALIASES = {
    "gzip": "application/x-gzip",
    "zlib": "application/x-gzip",
    "bzip2": "application/x-bz2",
    "bzip": "application/x-bz2",
    "lzma": "application/x-lzma",
    "xz": "application/x-lzma",
    "zstd": "application/zstd",
    "zstandard": "application/zstd",
    "brotli": "application/x-brotli",
}


class DecompressionError(ValueError):
    """The body cannot be decompressed; the text names the method and why."""


def _stream(decompressor: Any, data: bytes, limit: int) -> bytes:
    """Run a stdlib-style decompressor (decompress(data, max_length), eof, unused_data)."""
    out = decompressor.decompress(data, limit + 1)
    if len(out) > limit:
        raise DecompressionError(f"decompressed body exceeds {limit} bytes")
    if not decompressor.eof:
        raise DecompressionError("compressed stream is truncated")
    if decompressor.unused_data:
        raise DecompressionError(f"{len(decompressor.unused_data)} bytes follow the compressed stream")
    return bytes(out)


# The codecs are imported when a compressed body arrives, not on every cron tick.
def _zlib(data: bytes, limit: int) -> bytes:
    import zlib

    # 32 + MAX_WBITS accepts a zlib stream (kombu) and a gzip file (other producers) alike.
    try:
        return _stream(zlib.decompressobj(32 + zlib.MAX_WBITS), data, limit)
    except zlib.error as exc:
        raise DecompressionError(str(exc)) from exc


def _bz2(data: bytes, limit: int) -> bytes:
    import bz2

    try:
        return _stream(bz2.BZ2Decompressor(), data, limit)
    except (OSError, EOFError) as exc:
        raise DecompressionError(str(exc)) from exc


def _lzma(data: bytes, limit: int) -> bytes:
    import lzma

    try:
        return _stream(lzma.LZMADecompressor(), data, limit)  # FORMAT_AUTO: .xz and .lzma
    except (lzma.LZMAError, EOFError) as exc:
        raise DecompressionError(str(exc)) from exc


def _zstd(data: bytes, limit: int) -> bytes:
    try:
        from compression import zstd  # type: ignore[import-not-found,unused-ignore]  # Python 3.14
    except ImportError:
        try:
            from backports import zstd  # type: ignore[import-not-found,no-redef,unused-ignore]
        except ImportError:
            raise DecompressionError(
                "zstd needs the compression extra: pip install 'vitrage-drainer[compression]'"
            ) from None
    try:
        return _stream(zstd.ZstdDecompressor(), data, limit)
    except zstd.ZstdError as exc:
        raise DecompressionError(str(exc)) from exc


def _brotli(data: bytes, limit: int) -> bytes:
    try:
        import brotli
    except ImportError:
        raise DecompressionError(
            "brotli needs the compression extra: pip install 'vitrage-drainer[compression]'"
        ) from None
    decompressor = brotli.Decompressor()
    try:
        out = decompressor.process(data, output_buffer_limit=limit + 1)
    except brotli.error as exc:
        raise DecompressionError(str(exc) or "corrupt brotli stream") from exc
    if len(out) > limit or not decompressor.can_accept_more_data():
        raise DecompressionError(f"decompressed body exceeds {limit} bytes")
    if not decompressor.is_finished():
        raise DecompressionError("compressed stream is truncated")
    return bytes(out)


_DECODERS: dict[str, Callable[[bytes, int], bytes]] = {
    "application/x-gzip": _zlib,
    "application/x-bz2": _bz2,
    "application/x-lzma": _lzma,
    "application/zstd": _zstd,
    "application/x-brotli": _brotli,
}


def decompress(body: bytes, method: Any, limit: int) -> bytes:
    """`body` decompressed by the kombu content type (or alias) `method`, at most `limit` bytes.

    Raises DecompressionError naming the method for an unknown method, a corrupt or truncated
    stream, or an output past `limit` (the bound keeps a small body from growing past memory).
    """
    name = method.decode("utf-8", "replace") if isinstance(method, bytes) else str(method)
    decoder = _DECODERS.get(_ALIASES.get(name, name))
    if decoder is None:
        raise DecompressionError(f"body compressed with {name!r}, which kombu does not define")
    try:
        return decoder(body, limit)
    except (DecompressionError, ValueError) as exc:
        raise DecompressionError(f"body compressed with {name!r} cannot be decompressed: {exc}") from None
