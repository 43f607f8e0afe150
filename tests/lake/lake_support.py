"""A small lake table and commits to it, recording progress the way our writers do."""

from __future__ import annotations

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.types import LongType, NestedField, StringType

from insightloop.lake.watermarks import LOG_POSITIONS, RAW_SEQ

EVENTS = Schema(
    NestedField(1, "event_id", StringType(), required=True),
    NestedField(2, "ingest_seq", LongType(), required=True),
)


def events_table(catalog: Catalog, identifier: str = "cleaned.events") -> Table:
    return catalog.create_table(identifier, EVENTS)


def commit(table: Table, seq: int, properties: dict[str, str] | None = None) -> None:
    """Append one row numbered ``seq``, recording it as progress unless ``properties`` are given."""
    rows = pa.Table.from_pylist([{"event_id": f"e{seq}", "ingest_seq": seq}], schema=EVENTS.as_arrow())
    if properties is None:
        properties = {RAW_SEQ: str(seq), LOG_POSITIONS: f'{{"shard-0":{seq}}}'}
    table.append(rows, snapshot_properties=properties)


def snapshot_ids(table: Table) -> list[int]:
    """The table's snapshots, oldest first."""
    table.refresh()
    return [s.snapshot_id for s in sorted(table.snapshots(), key=lambda s: s.sequence_number)]


def event_ids(table: Table) -> list[str]:
    table.refresh()
    return sorted(table.scan().to_arrow()["event_id"].to_pylist())
