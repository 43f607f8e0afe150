"""Quarantined rows made by the real pipeline, without servers: request bodies go through the
collector's parsing (``parse_batch``, ``collect``), stage 1's row building (``RawRows``) and
stage 2 (``CleanedStage``, with the repository's contracts), in this process."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from insightloop.collected import encode_batch
from insightloop.collector.envelope import Refused, parse_batch
from insightloop.collector.ingest import collect, refused
from insightloop.config import Config
from insightloop.processor.raw_rows import RawRows
from insightloop.processor.stage import DerivedStage
from insightloop.segment.message import to_micros
from insightloop.types import LogPosition, LogRecord

#: "Now" for these tests: the rows are received relative to it, never to the wall clock.
NOW = dt.datetime(2026, 11, 2, 12, 0, tzinfo=dt.UTC)
TWO_DAYS_AGO = NOW - dt.timedelta(days=2)
HALF_AN_HOUR_AGO = NOW - dt.timedelta(minutes=30)
THREE_HOURS_AGO = NOW - dt.timedelta(hours=3)
#: Not UTF-8, not JSON: the collector refuses the whole body.
GARBAGE = b'\xff{"batch": nope'

#: The repository's contracts: the ones the demo's traffic is checked against.
CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"


def body(events: Sequence[dict[str, Any]], sent_at: dt.datetime) -> bytes:
    return orjson.dumps({"batch": list(events), "sentAt": sent_at.isoformat()})


def ingest(
    stage: DerivedStage, config: Config, seq: int, raw_body: bytes, source: str, received: dt.datetime
) -> None:
    """One request body, received at ``received`` from ``source``, through to cleaned and
    quarantine as raw commit ``seq``."""
    limits = config.collector
    received_us = to_micros(received)
    parsed = parse_batch(raw_body, limits.max_nesting_depth)
    if isinstance(parsed, Refused):
        record = refused(parsed.problem, raw_body, source, received_us)
    else:
        record = collect(
            parsed, source, received_us, None, limits.max_event_bytes, limits.max_nesting_depth
        ).record
    rows = RawRows()
    rows.add(LogRecord(LogPosition("0", seq), encode_batch(record)))
    stage.apply(rows.to_arrow(seq), rows.messages)


def track(message_id: str, event: str, properties: dict[str, Any], **fields: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"type": "track", "messageId": message_id, "event": event, "userId": "u1"}
    message["properties"] = properties
    message.update(fields)
    return message
