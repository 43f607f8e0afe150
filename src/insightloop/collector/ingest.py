"""A parsed request → the ``CollectedBatch`` the log receives, good and bad events side by side.

One request makes one log record. Events that break the spec become ``Rejection``s in the
same record (bad records are data), and the response lists them by index.
"""

from __future__ import annotations

from hashlib import blake2b
from typing import cast

import msgspec

from insightloop.collected import (
    FORMAT_VERSION,
    MAX_REJECTED_BYTES,
    CollectedBatch,
    CollectedEvent,
    Rejection,
)
from insightloop.collector.envelope import Body
from insightloop.collector.event import judge
from insightloop.segment.message import Message, Problem, check


class Rejected(msgspec.Struct, frozen=True):
    """One event of a request that was not accepted, as the response reports it."""

    index: int
    kind: str
    field: str | None
    reason: str


class Collected(msgspec.Struct, frozen=True):
    record: CollectedBatch
    rejected: list[Rejected]


def message_id_for(source: str, message_type: str, raw: bytes) -> str:
    """A message id for an event that came without one: the same bytes give the same id,
    so a retried identical body still deduplicates downstream."""
    digest = blake2b(raw, digest_size=16, person=b"insightloop-h1")
    digest.update(b"\0" + source.encode() + b"\0" + message_type.encode())
    return "h-" + digest.hexdigest()


def collect(
    body: Body,
    source: str,
    received_at_us: int,
    implied_type: str | None,
    max_event_bytes: int,
    max_depth: int,
) -> Collected:
    """Judge every event of ``body`` and build the request's log record."""
    verdicts = body.verdicts or [judge(raw, max_event_bytes, max_depth) for raw in body.events]
    events: list[CollectedEvent] = []
    rejections: list[Rejection] = []
    rejected: list[Rejected] = []
    for index, (raw, verdict) in enumerate(zip(body.events, verdicts, strict=True)):
        if isinstance(verdict, Message):
            problem = check(verdict, implied_type)
            if problem is None:
                message_type = cast(str, implied_type or verdict.type)  # check() demands a type
                message_id = verdict.message_id or message_id_for(source, message_type, raw)
                events.append(CollectedEvent(message_id, message_type, raw))
                continue
        else:
            problem = verdict
        kind = problem.kind.value
        rejections.append(Rejection(kind, problem.field, problem.reason, raw[:MAX_REJECTED_BYTES]))
        rejected.append(Rejected(index, kind, problem.field, problem.reason))
    record = CollectedBatch(
        FORMAT_VERSION, source, received_at_us, body.sent_at, body.context, events, rejections
    )
    return Collected(record, rejected)


def refused(problem: Problem, body: bytes, source: str, received_at_us: int) -> CollectedBatch:
    """The log record of a body that is not a Segment request at all: just its rejection,
    so that nothing sent with a valid write key is silently lost."""
    rejection = Rejection(problem.kind.value, problem.field, problem.reason, body[:MAX_REJECTED_BYTES])
    return CollectedBatch(FORMAT_VERSION, source, received_at_us, None, None, [], [rejection])
