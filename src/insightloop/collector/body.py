"""Reading a request body with a hard cap, decompressing gzip while it streams.

Both sizes are capped: the bytes on the wire and, for gzip, the bytes they expand to. The
decompressor is never asked for more than the cap allows, so a small gzip bomb never
expands in memory beyond ``limit`` bytes.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator

#: Room for gzip's own framing over an incompressible body (header, trailer, block headers).
GZIP_OVERHEAD_BYTES = 1024
_GZIP_WBITS = 16 + zlib.MAX_WBITS
_MAX_KEPT_BYTES = 64 * 1024


class BodyTooLarge(Exception):
    """The body (on the wire, or decompressed) is over the limit."""

    def __init__(self, limit: int, what: str) -> None:
        super().__init__(f"{what} is over the limit of {limit} bytes")
        self.limit = limit


class BodyUnreadable(Exception):
    """The body claims an encoding it does not have (e.g. corrupt gzip).

    ``received`` holds the first bytes as sent, to keep as a rejection."""

    def __init__(self, reason: str, received: bytes) -> None:
        super().__init__(reason)
        self.reason = reason
        self.received = received


class UnsupportedEncoding(Exception):
    """A ``Content-Encoding`` other than gzip or identity."""


async def read_body(
    chunks: AsyncIterator[bytes], content_encoding: str | None, content_length: int | None, limit: int
) -> bytes:
    """The whole body, decoded; raises before reading past ``limit`` bytes."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding == "identity":
        if content_length is not None and content_length > limit:
            raise BodyTooLarge(limit, "body")
        return await _read_plain(chunks, limit)
    if encoding in ("gzip", "x-gzip"):
        wire_limit = limit + GZIP_OVERHEAD_BYTES
        if content_length is not None and content_length > wire_limit:
            raise BodyTooLarge(wire_limit, "gzip body")
        return await _read_gzip(chunks, limit, wire_limit)
    raise UnsupportedEncoding(f"Content-Encoding {encoding!r} is not supported (use gzip or none)")


async def _read_plain(chunks: AsyncIterator[bytes], limit: int) -> bytes:
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit, "body")
        parts.append(chunk)
    return parts[0] if len(parts) == 1 else b"".join(parts)


async def _read_gzip(chunks: AsyncIterator[bytes], limit: int, wire_limit: int) -> bytes:
    out = bytearray()
    kept = bytearray()  # the first bytes as sent, should they prove not to be gzip
    inflater = zlib.decompressobj(_GZIP_WBITS)
    received = 0
    async for chunk in chunks:
        received += len(chunk)
        if received > wire_limit:
            raise BodyTooLarge(wire_limit, "gzip body")
        if len(kept) < _MAX_KEPT_BYTES:
            kept += chunk[: _MAX_KEPT_BYTES - len(kept)]
        data = chunk
        try:
            while data:
                # max_length caps what one call may produce: one byte past the limit at most.
                out += inflater.decompress(data, limit + 1 - len(out))
                if len(out) > limit:
                    raise BodyTooLarge(limit, "decompressed body")
                if inflater.eof and inflater.unused_data:  # another gzip member follows
                    data = inflater.unused_data
                    inflater = zlib.decompressobj(_GZIP_WBITS)
                else:
                    data = inflater.unconsumed_tail
        except zlib.error as exc:
            raise BodyUnreadable(f"body is not valid gzip: {exc}", bytes(kept)) from exc
    if not inflater.eof:
        raise BodyUnreadable("gzip body is truncated", bytes(kept))
    return bytes(out)
