"""The raw layer's table: every envelope exactly as received, append-only.

One raw table per kind of source (``raw.sdk_events`` now; CDC and files add theirs), each
with the same envelope columns, so writers of different sources never contend for one
table's commits. Partitioned by source and ``day(received_at)``; ``ingest_seq`` numbers
the raw commits (1, 2, …) so later stages can read raw incrementally and say how far
they have read (see ``watermarks.RAW_SEQ``).
"""

from __future__ import annotations

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import TableAlreadyExistsError
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.transforms import DayTransform, IdentityTransform
from pyiceberg.types import BinaryType, LongType, NestedField, StringType, TimestamptzType

from insightloop.lake.maintenance import METADATA_PROPERTIES

SDK_EVENTS = "raw.sdk_events"

RAW_SCHEMA = Schema(
    NestedField(1, "event_id", StringType(), required=True, doc="dedup key (Segment messageId)"),
    NestedField(2, "source", StringType(), required=True, doc="configured source name, e.g. web"),
    NestedField(3, "stream", StringType(), required=True, doc="message type, or 'rejected'"),
    NestedField(4, "schema_name", StringType(), required=False, doc="event name for track, else type"),
    NestedField(5, "schema_version", StringType(), required=False),
    NestedField(6, "event_time", TimestamptzType(), required=False, doc="clock-skew corrected"),
    NestedField(7, "received_at", TimestamptzType(), required=True),
    NestedField(8, "subject_user_id", StringType(), required=False),
    NestedField(9, "subject_anonymous_id", StringType(), required=False),
    NestedField(10, "subject_account_id", StringType(), required=False),
    NestedField(11, "subject_email_sha256", StringType(), required=False),
    NestedField(12, "payload", BinaryType(), required=True, doc="exact bytes received"),
    NestedField(
        13, "delivery", StringType(), required=False, doc="JSON the transport added: type, sentAt, context"
    ),
    NestedField(14, "rejection", StringType(), required=False, doc="JSON {kind, field, reason} if rejected"),
    NestedField(15, "origin", StringType(), required=True, doc="log:<shard>:<offset>:<index>"),
    NestedField(16, "ingest_seq", LongType(), required=True, doc="raw commit sequence number"),
)

RAW_PARTITION_SPEC = PartitionSpec(
    PartitionField(source_id=2, field_id=1000, transform=IdentityTransform(), name="source"),
    PartitionField(source_id=7, field_id=1001, transform=DayTransform(), name="received_day"),
)

#: The Arrow schema of rows appended to a raw table.
RAW_ARROW_SCHEMA: pa.Schema = RAW_SCHEMA.as_arrow()


def ensure_raw_table(catalog: Catalog, identifier: str = SDK_EVENTS) -> Table:
    """Load the raw table, creating it on first use."""
    try:
        return catalog.create_table(
            identifier, schema=RAW_SCHEMA, partition_spec=RAW_PARTITION_SPEC, properties=METADATA_PROPERTIES
        )
    except TableAlreadyExistsError:
        return catalog.load_table(identifier)
