"""``cleaned.crm_<entity>``: one row per primary key, the latest version winning, typed by
the export contract; derived from raw a run of files (raw sequences) at a time: the files
loaded together (the parts of a day, a folder), or a correction alone.

Columns: the contract's (typed; a file's new columns under the ``add`` policy as strings,
added in place: earlier rows read null), then ``_source``, ``_period``, ``_file_sha256``,
``_ingest_seq``, ``_row`` (the row's file and place in raw) and ``_loaded_at``.

Applying files is one DuckDB query and one Iceberg commit:

- ``incoming``: each file's good rows, typed: its staged rows (``staging``: stage 1 computed
  the typed values when it checked them) when they are there and their types are the
  table's, else derived from raw, cast to their column types by the same SQL;
- ``kept``: the table's rows, except those of the earlier file this file replaces (a
  corrected export: ``FileRecord.replaces``);
- ``revived``: for the keys only that earlier file held, their rows in raw from the other
  files still current (an older day's version that the replaced file had beaten);
- the union, one row per key: the latest ``updated_at`` wins, then the later load
  (``_ingest_seq``), then the later row in the file. The ranking runs over narrow rows (key,
  order, identity) and the losers are then dropped from the wide rows by an anti join.

DuckDB writes the result into new data files (with the table's field ids; it spills to disk
rather than holding the rows, so memory stays bounded), and one OVERWRITE snapshot swaps
the table's files for them, adds new columns and records ``watermarks.RAW_SEQ``: readers see
the old rows or the new, never a mix; a crash before the commit changes nothing. Applying a
sequence twice gives the same rows (the union's duplicates tie and collapse), and the
sequence property lets a replay skip the table anyway.

The table is rewritten whole at each merge (unpartitioned: pyiceberg streams writes only
into unpartitioned tables), which is why files loaded together share one merge; see the
module ``insightloop.exports`` for what that costs.
"""

from __future__ import annotations

import glob
import shutil
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchTableError, TableAlreadyExistsError
from pyiceberg.schema import Schema
from pyiceberg.table import Table, _parquet_files_to_data_files
from pyiceberg.types import IcebergType, LongType, NestedField, StringType, TimestamptzType

from insightloop.exports.contract import STRING, ColumnType, ExportContract
from insightloop.exports.raw_columns import EXPORT_STREAM
from insightloop.exports.raw_load import FileRecord
from insightloop.exports.raw_read import data_files, local_path, parquet_source
from insightloop.exports.reader import typed_value
from insightloop.exports.sql import ident, json_key, lit
from insightloop.exports.staging import LOADED_AT, REJECTED, ROW, Staged
from insightloop.lake.maintenance import METADATA_PROPERTIES
from insightloop.lake.watermarks import RAW_SEQ

META: tuple[tuple[str, IcebergType], ...] = (
    ("_source", StringType()),
    ("_period", StringType()),
    ("_file_sha256", StringType()),
    ("_ingest_seq", LongType()),
    ("_row", LongType()),
    ("_loaded_at", TimestamptzType()),
)
META_NAMES = frozenset(name for name, _ in META)
#: Data files DuckDB writes for the table are about this big.
FILE_BYTES = 256 << 20
#: Table property: the primary key, comma-separated (for people and tools).
KEY_PROPERTY = "insightloop.export.key"


@dataclass(frozen=True)
class Applied:
    table: str
    rows: int
    replaced: str | None


def load_table(catalog: Catalog, contract: ExportContract) -> Table | None:
    try:
        return catalog.load_table(contract.table)
    except NoSuchTableError:
        return None


def ensure_table(catalog: Catalog, contract: ExportContract, columns: Sequence[str]) -> Table:
    fields = [(name, contract.column_type(name).iceberg) for name in columns] + list(META)
    schema = Schema(
        *(NestedField(i, name, kind, required=False) for i, (name, kind) in enumerate(fields, start=1))
    )
    properties = {**METADATA_PROPERTIES, KEY_PROPERTY: ",".join(contract.primary_key)}
    try:
        return catalog.create_table(contract.table, schema=schema, properties=properties)
    except TableAlreadyExistsError:
        return catalog.load_table(contract.table)


def apply_files(
    connection: duckdb.DuckDBPyConnection,
    table: Table,
    raw: Table,
    contract: ExportContract,
    records: Sequence[FileRecord],
    live: Sequence[FileRecord],
    staged: Sequence[Staged | None] = (),
    journal: Callable[[str], None] | None = None,
) -> Applied:
    """Merge the files ``records`` (each one's rows in ``raw``, or ``staged``: the same
    order, None where gone) into ``table`` in one commit, recording the last one's raw
    sequence. Several files are one rewrite of the table; a correction (a record that
    ``replaces`` another) must come alone. ``live``: the current file of every source and
    period of the entity (for ``revived``)."""
    if len(records) > 1 and any(record.replaces for record in records):
        raise ValueError("a corrected file is merged alone: its merge takes out the file it replaces")
    staged = list(staged) or [None] * len(records)
    seen: dict[str, None] = {}
    for record, stage in zip(records, staged, strict=True):
        seen.update(
            dict.fromkeys(stage.columns if stage is not None else _file_columns(connection, raw, record))
        )
    file_columns = list(seen)
    present = {field.name for field in table.schema().fields}
    added = [name for name in file_columns if name not in present and name not in META_NAMES]
    if contract.new_columns != "add":
        added = [name for name in added if name in contract.columns]
    types = {field.name: field.field_type for field in table.schema().fields}
    types.update({name: contract.column_type(name).iceberg for name in added})
    columns = [name for name in types if name not in META_NAMES]
    old_files = [task.file for task in table.scan().plan_files()] if table.metadata.current_snapshot() else []
    # Where the table's type of a column is not the contract's, a file's rows come from raw.
    staged = [None if stage is None or _retyped(stage, types) else stage for stage in staged]
    old_paths = [local_path(f.file_path) for f in old_files]
    query = _merge_sql(contract, records, raw, columns, types, old_paths, live, staged)
    replaced = records[0].replaces if len(records) == 1 else None
    if query is None:
        return Applied(contract.table, 0, replaced)
    with table.transaction() as tx:
        if added:
            with tx.update_schema() as update:
                for name in added:
                    update.add_column(name, types[name])
        update_snapshot = tx.update_snapshot(snapshot_properties={RAW_SEQ: str(records[-1].seq)})
        with update_snapshot.overwrite() as overwrite:
            schema = tx.table_metadata.schema()
            paths = _write(connection, query, schema, table.location(), overwrite.commit_uuid, journal)
            for data_file in old_files:
                overwrite.delete_data_file(data_file)
            for data_file in _parquet_files_to_data_files(tx.table_metadata, paths, table.io):
                overwrite.append_data_file(data_file)
    table.refresh()
    snapshot = table.metadata.current_snapshot()
    total = (
        snapshot.summary.additional_properties.get("total-records", "0")
        if snapshot and snapshot.summary
        else "0"
    )
    return Applied(contract.table, int(total), replaced)


def _retyped(staged: Staged, types: dict[str, IcebergType]) -> bool:
    """Whether a staged column's type is not the table's (the table's type is then kept)."""
    return any(kind != sql_type(types[name]) for name, kind in staged.columns.items() if name in types)


def _write(
    connection: duckdb.DuckDBPyConnection,
    query: str,
    schema: Schema,
    location: str,
    commit: uuid.UUID,
    journal: Callable[[str], None] | None,
) -> list[str]:
    """Run ``query`` into new data files of the table (DuckDB writes them, in the table's
    schema with its field ids, spilling to disk rather than holding the rows); their paths.
    Nothing references them until the commit: a crash leaves them unreferenced."""
    folder = f"{local_path(location)}/data/{commit}"
    if journal is not None:
        journal(folder)
    Path(folder).parent.mkdir(parents=True, exist_ok=True)
    columns = []
    for field in schema.fields:
        columns.append(f"CAST({ident(field.name)} AS {sql_type(field.field_type)}) AS {ident(field.name)}")
    ids = ", ".join(f"{ident(field.name)}: {field.field_id}" for field in schema.fields)
    try:
        connection.execute(
            f"COPY (SELECT {', '.join(columns)} FROM ({query})) TO {lit(folder)} "
            f"(FORMAT parquet, COMPRESSION zstd, FIELD_IDS {{{ids}}}, FILE_SIZE_BYTES {FILE_BYTES}, "
            f"FILENAME_PATTERN 'part-{{i}}')"
        )
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)  # a full disk stays full otherwise
        raise
    return sorted(f"file://{path}" for path in glob.glob(f"{glob.escape(folder)}/*.parquet"))


def _file_columns(connection: duckdb.DuckDBPyConnection, raw: Table, record: FileRecord) -> list[str]:
    """The columns of the file's payloads (keys of its first good rows), in order."""
    paths = data_files(raw, [record.seq])
    if not paths:
        return []
    rows = connection.sql(
        f"SELECT json_keys(decode(payload)::JSON) FROM {parquet_source(paths)} "
        f"WHERE ingest_seq = {int(record.seq)} AND stream = {lit(EXPORT_STREAM)} LIMIT 1000"
    ).fetchall()
    seen: dict[str, None] = {}
    for (keys,) in rows:
        seen.update(dict.fromkeys(keys or []))
    return list(seen)


def _typed(columns: Sequence[str], types: dict[str, IcebergType], period: str, sha: str) -> str:
    """SELECT list turning raw rows into typed cleaned rows (the payload is parsed once, into
    a struct of text values: ``_p``)."""
    out = [f"{_typed_value(f'_p.{ident(name)}', types[name])} AS {ident(name)}" for name in columns]
    out += [
        "source AS _source",
        f"{period} AS _period",
        f"{sha} AS _file_sha256",
        "ingest_seq AS _ingest_seq",
        # event_id is ``<sha256>:<row>``: cheaper than parsing the delivery JSON (and the
        # incoming rows then never read the delivery column at all).
        "CAST(split_part(event_id, ':', 2) AS BIGINT) AS _row",
        "received_at AS _loaded_at",
    ]
    return ", ".join(out)


def _typed_value(text: str, kind: IcebergType) -> str:
    """The typed value of a column from its text, as stage 1 computes it (``reader``)."""
    return typed_value(text, STRING if isinstance(kind, StringType) else ColumnType(sql_type(kind), kind))


def _staged(columns: Sequence[str], types: dict[str, IcebergType], record: FileRecord, staged: Staged) -> str:
    """SELECT of the file's good rows from its staged rows (typed already)."""
    out = [
        f"{ident(name)}" if name in staged.columns else f"NULL::{sql_type(types[name])} AS {ident(name)}"
        for name in columns
    ]
    out += [
        f"{lit(record.source)} AS _source",
        f"{lit(record.period)} AS _period",
        f"{lit(record.sha256)} AS _file_sha256",
        f"{int(record.seq)}::BIGINT AS _ingest_seq",
        f"{ROW} AS _row",
        f"{LOADED_AT} AS _loaded_at",
    ]
    return f"SELECT {', '.join(out)} FROM {parquet_source(staged.paths)} WHERE NOT {REJECTED}"


def _parsed(columns: Sequence[str], source: str) -> str:
    """``source`` with ``_p``: the payload as a struct of the columns' text values."""
    shape = "{" + ", ".join(f'{json_key(name)}: "VARCHAR"' for name in columns) + "}"
    return f"(SELECT *, json_transform(decode(payload), {lit(shape)}) AS _p FROM {source})"


def _incoming(
    record: FileRecord,
    staged: Staged | None,
    raw: Table,
    columns: Sequence[str],
    types: dict[str, IcebergType],
) -> str | None:
    """SELECT of a file's good rows, typed: from its staged rows, else from raw (None: it
    has none)."""
    if staged is not None:
        return _staged(columns, types, record, staged) if staged.paths else None
    raw_paths = data_files(raw, [record.seq])
    if not raw_paths:
        return None
    return (
        f"SELECT {_typed(columns, types, lit(record.period), lit(record.sha256))} "
        f"FROM {_parsed(columns, parquet_source(raw_paths))} "
        f"WHERE ingest_seq = {int(record.seq)} AND stream = {lit(EXPORT_STREAM)}"
    )


#: Which part of a merge's union a row comes from (a name no file column takes).
_PART = "__insightloop_part"


def sql_type(kind: IcebergType) -> str:
    """DuckDB's name of an Iceberg type of a cleaned column."""
    return _SQL_TYPES.get(str(kind), "VARCHAR")


_SQL_TYPES = {
    "long": "BIGINT",
    "int": "INTEGER",
    "double": "DOUBLE",
    "float": "FLOAT",
    "boolean": "BOOLEAN",
    "timestamptz": "TIMESTAMPTZ",
    "timestamp": "TIMESTAMP",
    "date": "DATE",
}


def _merge_sql(
    contract: ExportContract,
    records: Sequence[FileRecord],
    raw: Table,
    columns: Sequence[str],
    types: dict[str, IcebergType],
    old_paths: Sequence[str],
    live: Sequence[FileRecord],
    staged: Sequence[Staged | None],
) -> str | None:
    """The merge query (None: no rows at all, nothing to commit)."""
    key = ", ".join(ident(name) for name in contract.primary_key)
    parts = [
        part
        for record, stage in zip(records, staged, strict=True)
        if (part := _incoming(record, stage, raw, columns, types))
    ]
    # Only a correction comes alone; its merge drops the rows of the file it replaces.
    record = records[0]
    replaces = record.replaces if len(records) == 1 else None
    ctes = []
    if old_paths:
        old = parquet_source(old_paths, union_by_name=True)
        replaced = f"_file_sha256 = {lit(replaces or '')}"
        ctes.append(f"old AS (SELECT * FROM {old})")
        parts.append(f"SELECT * FROM old WHERE NOT ({replaced})" if replaces else "SELECT * FROM old")
        others = [r.seq for r in live if r.sha256 not in (record.sha256, replaces)]
        other_paths = data_files(raw, others) if replaces else []
        if other_paths:
            in_seqs = ", ".join(str(seq) for seq in others)
            period = "json_extract_string(delivery, '$.period')"
            sha = "json_extract_string(delivery, '$.sha256')"
            ctes.append(f"gone AS (SELECT DISTINCT {key} FROM old WHERE {replaced})")
            typed = _typed(columns, types, period, sha)
            parts.append(
                f"SELECT * FROM (SELECT {typed} FROM {_parsed(columns, parquet_source(other_paths))} "
                f"WHERE ingest_seq IN ({in_seqs}) AND stream = {lit(EXPORT_STREAM)}) "
                f"WHERE ({key}) IN (SELECT ({key}) FROM gone)"
            )
    if not parts:
        return None
    # Each part's rows are told apart by (part, _ingest_seq, _row): a raw row is in a part
    # at most once (the same row can be both incoming and old when a sequence is applied
    # again; the part separates them).
    union = " UNION ALL BY NAME ".join(
        f"(SELECT {i} AS {_PART}, * FROM ({part}))" for i, part in enumerate(parts)
    )
    updated = contract.updated_at
    order = [f"{ident(updated)} DESC NULLS LAST"] if updated is not None and updated in columns else []
    order += ["_ingest_seq DESC", "_row DESC", _PART]
    identity = f"{_PART}, _ingest_seq, _row"
    # The window ranks narrow rows (the key, the order, the identity) and names the losers;
    # the wide rows stream past them (an anti join). Ranking the wide rows themselves made
    # DuckDB buffer and sort every column: about half of a merge's time.
    ctes += [
        f"u AS NOT MATERIALIZED (SELECT * FROM ({union}))",
        f"losers AS (SELECT {identity} FROM u "
        f"QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY {', '.join(order)}) > 1)",
    ]
    return f"WITH {', '.join(ctes)} SELECT * EXCLUDE ({_PART}) FROM u ANTI JOIN losers USING ({identity})"
