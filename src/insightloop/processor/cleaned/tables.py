"""The cleaned tables' fixed shapes, after Segment's warehouse schema.

Namespace ``cleaned``: one table per Segment call (``tracks``, ``pages``, ``screens``,
``identifies``, ``groups``, ``aliases``), one per track event (``cleaned.<event>``: the
``tracks`` columns plus the properties), and ``users`` (latest traits per user). Every
event table has the common columns below plus ``context_*`` (the event's context, over the
batch's, flattened); pages and screens add their properties as columns, identifies and
groups their traits. Partitioned by ``day(timestamp)``, so a late event lands in its day.

``quarantine.sdk_events`` holds the rows that could not become cleaned rows, with why.

Fixed columns are optional (nullable) like every column added later, so rows written
under any version of a schema stay valid.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
from pyiceberg.partitioning import UNPARTITIONED_PARTITION_SPEC, PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.transforms import DayTransform
from pyiceberg.types import BinaryType, IcebergType, LongType, NestedField, StringType, TimestamptzType

NAMESPACE = "cleaned"
QUARANTINE = "quarantine.sdk_events"

STRING = StringType()
TIME = TimestamptzType()
ARROW_TIME = pa.timestamp("us", tz="UTC")

#: Columns of every event table: the message id, who, and when (Segment's names).
COMMON: tuple[tuple[str, IcebergType, str], ...] = (
    ("id", STRING, "the event's messageId"),
    ("source", STRING, "the configured SDK source that sent it"),
    ("user_id", STRING, "userId"),
    ("anonymous_id", STRING, "anonymousId"),
    ("timestamp", TIME, "when it happened: the client's time corrected for clock skew"),
    ("original_timestamp", TIME, "the client's own timestamp, uncorrected"),
    ("sent_at", TIME, "when the client sent it (the event's or its batch's sentAt)"),
    ("received_at", TIME, "when the collector received it"),
    ("loaded_at", TIME, "when this row was written (processing time)"),
)


@dataclass(frozen=True, slots=True)
class TableSpec:
    """One table's fixed columns and layout. ``dynamic`` names the JSON object whose keys
    become columns (``properties``/``traits``) and ``prefix`` what guards their names."""

    identifier: str
    columns: tuple[tuple[str, IcebergType, str], ...]
    partition_by: str | None = "timestamp"
    dynamic: str | None = None
    prefix: str = "property"
    has_context: bool = True

    @property
    def fixed_names(self) -> frozenset[str]:
        return frozenset(name for name, _, _ in self.columns)

    def schema(self) -> Schema:
        fields = [
            NestedField(i, name, iceberg_type, required=False, doc=doc)
            for i, (name, iceberg_type, doc) in enumerate(self.columns, start=1)
        ]
        return Schema(*fields)

    def partition_spec(self) -> PartitionSpec:
        if self.partition_by is None:
            return UNPARTITIONED_PARTITION_SPEC
        source_id = 1 + [name for name, _, _ in self.columns].index(self.partition_by)
        return PartitionSpec(
            PartitionField(source_id, 1000, DayTransform(), f"{self.partition_by}_day"),
        )


def _event_table(
    name: str, extra: tuple[tuple[str, IcebergType, str], ...], dynamic: str | None
) -> TableSpec:
    prefix = "trait" if dynamic == "traits" else "property"
    return TableSpec(f"{NAMESPACE}.{name}", COMMON + extra, dynamic=dynamic, prefix=prefix)


_TRACK_EXTRA = (
    ("event", STRING, "the event name, snake_case (the name of its own table)"),
    ("event_text", STRING, "the event name as sent"),
)
_PAGE_EXTRA = (("name", STRING, "the page or screen name"), ("category", STRING, "its category"))

TRACKS = _event_table("tracks", _TRACK_EXTRA, None)
PAGES = _event_table("pages", _PAGE_EXTRA, "properties")
SCREENS = _event_table("screens", _PAGE_EXTRA, "properties")
IDENTIFIES = _event_table("identifies", (), "traits")
GROUPS = _event_table("groups", (("group_id", STRING, "groupId"),), "traits")
ALIASES = _event_table("aliases", (("previous_id", STRING, "previousId"),), None)

#: Message type → its table.
BY_TYPE: dict[str, TableSpec] = {
    "track": TRACKS,
    "page": PAGES,
    "screen": SCREENS,
    "identify": IDENTIFIES,
    "group": GROUPS,
    "alias": ALIASES,
}

#: Per user, the column name → event time (µs) of the identify its value came from.
TRAIT_TIMES = "traits_updated_at"

USERS = TableSpec(
    f"{NAMESPACE}.users",
    (
        ("id", STRING, "userId"),
        ("received_at", TIME, "when the user's newest identify was received"),
        ("timestamp", TIME, "when the user's newest identify happened"),
        ("loaded_at", TIME, "when this row was written (processing time)"),
        (TRAIT_TIMES, STRING, "JSON: trait column → event time (µs) of the identify its value came from"),
    ),
    partition_by=None,
    dynamic="traits",
    prefix="trait",
    has_context=False,
)

QUARANTINE_SPEC = TableSpec(
    QUARANTINE,
    (
        ("event_id", STRING, "the raw row's event id"),
        ("source", STRING, "the SDK source"),
        ("stream", STRING, "the raw row's stream (message type, or 'rejected')"),
        ("kind", STRING, "failure kind (types.FailureKind)"),
        ("field", STRING, "the field at fault, when one is"),
        ("reason", STRING, "what is wrong, for people"),
        ("payload", BinaryType(), "the exact bytes received"),
        ("received_at", TIME, "when the collector received it"),
        ("origin", STRING, "where in the log it came from"),
        ("ingest_seq", LongType(), "the raw commit that holds it"),
        ("quarantined_at", TIME, "when this row was written (processing time)"),
        # Added in place to older tables (their rows read null): string columns only.
        ("contract", STRING, "the contract tried (kind/name/version), for contract failures"),
        ("violations", STRING, "every violation, JSON: [{pointer, keyword, message}]"),
    ),
    partition_by="received_at",
    has_context=False,
)

#: Names an event's own table must not take.
FIXED_TABLES = frozenset(spec.identifier.split(".", 1)[1] for spec in (*BY_TYPE.values(), USERS))


def arrow_type_of(iceberg_type: IcebergType) -> pa.DataType:
    """The Arrow type rows carry for a fixed column."""
    if iceberg_type == TIME:
        return ARROW_TIME
    if iceberg_type == BinaryType():
        return pa.binary()
    if iceberg_type == LongType():
        return pa.int64()
    return pa.string()


def event_spec(table_name: str) -> TableSpec:
    """The table of one track event: the tracks columns plus its properties."""
    return TableSpec(f"{NAMESPACE}.{table_name}", TRACKS.columns, dynamic="properties")
