"""``quarantine.export_rows``: every bad row of every loaded file, with the file, its row
number, its record number in the file (``line``), a failure ``kind`` (``wrong_type``,
``missing_field``, ``invalid_utf8``, ``malformed_json``, ``wrong_column_count``,
``malformed_row``), the column concerned, a readable reason, and the row as received.

Derived from raw's ``rejected`` rows of one raw sequence (one file) in one commit recording
``watermarks.RAW_SEQ``: a replay of a sequence the table already holds adds nothing. A
rejected file (over the bad-row limit) has no rows in raw, so none here either: its status
says why. A corrected file's commit also removes the bad rows of the file it replaces.

``line`` is the record's number in the file, the header being 1: the line number, unless an
earlier quoted field holds a newline (such a record counts once). A row the CSV parser
refused has it in raw (``$.line`` of its delivery). A CSV row that parsed but failed a check
(a wrong type, a missing value) gets its ``row`` (parse order), plus one for the header, plus
one per refused record before it (a refused record's line tells how many parsed rows precede
it). A JSON line gets its ``row`` (the parser refuses none); Parquet has no lines (null).
Blank lines are not covered: the parsers skip them without a number, so a parsed row after
one gets too low a number (a refused row's, from the parser, is right).
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchTableError, TableAlreadyExistsError
from pyiceberg.expressions import BooleanExpression, EqualTo
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.transforms import DayTransform
from pyiceberg.types import BinaryType, LongType, NestedField, StringType, TimestamptzType

from insightloop.exports.landing import file_format
from insightloop.exports.raw_read import data_files, parquet_source
from insightloop.exports.sql import lit
from insightloop.lake.maintenance import METADATA_PROPERTIES
from insightloop.lake.watermarks import RAW_SEQ

EXPORT_QUARANTINE = "quarantine.export_rows"

SCHEMA = Schema(
    NestedField(1, "event_id", StringType(), required=True, doc="<sha256>:<row>, as in raw"),
    NestedField(2, "source", StringType(), required=True),
    NestedField(3, "entity", StringType(), required=True),
    NestedField(4, "file", StringType(), required=True),
    NestedField(5, "sha256", StringType(), required=True),
    NestedField(6, "period", StringType(), required=False),
    NestedField(7, "row", LongType(), required=True, doc="the row's number in raw (parse order)"),
    NestedField(
        8,
        "line",
        LongType(),
        required=False,
        doc=(
            "record number in the file (the header is 1); equals the line number unless an "
            "earlier quoted field holds a newline"
        ),
    ),
    NestedField(9, "kind", StringType(), required=True),
    NestedField(10, "column_name", StringType(), required=False),
    NestedField(11, "reason", StringType(), required=True),
    NestedField(12, "payload", BinaryType(), required=True, doc="the row as received"),
    NestedField(13, "origin", StringType(), required=True, doc="file:<path>:<row>"),
    NestedField(14, "ingest_seq", LongType(), required=True),
    NestedField(15, "quarantined_at", TimestamptzType(), required=True),
)
SPEC = PartitionSpec(PartitionField(15, 1000, DayTransform(), "quarantined_day"))
ARROW_SCHEMA = SCHEMA.as_arrow()


def load_table(catalog: Catalog) -> Table | None:
    try:
        return catalog.load_table(EXPORT_QUARANTINE)
    except NoSuchTableError:
        return None


def ensure_table(catalog: Catalog) -> Table:
    try:
        return catalog.create_table(
            EXPORT_QUARANTINE, schema=SCHEMA, partition_spec=SPEC, properties=METADATA_PROPERTIES
        )
    except TableAlreadyExistsError:
        return catalog.load_table(EXPORT_QUARANTINE)


def bad_rows(connection: duckdb.DuckDBPyConnection, raw: Table, seq: int, now: datetime) -> pa.Table:
    """The rejected raw rows of sequence ``seq`` as quarantine rows (bounded by the
    bad-row limit, so read whole), each with its record number in the file (``line``)."""
    paths = data_files(raw, [seq])
    if not paths:
        return ARROW_SCHEMA.empty_table()
    # ``refused``: each record the parser refused, as the number of parsed rows before it
    # (its line, less the header and the refused records up to and including it). A parsed
    # row comes after exactly the refused records with fewer parsed rows before them, so its
    # record (under a header) is its row number, plus 1 for the header, plus their count.
    query = f"""
        WITH bad AS (
            SELECT event_id, source, schema_name AS entity,
                   json_extract_string(delivery, '$.file') AS file,
                   json_extract_string(delivery, '$.sha256') AS sha256,
                   json_extract_string(delivery, '$.period') AS period,
                   CAST(json_extract(delivery, '$.row') AS BIGINT) AS "row",
                   CAST(json_extract(delivery, '$.line') AS BIGINT) AS line,
                   coalesce(json_extract_string(rejection, '$.kind'), 'rejected') AS kind,
                   json_extract_string(rejection, '$.field') AS column_name,
                   coalesce(json_extract_string(rejection, '$.reason'), rejection, '') AS reason,
                   payload, origin, ingest_seq
            FROM {parquet_source(paths)}
            WHERE ingest_seq = {int(seq)} AND stream = 'rejected'
        ),
        refused AS (
            SELECT line - 1 - row_number() OVER (ORDER BY line) AS parsed_before
            FROM bad WHERE line IS NOT NULL
        )
        SELECT * EXCLUDE (ingest_seq), ingest_seq,
               {lit(now.isoformat())}::TIMESTAMPTZ AS quarantined_at,
               "row" + 1 + (SELECT count(*) FROM refused WHERE parsed_before < bad."row")
                   AS {_UNDER_HEADER}
        FROM bad
        ORDER BY "row"
    """
    rows = connection.sql(query).to_arrow_table()
    return _number_lines(rows).cast(ARROW_SCHEMA)


#: The query's record number of a parsed row in a file with a header (CSV).
_UNDER_HEADER = "__insightloop_record"


def _number_lines(rows: pa.Table) -> pa.Table:
    """``rows`` with ``line`` set for the parsed rows too, by their file's format (its name,
    the same for every row): a CSV row's record under the header, a JSON line's row number;
    Parquet rows keep none."""
    under_header = rows.column(_UNDER_HEADER)
    rows = rows.drop_columns([_UNDER_HEADER])
    if rows.num_rows == 0:
        return rows
    name = str(rows.column("file")[0].as_py() or "").rsplit("/", 1)[-1]
    parsed = {"csv": under_header, "jsonl": rows.column("row")}.get(file_format(name)[0] or "")
    if parsed is None:
        return rows
    index = rows.schema.get_field_index("line")
    return rows.set_column(index, "line", pc.coalesce(rows.column("line"), parsed))


def append(table: Table, rows: pa.Table, seq: int, replaces: str | None = None) -> None:
    """One commit of ``rows``, recording ``seq``; a corrected file's commit also removes the
    rows of the file it ``replaces`` (its sha256), whose bad rows are no longer anyone's to
    fix (raw keeps them, as received)."""
    properties = {RAW_SEQ: str(seq)}
    if replaces is None:
        table.append(rows, snapshot_properties=properties)
    else:
        replaced: BooleanExpression = EqualTo("sha256", replaces)  # type: ignore[call-arg, arg-type]
        table.overwrite(rows, overwrite_filter=replaced, snapshot_properties=properties)
