"""Helpers for the processor's tests: log records as the collector writes them, and a
stage-2 stand-in that keeps its rows and watermark in an Iceberg table like the real one."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.types import LongType, NestedField, StringType

from insightloop.collected import FORMAT_VERSION, CollectedBatch, CollectedEvent, Rejection, encode_batch
from insightloop.lake.watermarks import RAW_SEQ, committed_property
from insightloop.log import Log
from insightloop.segment.message import Message

RECEIVED_AT_US = 1_764_151_200_000_000  # 2025-11-26T10:00:00Z


def track(message_id: str, **fields: Any) -> dict[str, Any]:
    return {"type": "track", "messageId": message_id, "userId": "u1", "event": "Report Created", **fields}


def record(
    events: Sequence[dict[str, Any]],
    *,
    source: str = "web",
    received_at_us: int = RECEIVED_AT_US,
    sent_at: str | None = None,
    context: bytes | None = None,
    rejected: Sequence[Rejection] = (),
    types: Sequence[str] | None = None,
) -> bytes:
    """One log record: a CollectedBatch of ``events`` (their JSON bytes kept exactly)."""
    collected = [
        CollectedEvent(
            message_id=str(event["messageId"]),
            type=types[i] if types else str(event.get("type", "track")),
            raw=orjson.dumps(event),
        )
        for i, event in enumerate(events)
    ]
    return encode_batch(
        CollectedBatch(FORMAT_VERSION, source, received_at_us, sent_at, context, collected, list(rejected))
    )


_fills = itertools.count()


def fill(log: Log, shard: str, count: int, per_record: int = 3) -> list[str]:
    """Append ``count`` records of ``per_record`` track events; returns their message ids."""
    prefix = f"{shard}-{next(_fills)}"
    ids: list[str] = []
    records = []
    for r in range(count):
        events = [track(f"{prefix}-{r}-{i}") for i in range(per_record)]
        ids.extend(e["messageId"] for e in events)
        records.append(record(events))
    log.append(shard, records)
    return ids


STAGE_SCHEMA = Schema(
    NestedField(1, "event_id", StringType(), required=True),
    NestedField(2, "origin", StringType(), required=True),
    NestedField(3, "ingest_seq", LongType(), required=True),
)


class TableStage:
    """A DerivedStage that copies raw rows into one Iceberg table, recording its watermark in
    the same commit (as CleanedStage does per table). ``fail(seq)`` may raise to inject a
    crash before the stage's commit."""

    def __init__(self, catalog: Catalog, identifier: str = "cleaned.fake_events") -> None:
        self.catalog = catalog
        self.identifier = identifier
        self.fail: Callable[[int], None] | None = None
        self.calls: list[tuple[int, bool]] = []  # (rows, had messages)
        try:
            catalog.load_table(identifier)
        except NoSuchTableError:
            catalog.create_table(identifier, STAGE_SCHEMA)

    def table(self) -> Table:
        return self.catalog.load_table(self.identifier)

    def watermark(self) -> int:
        return int(committed_property(self.table(), RAW_SEQ) or 0)

    def apply(self, raw: pa.Table, messages: Sequence[Message | None] | None = None) -> None:
        self.calls.append((raw.num_rows, messages is not None))
        if messages is not None:
            assert len(messages) == raw.num_rows
        if raw.num_rows == 0:
            return
        seq = pc.max(raw["ingest_seq"]).as_py()
        if self.fail is not None:
            self.fail(seq)
        table = self.table()
        done = int(committed_property(table, RAW_SEQ) or 0)
        fresh = raw.filter(pc.greater(raw["ingest_seq"], done))
        if fresh.num_rows == 0:
            return
        rows = fresh.select(["event_id", "origin", "ingest_seq"]).cast(STAGE_SCHEMA.as_arrow())
        table.append(rows, snapshot_properties={RAW_SEQ: str(seq)})

    def rows(self) -> pa.Table:
        return self.table().scan().to_arrow()
