"""The verdict on one event's bytes: a decoded ``Message``, or the ``Problem`` that keeps it out.

The order keeps hostile input cheap: size first, then nesting depth (before any parser
sees the bytes), then UTF-8, then one msgspec decode with nested objects left raw. The
Segment rules themselves (``segment.message.check``) run later, once the endpoint's implied
type is known.
"""

from __future__ import annotations

from insightloop.collector.depth import within_depth
from insightloop.segment.message import Message, Problem, decode
from insightloop.types import FailureKind


def judge(raw: bytes, max_bytes: int, max_depth: int) -> Message | Problem:
    """Decode one event, or say why it cannot be (never raises for bad bytes)."""
    if len(raw) > max_bytes:
        return Problem(
            FailureKind.TOO_LARGE, None, f"event is {len(raw)} bytes, over the limit of {max_bytes} bytes"
        )
    if not within_depth(raw, max_depth):
        return Problem(FailureKind.TOO_DEEP, None, f"event nests deeper than {max_depth} levels")
    if not raw.isascii():
        try:
            raw.decode()
        except UnicodeDecodeError as exc:
            return Problem(FailureKind.INVALID_UTF8, None, f"event is not valid UTF-8 (byte {exc.start})")
    try:
        return decode(raw)
    except UnicodeDecodeError as exc:  # msgspec raises it for bad UTF-8 in a string
        return Problem(FailureKind.INVALID_UTF8, None, f"event is not valid UTF-8: {exc.reason}")
