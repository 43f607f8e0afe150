"""The lake side of one source table: its two Iceberg tables, created on first use, read by
bucket and written one catalog commit each.

``read_state`` returns the files of the buckets a batch's keys fall in (all files for a
table-wide change) and their rows; ``replace_state`` swaps exactly those files for the
rewritten rows in one OVERWRITE snapshot (deleted files named one by one, so a concurrent
rewrite of them fails the commit instead of being undone). Schema evolution, key property
and the rows go in the same transaction, recording ``watermarks.RAW_SEQ``: readers never
see a column without its rows, and a replay skips what the table already holds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchTableError, TableAlreadyExistsError
from pyiceberg.expressions import AlwaysTrue
from pyiceberg.io.pyarrow import ArrowScan, _dataframe_to_data_files, schema_to_pyarrow
from pyiceberg.partitioning import PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import FileScanTask, Table, Transaction

from insightloop.lake.maintenance import METADATA_PROPERTIES
from insightloop.lake.watermarks import RAW_SEQ, committed_property
from insightloop.processor.cdc.evolve import Evolution
from insightloop.processor.cdc.layout import KEY_PROPERTY


def load(catalog: Catalog, identifier: str) -> Table | None:
    try:
        return catalog.load_table(identifier)
    except NoSuchTableError:
        return None


def create(catalog: Catalog, identifier: str, schema: Schema, spec: PartitionSpec, key: str) -> Table:
    try:
        return catalog.create_table(
            identifier,
            schema=schema,
            partition_spec=spec,
            properties={**METADATA_PROPERTIES, KEY_PROPERTY: key},
        )
    except TableAlreadyExistsError:
        return catalog.load_table(identifier)


def table_seq(table: Table | None) -> int:
    """The highest raw ``ingest_seq`` ``table`` holds (0: none, or no table)."""
    if table is None:
        return 0
    value = committed_property(table, RAW_SEQ)
    return int(value) if value is not None else 0


def arrow_schema(table: Table, evolution: Evolution | None = None) -> pa.Schema:
    """The table's Arrow schema once ``evolution`` is applied."""
    schema = schema_to_pyarrow(table.schema(), include_field_ids=False)
    if evolution is None:
        return schema
    for name, kind in evolution.added:
        schema = schema.append(pa.field(name, schema_to_pyarrow(kind), nullable=True))
    for name, kind in evolution.promoted:
        index = schema.get_field_index(name)
        schema = schema.set(index, pa.field(name, schema_to_pyarrow(kind), nullable=True))
    return schema


def read_state(
    table: Table, key_column: str, keys: Sequence[object] | None
) -> tuple[list[FileScanTask], pa.Table]:
    """The files holding rows whose ``key_column`` is one of ``keys`` (every file when
    None), and all their rows."""
    metadata = table.metadata
    if metadata.current_snapshot() is None:
        return [], schema_to_pyarrow(table.schema(), include_field_ids=False).empty_table()
    tasks = list(table.scan().plan_files())
    if keys is not None:
        # Pick the files of the keys' buckets ourselves: pyiceberg would bind and project
        # the IN list once per file (seconds for thousands of keys).
        buckets = _buckets(table, key_column, keys)
        spec = metadata.spec()
        tasks = [t for t in tasks if t.file.spec_id != spec.spec_id or t.file.partition[0] in buckets]
    rows = ArrowScan(metadata, table.io, table.schema(), AlwaysTrue()).to_table(tasks)
    return tasks, rows


def _buckets(table: Table, key_column: str, keys: Sequence[object]) -> set[int]:
    """The partition values (bucket numbers) of ``keys`` under the table's bucket spec."""
    spec = table.metadata.spec()
    (partition,) = spec.fields
    source = table.schema().find_field(partition.source_id)
    assert source.name == key_column, f"{table.name()} is bucketed on {source.name}, not {key_column}"
    values = pa.array(keys, schema_to_pyarrow(source.field_type))
    return set(partition.transform.pyarrow_transform(source.field_type)(values).to_pylist())


def conform(rows: pa.Table, schema: pa.Schema) -> pa.Table:
    """``rows`` with ``schema``'s columns (missing ones null) and types."""
    arrays = [
        rows.column(field.name).cast(field.type)
        if field.name in rows.column_names
        else pa.nulls(rows.num_rows, field.type)
        for field in schema
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


def replace_state(
    table: Table,
    old: Sequence[FileScanTask],
    rows: pa.Table,
    evolution: Evolution,
    properties: Mapping[str, str],
    table_properties: Mapping[str, str],
) -> None:
    """One commit: evolve, drop the files of ``old``, add ``rows``."""
    with table.transaction() as tx:
        _evolve(tx, evolution)
        if table_properties:
            tx.set_properties(dict(table_properties))
        update = tx.update_snapshot(snapshot_properties=dict(properties))
        if old:
            with update.overwrite() as overwrite:
                for task in old:
                    overwrite.delete_data_file(task.file)
                for data_file in _dataframe_to_data_files(
                    tx.table_metadata, rows, table.io, overwrite.commit_uuid
                ):
                    overwrite.append_data_file(data_file)
        else:
            with update.fast_append() as append:
                for data_file in _dataframe_to_data_files(
                    tx.table_metadata, rows, table.io, append.commit_uuid
                ):
                    append.append_data_file(data_file)


def append_rows(
    table: Table, rows: pa.Table, evolution: Evolution | None, properties: Mapping[str, str]
) -> None:
    """One commit: evolve, append ``rows``."""
    with table.transaction() as tx:
        if evolution is not None:
            _evolve(tx, evolution)
        tx.append(rows, snapshot_properties=dict(properties))


def _evolve(tx: Transaction, evolution: Evolution) -> None:
    if not evolution.changed:
        return
    present = {field.name for field in tx.table_metadata.schema().fields}
    with tx.update_schema() as update:
        for name, kind in evolution.added:
            if name not in present:
                update.add_column(name, kind)
        for name, kind in evolution.promoted:
            update.update_column(name, field_type=kind)
