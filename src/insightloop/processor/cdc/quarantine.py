"""``quarantine.cdc_changes``: every change, or value of one, that stage 2 could not apply,
with the reason, kept as data (never dropped). One row per problem: the change's id,
source table, op and LSN, a failure ``kind`` (``types.FailureKind``: ``type_conflict`` for
an incompatible type change, ``wrong_type`` for a value its column cannot hold,
``missing_field`` for a change without its key, ``malformed_json`` for an envelope that
does not decode), the ``column`` concerned, a readable ``reason`` and the envelope's bytes.
A change with a bad value is still applied (the column keeps its earlier value); one
without its key or envelope is not. Appended once per batch, recording ``RAW_SEQ``.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.transforms import DayTransform
from pyiceberg.types import BinaryType, LongType, NestedField, StringType, TimestamptzType

from insightloop.processor.cdc import store
from insightloop.processor.cdc.events import Problem

CDC_QUARANTINE = "quarantine.cdc_changes"

SCHEMA = Schema(
    NestedField(1, "event_id", StringType(), required=True),
    NestedField(2, "source", StringType(), required=True),
    NestedField(3, "table_name", StringType(), required=False, doc="<schema>.<table>"),
    NestedField(4, "op", StringType(), required=False),
    NestedField(5, "lsn", LongType(), required=False),
    NestedField(6, "kind", StringType(), required=True, doc="types.FailureKind"),
    NestedField(7, "column_name", StringType(), required=False),
    NestedField(8, "reason", StringType(), required=True),
    NestedField(9, "payload", BinaryType(), required=True, doc="the change envelope's bytes"),
    NestedField(10, "origin", StringType(), required=True, doc="log:<shard>:<offset>:<index>"),
    NestedField(11, "ingest_seq", LongType(), required=True),
    NestedField(12, "quarantined_at", TimestamptzType(), required=True),
)
SPEC = PartitionSpec(PartitionField(12, 1000, DayTransform(), "quarantined_day"))
ARROW_SCHEMA = SCHEMA.as_arrow()


def ensure_table(catalog: Catalog) -> Table:
    return store.load(catalog, CDC_QUARANTINE) or store.create(catalog, CDC_QUARANTINE, SCHEMA, SPEC, "[]")


def rows(problems: Sequence[Problem], now_us: int) -> pa.Table:
    columns = {
        "event_id": [p.event_id for p in problems],
        "source": [p.source for p in problems],
        "table_name": [p.table for p in problems],
        "op": [p.op for p in problems],
        "lsn": [p.lsn for p in problems],
        "kind": [str(p.kind) for p in problems],
        "column_name": [p.column for p in problems],
        "reason": [p.reason for p in problems],
        "payload": [p.payload for p in problems],
        "origin": [p.origin for p in problems],
        "ingest_seq": [p.seq for p in problems],
        "quarantined_at": [now_us] * len(problems),
    }
    return pa.Table.from_arrays(
        [pa.array(columns[f.name], type=f.type) for f in ARROW_SCHEMA], schema=ARROW_SCHEMA
    )
