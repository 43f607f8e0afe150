"""Reading raw rows back for stage 2: the raw data files holding given raw sequences
(pyiceberg plans them, pruning by the files' ``ingest_seq`` bounds) as a DuckDB source."""

from __future__ import annotations

from collections.abc import Sequence

from pyiceberg.expressions import BooleanExpression, EqualTo, In
from pyiceberg.table import Table

from insightloop.exports.sql import lit


def local_path(file_path: str) -> str:
    """A data file's path for DuckDB (the embedded lake is local)."""
    return file_path.removeprefix("file://")


def data_files(table: Table, seqs: Sequence[int]) -> list[str]:
    """The data files of ``table`` that may hold rows of these raw sequences."""
    if not seqs or table.metadata.current_snapshot() is None:
        return []
    row_filter: BooleanExpression = (
        EqualTo("ingest_seq", seqs[0])  # type: ignore[call-arg, arg-type]
        if len(seqs) == 1
        else In("ingest_seq", set(seqs))  # type: ignore[call-arg, arg-type]
    )
    return [local_path(task.file.file_path) for task in table.scan(row_filter=row_filter).plan_files()]


def parquet_source(paths: Sequence[str], union_by_name: bool = False) -> str:
    """``read_parquet([...])`` of ``paths`` (which must not be empty)."""
    listed = ", ".join(lit(path) for path in paths)
    union = ", union_by_name = true" if union_by_name else ""
    return f"read_parquet([{listed}]{union})"
