"""DuckDB views over pinned lake tables, without DuckDB's iceberg extension.

Files are read by Iceberg field id (``read_parquet(..., schema=MAP {...})``), so a renamed
column keeps its data and a column added after a file was written reads as NULL there. An
empty table still gets a view with its columns and types.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from insightloop.warehouse.pinning import PinnedTable


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def duckdb_types(con: duckdb.DuckDBPyConnection, schema: pa.Schema) -> list[str]:
    """The DuckDB type of each column of an Arrow schema, as SQL text."""
    relation = con.from_arrow(schema.empty_table())
    return [str(kind) for kind in relation.types]


def view_sql(pinned: PinnedTable, types: list[str]) -> str:
    """The ``SELECT`` that reads a pinned table with its current column names and types."""
    names = pinned.schema.names
    if not pinned.files:
        columns = ", ".join(
            f"CAST(NULL AS {kind}) AS {quote_ident(name)}" for name, kind in zip(names, types, strict=True)
        )
        return f"SELECT {columns} WHERE false"
    mapping = ", ".join(
        f"{field_id}: {{name: {quote_literal(name)}, type: {quote_literal(kind)}, default_value: NULL}}"
        for field_id, name, kind in zip(pinned.field_ids, names, types, strict=True)
    )
    files = ", ".join(quote_literal(path) for path in pinned.files)
    columns = ", ".join(quote_ident(name) for name in names)
    return f"SELECT {columns} FROM read_parquet([{files}], schema = MAP {{{mapping}}})"


def create_view(con: duckdb.DuckDBPyConnection, pinned: PinnedTable, rows: pa.Table | None = None) -> None:
    """Create ``<namespace>.<name>`` in ``con``: over the pinned files, or over ``rows``
    (an already-read snapshot, for tables whose delete files a Parquet read would miss)."""
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(pinned.namespace)}")
    target = f"{quote_ident(pinned.namespace)}.{quote_ident(pinned.name)}"
    if rows is not None:
        relation = f"__pinned_{pinned.namespace}_{pinned.name}"
        con.register(relation, rows)
        con.execute(f"CREATE OR REPLACE VIEW {target} AS SELECT * FROM {quote_ident(relation)}")
        return
    types = duckdb_types(con, pinned.schema)
    con.execute(f"CREATE OR REPLACE VIEW {target} AS {view_sql(pinned, types)}")
