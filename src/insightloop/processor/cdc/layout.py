"""The two lake tables of one captured source table, and how their schemas evolve.

Current state, ``cleaned.app_<table>``: the source columns, then
- ``_lsn`` (long): LSN of the last change applied to the row;
- ``_changed_at`` (timestamptz): commit time of that change;
- ``_deleted`` (boolean): the row was deleted (or truncated, or vanished from a snapshot).
Deleted rows stay as tombstones: their ``_lsn`` is what makes a late or redelivered older
change of the key a no-op instead of resurrecting it. Live rows: ``where not _deleted``.
Partitioned by ``bucket(16, <first key column>)``: a micro-batch rewrites only the buckets
its keys fall in (each bucket is one file, replaced whole), not the table.

History, ``cleaned.app_<table>_changes``: one row per applied change, append-only:
``event_id``, ``_op`` (c/u/d/r/t), ``_lsn``, ``_tx_id``, ``_changed_at``, ``_snapshot``
(the row came from a snapshot read), then the source columns holding the row's full image
*after* the change (unchanged TOAST values filled in from the earlier state; for a delete,
the last image), so a dbt SCD2 model is a window over ``(key, _lsn)``: ``valid_from`` =
``_changed_at``, ``valid_to`` = the next row's, ``_op = 'd'`` closes the key, ``'t'`` (no
key) closes every key. Rows deleted because a re-snapshot no longer had them get
``_op = 'd'`` with a ``vanished:`` event id. Partitioned by ``day(_changed_at)``.

Evolution (``pgtypes``): a new source column is added to both tables (older rows read
null); a promotable type change widens it in place; the key columns and table-level marks
live in table properties (``KEY_PROPERTY``, ``TRUNCATE_PROPERTY``).
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.transforms import BucketTransform, DayTransform
from pyiceberg.types import BooleanType, IcebergType, LongType, NestedField, StringType, TimestamptzType

#: Table property of both tables: JSON list of the source's primary-key columns.
KEY_PROPERTY = "insightloop.cdc.key"
#: Snapshot property of the current-state table: LSN of the last TRUNCATE applied.
TRUNCATE_PROPERTY = "insightloop.cdc-truncate-lsn"
BUCKETS = 16

STATE_META: tuple[tuple[str, IcebergType], ...] = (
    ("_lsn", LongType()),
    ("_changed_at", TimestamptzType()),
    ("_deleted", BooleanType()),
)
HISTORY_META: tuple[tuple[str, IcebergType], ...] = (
    ("event_id", StringType()),
    ("_op", StringType()),
    ("_lsn", LongType()),
    ("_tx_id", LongType()),
    ("_changed_at", TimestamptzType()),
    ("_snapshot", BooleanType()),
)
META_NAMES = frozenset(name for name, _ in STATE_META + HISTORY_META)


def state_schema(columns: Sequence[tuple[str, IcebergType]]) -> Schema:
    return _schema([*columns, *STATE_META])


def history_schema(columns: Sequence[tuple[str, IcebergType]]) -> Schema:
    return _schema([*HISTORY_META, *columns])


def state_spec(schema: Schema, key: Sequence[str]) -> PartitionSpec:
    source = schema.find_field(key[0])
    return PartitionSpec(PartitionField(source.field_id, 1000, BucketTransform(BUCKETS), f"{key[0]}_bucket"))


def history_spec(schema: Schema) -> PartitionSpec:
    source = schema.find_field("_changed_at")
    return PartitionSpec(PartitionField(source.field_id, 1000, DayTransform(), "changed_day"))


def source_columns(schema: Schema, meta: Sequence[tuple[str, IcebergType]]) -> dict[str, IcebergType]:
    """The schema's source columns (not ours), name → type, in order."""
    ours = {name for name, _ in meta}
    return {field.name: field.field_type for field in schema.fields if field.name not in ours}


def encode_key(key: Sequence[str]) -> str:
    return msgspec.json.encode(list(key)).decode()


def decode_key(text: str | None) -> list[str]:
    return list(msgspec.json.decode(text, type=list[str])) if text else []


def _schema(columns: Sequence[tuple[str, IcebergType]]) -> Schema:
    return Schema(
        *(NestedField(i, name, kind, required=False) for i, (name, kind) in enumerate(columns, start=1))
    )
