"""Pinning a lake table: the data files of one Iceberg snapshot, and the schema to read them with.

A pin is taken once per warehouse connection. Data files are never deleted under a reader
(commits only add files and drop references; only garbage collection deletes, and it keeps
files that a recent snapshot references), so a query over a pin sees one consistent snapshot
even while the processor keeps committing.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlparse

import pyarrow as pa
from pyiceberg.table import Table


@dataclass(frozen=True)
class PinnedTable:
    """One table as of one snapshot. ``snapshot_id`` is None for a table with no snapshot yet."""

    namespace: str
    name: str
    snapshot_id: int | None
    files: tuple[str, ...]
    #: The table's current schema as Arrow, with Iceberg field ids in the field metadata.
    schema: pa.Schema
    #: Iceberg field id of each top-level column, in schema order.
    field_ids: tuple[int, ...]
    #: Whether some data file has delete files (merge-on-read) that a plain Parquet read would miss.
    has_deletes: bool

    @property
    def qualified_name(self) -> str:
        return f"{self.namespace}.{self.name}"


def local_path(location: str) -> str:
    """A data file location as DuckDB opens it: ``file://`` URIs become plain paths."""
    if location.startswith("file:"):
        return unquote(urlparse(location).path)
    return location


def pin(table: Table) -> PinnedTable:
    """Pin ``table`` to its current snapshot."""
    namespace, name = table.name()[-2:]
    schema = table.schema()
    snapshot = table.current_snapshot()
    files: list[str] = []
    has_deletes = False
    if snapshot is not None:
        for task in table.scan(snapshot_id=snapshot.snapshot_id).plan_files():
            files.append(local_path(task.file.file_path))
            has_deletes = has_deletes or bool(task.delete_files)
    return PinnedTable(
        namespace=namespace,
        name=name,
        snapshot_id=None if snapshot is None else snapshot.snapshot_id,
        files=tuple(files),
        schema=schema.as_arrow(),
        field_ids=tuple(field.field_id for field in schema.fields),
        has_deletes=has_deletes,
    )
