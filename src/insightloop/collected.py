"""What the collector writes to the log for one accepted HTTP request: the wire contract
between the collector and the stream processor (neither imports the other).

One log record holds one request's events. Each event keeps its exact bytes as received
(a slice of the request body), plus what the collector decided about it: its Segment
``type`` (from the body, or from the endpoint for ``/v1/track`` & co.) and its message id
(the body's ``messageId``, or a content hash when the sender gave none, so that a retried
identical body still deduplicates).
"""

from __future__ import annotations

import msgspec

FORMAT_VERSION = 1


class CollectedEvent(msgspec.Struct, array_like=True, frozen=True):
    message_id: str
    type: str
    raw: bytes


class Rejection(msgspec.Struct, array_like=True, frozen=True):
    """An event of an accepted request that broke the spec: kept (bytes truncated to
    ``MAX_REJECTED_BYTES``) so it lands in quarantine with its reason, never dropped."""

    kind: str  # a types.FailureKind value
    field: str | None
    reason: str
    raw: bytes


MAX_REJECTED_BYTES = 64 * 1024


class CollectedBatch(msgspec.Struct, array_like=True, frozen=True):
    """One accepted request. ``context`` and ``sent_at`` are the batch-level fields of
    ``/v1/batch`` (Segment merges batch ``context`` under each event's own). ``rejected``
    holds the request's events that broke the spec (and, for a body that is not JSON at
    all, the truncated body itself)."""

    version: int
    source: str
    received_at_us: int
    sent_at: str | None
    context: bytes | None
    events: list[CollectedEvent]
    rejected: list[Rejection] = msgspec.field(default_factory=list)


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(CollectedBatch)


def encode_batch(batch: CollectedBatch) -> bytes:
    return _encoder.encode(batch)


def decode_batch(data: bytes) -> CollectedBatch:
    """Decode one log record; raises ``msgspec.DecodeError`` for bytes that are not one."""
    return _decoder.decode(data)
